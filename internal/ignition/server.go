package ignition

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
	"github.com/hcp-dev/hcp/internal/hosted"
	"github.com/hcp-dev/hcp/internal/images"
	"github.com/hcp-dev/hcp/internal/kubeconfig"
	"github.com/hcp-dev/hcp/internal/release"
)

// Path is where the ignition server answers.
const Path = "/ignition"

// KonnectivityConfigMap in the control plane namespace holds the konnectivity
// server's published host and port.
const KonnectivityConfigMap = "konnectivity-agent"

// ReachedAnnotation on a NodePool's token Secret is when a host last fetched
// its Ignition (RFC 3339).
const ReachedAnnotation = "hypershift.openshift.io/ignition-reached"

// BootstrapTokenReadyAnnotation on a NodePool's token Secret names the
// bootstrap token ID that is in the hosted cluster. Ignition is served only
// for that token, so a host never joins with a token the API server does not
// know yet.
const BootstrapTokenReadyAnnotation = "hcp.dev/bootstrap-token-in-cluster"

// Server hands a NodePool's hosts their worker Ignition, for the NodePool's
// current bearer token (or the previous one within Grace of a rotation).
// Requests carry "Authorization: Bearer <token>" and "NodePool: <namespace>/<name>".
type Server struct {
	Client client.Client
	Grace  time.Duration
	Now    func() time.Time
	Log    logr.Logger
	// Registry is hcp's image registry as nodes reach it (https://host:port)
	// and RegistryCA its CA; "" leaves nodes' image pulls as they are.
	Registry   string
	RegistryCA []byte
	// Releases resolves the NodePool's release (its pause image).
	Releases release.Store
}

// ServeHTTP answers GET /ignition.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ns, name, okNP := strings.Cut(r.Header.Get("NodePool"), "/")
	if !ok || token == "" || !okNP || ns == "" || name == "" || len(token) > 256 {
		deny(w, http.StatusUnauthorized, "an Authorization: Bearer token and a NodePool: <namespace>/<name> header are required")
		return
	}
	np := &hyperv1.NodePool{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, np); err != nil {
		deny(w, http.StatusUnauthorized, "unknown NodePool or token")
		return
	}
	hc := &hyperv1.HostedCluster{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: np.Spec.ClusterName}, hc); err != nil {
		deny(w, http.StatusUnauthorized, "unknown NodePool or token")
		return
	}
	cpns := hosted.ControlPlaneNamespace(ns, hc.Name)
	ts := &corev1.Secret{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: hosted.TokenSecret(name)}, ts); err != nil ||
		!TokensFrom(ts).Valid(token, s.Now(), s.Grace) {
		deny(w, http.StatusUnauthorized, "unknown NodePool or token")
		return
	}
	if id := string(ts.Data[KeyBootstrapID]); ts.Annotations[BootstrapTokenReadyAnnotation] != id {
		w.Header().Set("Retry-After", "2")
		deny(w, http.StatusServiceUnavailable, "the NodePool's bootstrap token is not in the hosted cluster yet (it goes there once the control plane is Available); retry")
		return
	}
	get := func(name string) *corev1.Secret {
		sec := &corev1.Secret{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: name}, sec); err != nil {
			return nil
		}
		return sec
	}
	ca, pull := get(controlplane.SecretRootCA), get(hosted.PullSecretName)
	ep := hc.Status.ControlPlaneEndpoint
	if ca == nil || pull == nil || ep.Port == 0 {
		deny(w, http.StatusServiceUnavailable, "the control plane is not ready yet; retry")
		return
	}
	bootstrap, err := kubeconfig.Config{
		Server:  "https://" + net.JoinHostPort(ep.Host, strconv.Itoa(int(ep.Port))),
		CA:      ca.Data[controlplane.KeyCA],
		Token:   string(ts.Data[KeyBootstrapID]) + "." + string(ts.Data[KeyBootstrapToken]),
		Context: "kubelet-bootstrap",
	}.Bytes()
	if err != nil {
		deny(w, http.StatusInternalServerError, err.Error())
		return
	}
	wk := Worker{BootstrapKubeconfig: bootstrap, CA: ca.Data[controlplane.KeyCA], PullSecret: pull.Data[corev1.DockerConfigJsonKey],
		ImageContentSources: hc.Spec.ImageContentSources, NodeLabels: np.Spec.NodeLabels, Taints: np.Spec.Taints}
	wk.ClusterCIDR = hosted.ClusterCIDR(hc.Spec.Networking)
	wk.Registry, wk.RegistryCA = s.Registry, s.RegistryCA
	rel, err := s.Releases.Resolve(np.Spec.Release.Image)
	if err != nil {
		if rel, err = s.Releases.Resolve(hc.Spec.Release.Image); err != nil {
			deny(w, http.StatusServiceUnavailable, "the NodePool's release is not served here: "+err.Error())
			return
		}
	}
	wk.PauseImage = images.Reference("pause", rel.Name)
	wk.Release = rel.Name
	if wk.ClusterDNS, err = hosted.ServiceIP(hosted.ServiceCIDR(hc.Spec.Networking), hosted.DNSServiceIndex); err != nil {
		deny(w, http.StatusInternalServerError, err.Error())
		return
	}
	konn := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: cpns, Name: KonnectivityConfigMap}, konn); err == nil {
		wk.Konnectivity = net.JoinHostPort(konn.Data["host"], konn.Data["port"])
	}
	if key := get(hosted.SSHKeySecret); key != nil {
		wk.SSHKey = string(key.Data["id_rsa.pub"])
	}
	b, err := wk.Config()
	if err != nil {
		deny(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	s.markReached(r, ts)
}

// markReached records the fetch on the token Secret, at most once a minute.
func (s *Server) markReached(r *http.Request, ts *corev1.Secret) {
	now := s.Now()
	if t, err := time.Parse(time.RFC3339, ts.Annotations[ReachedAnnotation]); err == nil && now.Sub(t) < time.Minute {
		return
	}
	before := ts.DeepCopy()
	if ts.Annotations == nil {
		ts.Annotations = map[string]string{}
	}
	ts.Annotations[ReachedAnnotation] = now.UTC().Format(time.RFC3339)
	if err := s.Client.Patch(r.Context(), ts, client.MergeFrom(before)); err != nil {
		// The host has its Ignition; only the NodePool's
		// ReachedIgnitionEndpoint condition waits for the next fetch.
		s.Log.Error(err, "recording the Ignition fetch", "secret", client.ObjectKeyFromObject(ts))
	}
}

func deny(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": status, "reason": reason})
}
