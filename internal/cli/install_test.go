package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestInstallRenderValidatesFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "Bad_NS"}, "--namespace: "},
		{[]string{"--operator-image", "a b"}, "--operator-image: must be an image reference"},
		{[]string{"--operator-replicas", "0"}, "--operator-replicas: 0 is out of range; use 1 to 5"},
		{[]string{"--infra-url", "http://x"}, "--infra-url: \"http://x\" must be https://host:port"},
	} {
		root := NewRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"install", "render"}, tc.args...))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
		if strings.Contains(out.String(), "kind: CustomResourceDefinition") {
			t.Errorf("%v: rendered objects despite the bad flag", tc.args)
		}
	}
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"install", "render", "--operator-image", "registry.example.com/hcp-operator:v1", "--namespace", "hcp"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: hypershift-etcd\nvalue: 100002000", "image: registry.example.com/hcp-operator:v1", "--runtime=kubernetes", "namespace: hcp\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("render lacks %q", want)
		}
	}
	root = NewRoot()
	out.Reset()
	root.SetOut(&out)
	root.SetArgs([]string{"install", "render", "--infra-url", "https://infra.example.com:8090"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--infra-url=https://infra.example.com:8090", "name: hcp-infra", "name: hcp-console", "sessionAffinity: ClientIP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("render with --infra-url lacks %q", want)
		}
	}
}

func TestInstallWaitNeedsATimeout(t *testing.T) {
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"install", "--wait", "--timeout", "-1s", "--kubeconfig", "/nonexistent"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--timeout: -1s is not a time to wait") {
		t.Errorf("install --wait --timeout -1s: %v", err)
	}
}
