package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CRDs hcp up installs: hcp's own and Cluster API's core ones.
var wantCRDs = []string{
	"hostedclusters.hypershift.openshift.io",
	"nodepools.hypershift.openshift.io",
	"hostedcontrolplanes.hypershift.openshift.io",
	"infraenvs.agent-install.openshift.io",
	"agents.agent-install.openshift.io",
	"agentclusters.capi-provider.agent-install.openshift.io",
	"agentmachines.capi-provider.agent-install.openshift.io",
	"agentmachinetemplates.capi-provider.agent-install.openshift.io",
	"clusters.cluster.x-k8s.io",
	"machinedeployments.cluster.x-k8s.io",
	"machinesets.cluster.x-k8s.io",
	"machines.cluster.x-k8s.io",
	"machinehealthchecks.cluster.x-k8s.io",
}

func TestUpServesCRDsAndStopsCleanly(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)

	crds := up.mustKubectl("", "get", "crd", "-o", "name")
	for _, name := range wantCRDs {
		if !strings.Contains(crds, "customresourcedefinition.apiextensions.k8s.io/"+name+"\n") {
			t.Errorf("CRD %s is not installed; installed:\n%s", name, crds)
		}
	}
	sc := up.mustKubectl("", "get", "storageclass", "local", "-o", `jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class} {.parameters.path}`)
	if want := "true " + filepath.Join(dataDir, "volumes", "local"); sc != want {
		t.Errorf("StorageClass local: got %q, want %q", sc, want)
	}
	if v := up.mustKubectl("", "version", "-o", "json"); !strings.Contains(v, `"gitVersion": "v1.37.2"`) {
		t.Errorf("server does not report v1.37.2:\n%s", v)
	}
	// RBAC is on: an unknown user is denied.
	if out, err := up.kubectl("", "get", "ns", "--as", "someone"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("impersonated user without RBAC was not forbidden: %v\n%s", err, out)
	}
	// The operator leads through its Lease.
	eventually(t, 30*time.Second, "operator leader lease", func() error {
		out, err := up.kubectl("", "-n", "hcp-system", "get", "lease", "hcp-operator", "-o", "jsonpath={.spec.holderIdentity}")
		if err != nil || out == "" {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})

	// A second hcp up on the same directory says it is in use, and changes nothing.
	second, err := exec.Command(filepath.Join(binDir, "hcp"), "up", "--data-dir", dataDir).CombinedOutput()
	if err == nil || !strings.Contains(string(second), "is in use by process") {
		t.Errorf("second hcp up on a used data dir: err=%v\n%s", err, second)
	}
	up.mustKubectl("", "get", "ns", "default")

	up.stop()
	if code := up.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("hcp up exited %d after Ctrl-C:\n%s", code, up.output())
	}
	if !strings.Contains(up.output(), "Stopped. State is kept in") {
		t.Errorf("hcp up did not say it stopped:\n%s", up.output())
	}
	// The terminal shows progress, not the controllers' log, and a clean stop
	// reports no error; the log is in the data directory.
	for _, noise := range []string{"Starting EventSource", "leader election lost", "error received after stop"} {
		if strings.Contains(up.output(), noise) {
			t.Errorf("hcp up printed %q:\n%s", noise, up.output())
		}
	}
	if n := strings.Count(up.output(), "\n"); n > 40 {
		t.Errorf("hcp up printed %d lines, want a screenful:\n%s", n, up.output())
	}
	logFile, err := os.ReadFile(filepath.Join(dataDir, "logs", "hcp-up.log"))
	if err != nil || !strings.Contains(string(logFile), "Starting EventSource") {
		t.Errorf("the log is not in logs/hcp-up.log: %v", err)
	}
	if strings.Contains(string(logFile), "leader election lost") {
		t.Errorf("a clean stop logged leader election lost")
	}
	if pids := processesUsing(dataDir); len(pids) != 0 {
		t.Errorf("processes still running after Ctrl-C: %v", pids)
	}
}

