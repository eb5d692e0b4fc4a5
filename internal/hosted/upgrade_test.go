package hosted

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckUpgrade(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		reason   string
	}{
		{"1.36.3", "1.36.3", ""},
		{"1.36.3", "1.36.4", ""},
		{"1.36.3", "1.37.2", ""},
		{"1.36.3", "1.37.0", ""},
		{"1.37.2", "1.36.3", ReasonDowngrade},
		{"1.37.2", "1.37.1", ReasonDowngrade},
		{"1.36.3", "1.38.0", ReasonMinorVersionSkip},
		{"1.36.3", "2.0.0", ReasonMinorVersionSkip},
		{"1.36.3", "latest", ReasonInvalidVersion},
	} {
		err := CheckUpgrade(tc.from, tc.to)
		var ue *UpgradeError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s -> %s: refused: %v", tc.from, tc.to, err)
		case tc.reason != "" && !errors.As(err, &ue):
			t.Errorf("%s -> %s: allowed, want %s", tc.from, tc.to, tc.reason)
		case tc.reason != "" && ue.Reason != tc.reason:
			t.Errorf("%s -> %s: reason %s (%v), want %s", tc.from, tc.to, ue.Reason, err, tc.reason)
		}
	}
	err := CheckUpgrade("1.37.2", "1.36.3")
	if want := "a downgrade is not supported (allowed: 1.37.x from 1.37.2 on, or 1.38.x)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("downgrade message %q does not say %q", err, want)
	}
}

func TestCheckNodeSkew(t *testing.T) {
	for _, tc := range []struct {
		nodes, cluster string
		ok             bool
	}{
		{"1.37.2", "1.37.2", true},
		{"1.36.3", "1.37.2", true},
		{"1.34.0", "1.37.2", true},
		{"1.33.9", "1.37.2", false},
		{"1.37.3", "1.37.2", false},
		{"1.38.0", "1.37.2", false},
	} {
		if err := CheckNodeSkew(tc.nodes, tc.cluster); (err == nil) != tc.ok {
			t.Errorf("nodes %s under %s: %v, want ok=%v", tc.nodes, tc.cluster, err, tc.ok)
		}
	}
}
