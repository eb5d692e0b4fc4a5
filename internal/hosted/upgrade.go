package hosted

import (
	"errors"
	"fmt"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
)

// Reasons of ValidReleaseImage=False and SupportedVersionSkew=False for a
// release the upgrade rules refuse.
const (
	ReasonDowngrade        = "DowngradeNotAllowed"
	ReasonMinorVersionSkip = "MinorVersionSkipNotAllowed"
	ReasonUnsupportedSkew  = "UnsupportedSkew"
	ReasonInvalidVersion   = "InvalidVersion"
)

// CompletedVersion is the newest release version a control plane completed
// rolling out, from its version status; "" before the first.
func CompletedVersion(vs *hyperv1.ClusterVersionStatus) string {
	if vs == nil {
		return ""
	}
	for _, h := range vs.History {
		if h.State == hyperv1.CompletedUpdate {
			return h.Version
		}
	}
	return ""
}

// CheckChange applies the upgrade rules to a HostedCluster moving to release
// version to, against the version its control plane last completed; a
// HostedCluster whose ForceUpgradeToAnnotation names image is let through.
func CheckChange(hc *hyperv1.HostedCluster, to, image string) *UpgradeError {
	from := CompletedVersion(hc.Status.Version)
	if from == "" || from == to || hc.Annotations[hyperv1.ForceUpgradeToAnnotation] == image {
		return nil
	}
	var ue *UpgradeError
	if err := CheckUpgrade(from, to); errors.As(err, &ue) {
		return ue
	}
	return nil
}

// Node annotations of an in-place upgrade. The NodePool controller cordons
// and drains one node at a time, then names the release the node is to run;
// the host's agent puts that release's binaries in place and restarts its
// kubelet, kube-proxy and container runtime (containers keep running); once
// the node is Ready on the new kubelet the controller uncordons it.
const (
	// DesiredReleaseAnnotation names the release the node is to run.
	DesiredReleaseAnnotation = "hcp.dev/desired-release"
	// UpgradingAnnotation marks a node the controller cordoned to upgrade.
	UpgradingAnnotation = "hcp.dev/upgrading"
)

// MaxNodeSkew is how many minor versions a NodePool may trail its cluster's
// control plane.
const MaxNodeSkew = 3

// UpgradeError is a change of release that the rules refuse: Reason is the
// condition's reason.
type UpgradeError struct {
	Reason  string
	Message string
}

func (e *UpgradeError) Error() string { return e.Message }

// CheckUpgrade says whether a control plane that runs release version from
// may move to version to: a later patch of its minor version, or any patch of
// the next minor version. A downgrade or a skipped minor version is refused
// (the control plane's etcd and API server support only one minor step at a
// time), saying what is allowed.
func CheckUpgrade(from, to string) error {
	vf, err := utilversion.ParseGeneric(from)
	if err != nil {
		return &UpgradeError{ReasonInvalidVersion, fmt.Sprintf("the running release %q is not a version", from)}
	}
	vt, err := utilversion.ParseGeneric(to)
	if err != nil {
		return &UpgradeError{ReasonInvalidVersion, fmt.Sprintf("release %q is not a version", to)}
	}
	allowed := fmt.Sprintf("allowed: %d.%d.x from %s on, or %d.%d.x", vf.Major(), vf.Minor(), from, vf.Major(), vf.Minor()+1)
	switch {
	case vt.LessThan(vf):
		return &UpgradeError{ReasonDowngrade, fmt.Sprintf("%s is older than %s, the version the control plane runs: a downgrade is not supported (%s)", to, from, allowed)}
	case vt.Major() != vf.Major() || vt.Minor() > vf.Minor()+1:
		return &UpgradeError{ReasonMinorVersionSkip, fmt.Sprintf("%s skips a minor version from %s, the version the control plane runs: upgrade one minor version at a time (%s)", to, from, allowed)}
	}
	return nil
}

// CheckNodeSkew says whether a NodePool may run release version nodes under
// a control plane of version cluster: not newer, and at most MaxNodeSkew
// minor versions older.
func CheckNodeSkew(nodes, cluster string) error {
	vn, err := utilversion.ParseGeneric(nodes)
	if err != nil {
		return &UpgradeError{ReasonInvalidVersion, fmt.Sprintf("release %q is not a version", nodes)}
	}
	vc, err := utilversion.ParseGeneric(cluster)
	if err != nil {
		return &UpgradeError{ReasonInvalidVersion, fmt.Sprintf("the cluster's release %q is not a version", cluster)}
	}
	switch {
	case vn.GreaterThan(vc):
		return &UpgradeError{ReasonUnsupportedSkew, fmt.Sprintf("%s is newer than %s, the HostedCluster's release: nodes may not be newer than their control plane; upgrade the HostedCluster first", nodes, cluster)}
	case vn.Major() != vc.Major() || vn.Minor()+MaxNodeSkew < vc.Minor():
		return &UpgradeError{ReasonUnsupportedSkew, fmt.Sprintf("%s is more than %d minor versions older than %s, the HostedCluster's release; use %d.%d or newer", nodes, MaxNodeSkew, cluster, vc.Major(), max(int(vc.Minor())-MaxNodeSkew, 0))}
	}
	return nil
}