func TestUpKeepsEveryObjectAcrossKill9(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	up.mustKubectl("", "create", "namespace", "clusters")
	up.mustKubectl("", "create", "namespace", "clusters-example")
	up.mustKubectl(readTestdata(t, "hostedcluster.yaml"), "apply", "-f", "-")
	up.mustKubectl(readTestdata(t, "nodepool.yaml"), "apply", "-f", "-")
	for i := range 20 {
		up.mustKubectl("", "-n", "clusters", "create", "configmap", fmt.Sprintf("cm-%d", i), "--from-literal=i="+fmt.Sprint(i))
	}

	up.kill()
	eventually(t, 10*time.Second, "component processes to die with hcp up", func() error {
		if pids := processesUsing(dataDir); len(pids) != 0 {
			return fmt.Errorf("still running: %v", pids)
		}
		return nil
	})

	up = startUp(t, dataDir)
	if out := up.mustKubectl("", "-n", "clusters", "get", "hostedcluster", "example", "-o", "jsonpath={.spec.controllerAvailabilityPolicy}"); out != "HighlyAvailable" {
		t.Errorf("HostedCluster after restart: %q", out)
	}
	if out := up.mustKubectl("", "-n", "clusters", "get", "nodepool", "example", "-o", "jsonpath={.spec.replicas}"); out != "2" {
		t.Errorf("NodePool after restart: %q", out)
	}
	out := up.mustKubectl("", "-n", "clusters", "get", "configmap", "-o", "name")
	for i := range 20 {
		if !strings.Contains(out, fmt.Sprintf("configmap/cm-%d\n", i)) {
			t.Errorf("configmap cm-%d lost across kill -9", i)
		}
	}
}

// TestKillUpMidCreateAndDelete kills hcp up with SIGKILL right after a
// HostedCluster is created and again while it is being deleted: after each
// restart the cluster converges (Available with one process per component;
// then gone with its processes and namespace), nothing duplicated or orphaned.
func TestKillUpMidCreateAndDelete(t *testing.T) {
	dataDir := t.TempDir()
	up := startUp(t, dataDir)
	prepareClusters(up)
	up.mustKubectl(hostedCluster("crash", "SingleReplica", "local", rel.Image), "apply", "-f", "-")
	cpDir := filepath.Join(dataDir, "controlplanes", "clusters-crash")
	eventually(t, time.Minute, "the control plane starting", func() error {
		if len(processesUsing(cpDir)) == 0 {
			return fmt.Errorf("no control plane process yet")
		}
		return nil
	})
	up.kill()
	up = startUp(t, dataDir)
	up.waitAvailable(t, "crash")
	// The controller manager and scheduler start once the API server is ready,
	// so a moment after Available.
	waitOneOfEach(t, cpDir, 30*time.Second)

	up.mustKubectl("", "-n", "clusters", "delete", "hostedcluster", "crash", "--wait=false")
	eventually(t, 30*time.Second, "the deletion under way", func() error {
		if out, _ := up.kubectl("", "-n", "clusters", "get", "hostedcluster", "crash", "-o", "jsonpath={.metadata.deletionTimestamp}"); out == "" {
			return fmt.Errorf("not deleting yet")
		}
		return nil
	})
	up.kill()
	up = startUp(t, dataDir)
	eventually(t, 2*time.Minute, "the cluster gone with everything it had", func() error {
		if out, _ := up.kubectl("", "-n", "clusters", "get", "hostedcluster", "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("still there: %s", out)
		}
		if out, _ := up.kubectl("", "get", "namespace", "clusters-crash", "--ignore-not-found", "-o", "name"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("namespace left: %s", out)
		}
		if pids := processesUsing(cpDir); len(pids) != 0 {
			return fmt.Errorf("processes left: %v", commandLines(pids))
		}
		return nil
	})
}

// commandLines are the command lines of pids, for failure messages.
func commandLines(pids []int) []string {
	var out []string
	for _, pid := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return out
}
