package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	capiproviderv1 "github.com/hcp-dev/hcp/api/capiprovider/v1beta1"
	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/clusterspec"
	"github.com/hcp-dev/hcp/internal/controller/agentmachine"
	"github.com/hcp-dev/hcp/internal/hosted"
)

var metaCreate = metav1.CreateOptions{}

// Labels and keys of a host inventory credential: a Secret holding the pull
// secret, base domain and ssh key a new cluster is pre-filled with.
const (
	CredentialLabel     = "cluster.open-cluster-management.io/credentials"
	CredentialTypeLabel = "cluster.open-cluster-management.io/type"
	CredentialType      = "hostinventory"
	CredentialPullKey   = "pullSecret"
	CredentialDomainKey = "baseDomain"
	CredentialSSHKey    = "ssh-publickey"
)

// lists are the kinds the pages list. None holds a secret value.
var lists = map[string]func() client.ObjectList{
	"hostedclusters":      func() client.ObjectList { return &hyperv1.HostedClusterList{} },
	"hostedcontrolplanes": func() client.ObjectList { return &hyperv1.HostedControlPlaneList{} },
	"nodepools":           func() client.ObjectList { return &hyperv1.NodePoolList{} },
	"agents":              func() client.ObjectList { return &agentv1.AgentList{} },
	"infraenvs":           func() client.ObjectList { return &agentv1.InfraEnvList{} },
	"machines":            func() client.ObjectList { return &clusterv1.MachineList{} },
	"hcpetcdbackups":      func() client.ObjectList { return &hyperv1.HCPEtcdBackupList{} },
}

func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 20*time.Second)
}

// list lists one kind in one namespace, or in all the user may list.
func (s *Server) list(w http.ResponseWriter, r *http.Request, sess *session) {
	newList, ok := lists[r.PathValue("kind")]
	if !ok {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("the console does not list %q", r.PathValue("kind")))
		return
	}
	ns := r.URL.Query().Get("namespace")
	if ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "namespace", fmt.Sprintf("%q is not a namespace name", ns))
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	l := newList()
	if err := sess.client.List(ctx, l, client.InNamespace(ns)); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// clusterView is everything the cluster page shows.
type clusterView struct {
	HostedCluster *hyperv1.HostedCluster      `json:"hostedCluster"`
	ControlPlane  *hyperv1.HostedControlPlane `json:"controlPlane,omitempty"`
	NodePools     []hyperv1.NodePool          `json:"nodePools"`
	Machines      []clusterv1.Machine         `json:"machines"`
	Agents        []agentv1.Agent             `json:"agents"`
	// Upgrades are the releases the cluster may move to under the upgrade
	// rules (a later patch, or the next minor version).
	Upgrades []releaseChoice `json:"upgrades"`
	// Backups are the cluster's HCPEtcdBackups, newest first.
	Backups []hyperv1.HCPEtcdBackup `json:"backups"`
	// Unreadable says which parts the user may not read.
	Unreadable []string `json:"unreadable,omitempty"`
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := requestContext(r)
	defer cancel()
	c := sess.client
	v := clusterView{HostedCluster: &hyperv1.HostedCluster{}, Upgrades: []releaseChoice{}}
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	if err := c.Get(ctx, key, v.HostedCluster); err != nil {
		writeErr(w, err)
		return
	}
	hc := v.HostedCluster
	if current := hosted.CompletedVersion(hc.Status.Version); current != "" {
		if rels, err := s.Releases.List(); err == nil {
			for _, rel := range rels {
				if rel.Name != current && rel.Image != hc.Spec.Release.Image && hosted.CheckUpgrade(current, rel.Name) == nil {
					v.Upgrades = append(v.Upgrades, releaseChoice{Name: rel.Name, Image: rel.Image})
				}
			}
		}
	}
	cpNamespace := hosted.ControlPlaneNamespace(hc.Namespace, hc.Name)
	note := func(what string, err error) {
		if err != nil {
			v.Unreadable = append(v.Unreadable, what+": "+err.Error())
		}
	}
	hcp := &hyperv1.HostedControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: cpNamespace, Name: hc.Name}, hcp); err == nil {
		v.ControlPlane = hcp
	} else if !apierrors.IsNotFound(err) {
		note("control plane", err)
	}
	backups := &hyperv1.HCPEtcdBackupList{}
	note("backups", c.List(ctx, backups, client.InNamespace(hc.Namespace)))
	v.Backups = []hyperv1.HCPEtcdBackup{}
	for _, b := range backups.Items {
		if b.Spec.HostedCluster.Name == hc.Name {
			v.Backups = append(v.Backups, b)
		}
	}
	sort.Slice(v.Backups, func(i, j int) bool {
		return v.Backups[j].CreationTimestamp.Before(&v.Backups[i].CreationTimestamp)
	})
	pools := &hyperv1.NodePoolList{}
	note("node pools", c.List(ctx, pools, client.InNamespace(hc.Namespace)))
	for _, np := range pools.Items {
		if np.Spec.ClusterName == hc.Name {
			v.NodePools = append(v.NodePools, np)
		}
	}
	machines := &clusterv1.MachineList{}
	note("machines", c.List(ctx, machines, client.InNamespace(cpNamespace)))
	v.Machines = machines.Items
	if hc.Spec.Platform.Agent != nil {
		agents := &agentv1.AgentList{}
		note("agents", c.List(ctx, agents, client.InNamespace(hc.Spec.Platform.Agent.AgentNamespace)))
		for _, a := range agents.Items {
			if ref := a.Spec.ClusterDeploymentName; ref != nil && ref.Namespace == cpNamespace && ref.Name == hc.Name {
				v.Agents = append(v.Agents, a)
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// pathCluster reads the HostedCluster the request's path names
// (/{namespace}/{name}) with the user's credentials.
func pathCluster(ctx context.Context, r *http.Request, sess *session) (*hyperv1.HostedCluster, error) {
	hc := &hyperv1.HostedCluster{}
	err := sess.client.Get(ctx, client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, hc)
	return hc, err
}

// kubeconfig sends the cluster's admin kubeconfig as a download.
func (s *Server) kubeconfig(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := requestContext(r)
	defer cancel()
	hc, err := pathCluster(ctx, r, sess)
	if err != nil {
		writeErr(w, err)
		return
	}
	if hc.Status.KubeConfig == nil {
		writeError(w, http.StatusConflict, "", "The cluster has no kubeconfig yet; it appears once the cluster is Available.")
		return
	}
	secret := &corev1.Secret{}
	if err := sess.client.Get(ctx, client.ObjectKey{Namespace: hc.Namespace, Name: hc.Status.KubeConfig.Name}, secret); err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "kubeconfig-"+hc.Name))
	_, _ = w.Write(secret.Data["kubeconfig"])
}

// createRequest is the wizard's form.
type createRequest struct {
	Name                           string `json:"name"`
	Namespace                      string `json:"namespace"`
	ReleaseImage                   string `json:"releaseImage"`
	Credential                     string `json:"credential"`
	PullSecret                     string `json:"pullSecret"`
	SSHKey                         string `json:"sshKey"`
	BaseDomain                     string `json:"baseDomain"`
	ControlPlaneAvailabilityPolicy string `json:"controlPlaneAvailabilityPolicy"`
	AgentNamespace                 string `json:"agentNamespace"`
	AgentLabelSelector             string `json:"agentLabelSelector"`
	NodePoolReplicas               string `json:"nodePoolReplicas"`
	APIServerPublishing            string `json:"apiServerPublishing"`
	APIServerAddress               string `json:"apiServerAddress"`
	Labels                         string `json:"labels"`
	Annotations                    string `json:"annotations"`
}

// create validates the wizard's form as hcp create cluster agent validates its
// flags and, unless dryRun=true, creates the cluster with the user's
// credentials. Every bad field is reported, each under its flag's name.
func (s *Server) create(w http.ResponseWriter, r *http.Request, sess *session) {
	var req createRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "", "The form is not valid JSON: "+err.Error())
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	spec, problems := s.specOf(ctx, sess, req)
	// The operator serves only the releases in its store; the user may not be
	// allowed to read the list it publishes, so the console checks itself.
	if _, err := s.Releases.Resolve(spec.ReleaseImage); spec.ReleaseImage != "" && err != nil {
		problems = append(problems, fieldProblem{Field: "release-image", Message: fmt.Sprintf("%q is not a release this management cluster serves: %v", spec.ReleaseImage, err)})
	}
	in, errs := spec.Check()
	for _, e := range errs {
		problems = append(problems, fieldProblem{Field: e.Field, Message: e.Hint()})
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Field: problems[0].Field, Message: problems[0].Message,
			Fields: problems, Status: http.StatusUnprocessableEntity})
		return
	}
	if r.URL.Query().Get("dryRun") == "true" {
		if err := clusterspec.CheckAgainstCluster(ctx, sess.client, spec); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"valid": true})
		return
	}
	objs, err := clusterspec.Create(ctx, sess.client, spec, in, fieldOwner)
	if err != nil {
		writeErr(w, err)
		return
	}
	var made []string
	for _, o := range objs {
		made = append(made, strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)+" "+o.GetNamespace()+"/"+o.GetName())
	}
	s.Log.Info("console created a hosted cluster", "user", sess.user, "cluster", spec.Namespace+"/"+spec.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"namespace": spec.Namespace, "name": spec.Name, "created": made})
}

// specOf turns the form into a Spec with the CLI's defaults; problems are
// fields that do not even parse.
func (s *Server) specOf(ctx context.Context, sess *session, req createRequest) (*clusterspec.Spec, []fieldProblem) {
	var problems []fieldProblem
	spec := &clusterspec.Spec{
		Name: strings.TrimSpace(req.Name), Namespace: strings.TrimSpace(req.Namespace), ReleaseImage: strings.TrimSpace(req.ReleaseImage),
		PullSecret: []byte(strings.TrimSpace(req.PullSecret)), SSHKey: []byte(strings.TrimSpace(req.SSHKey)),
		BaseDomain: strings.TrimSpace(req.BaseDomain), ControlPlaneAvailabilityPolicy: req.ControlPlaneAvailabilityPolicy,
		InfraAvailabilityPolicy: string(hyperv1.SingleReplica), AgentNamespace: strings.TrimSpace(req.AgentNamespace),
		AgentLabelSelector: strings.TrimSpace(req.AgentLabelSelector), APIServerPublishing: req.APIServerPublishing,
		APIServerAddress: strings.TrimSpace(req.APIServerAddress),
		ServiceCIDR:      hosted.DefaultServiceCIDR, ClusterCIDR: hosted.DefaultClusterCIDR,
	}
	if spec.Namespace == "" {
		spec.Namespace = clusterspec.DefaultNamespace
	}
	if spec.ControlPlaneAvailabilityPolicy == "" {
		spec.ControlPlaneAvailabilityPolicy = string(hosted.DefaultControlPlanePolicy)
	}
	if len(spec.SSHKey) > 0 {
		spec.SSHKey = append(spec.SSHKey, '\n')
	}
	if n := strings.TrimSpace(req.NodePoolReplicas); n != "" {
		v, err := strconv.ParseInt(n, 10, 32)
		if err != nil || v < 0 {
			problems = append(problems, fieldProblem{Field: "node-pool-replicas", Message: fmt.Sprintf("%q is not a number of nodes (0 or more)", n)})
		}
		spec.NodePoolReplicas = int32(v)
	}
	var err error
	if spec.Labels, err = pairs("labels", req.Labels); err != nil {
		fe, _ := clusterspec.AsFieldError(err)
		problems = append(problems, fieldProblem{Field: fe.Field, Message: fe.Hint()})
	}
	if spec.Annotations, err = pairs("annotations", req.Annotations); err != nil {
		fe, _ := clusterspec.AsFieldError(err)
		problems = append(problems, fieldProblem{Field: fe.Field, Message: fe.Hint()})
	}
	if req.Credential != "" && len(spec.PullSecret) == 0 {
		pull, err := s.credentialPullSecret(ctx, sess, req.Credential)
		if err != nil {
			problems = append(problems, fieldProblem{Field: "credential", Message: err.Error()})
		}
		spec.PullSecret = pull
	}
	if spec.APIServerAddress == "" && spec.APIServerPublishing != clusterspec.PublishLoadBalancer {
		spec.APIServerAddress = s.APIServerAddress
		if spec.APIServerAddress == "" {
			spec.APIServerAddress, _ = clusterspec.DefaultAPIServerAddress(ctx, sess.client, s.Config.Host)
		}
	}
	return spec, problems
}

// pairs reads "key=value" lines (or comma-separated pairs).
func pairs(field, text string) (map[string]string, error) {
	var m map[string]string
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, clusterspec.Invalid(field, fmt.Sprintf("%q is not key=value", line), "team=payments")
		}
		if m == nil {
			m = map[string]string{}
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// credentialPullSecret reads the pull secret of a host inventory credential
// ("namespace/name") with the user's credentials.
func (s *Server) credentialPullSecret(ctx context.Context, sess *session, ref string) ([]byte, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, fmt.Errorf("%q is not namespace/name", ref)
	}
	secret := &corev1.Secret{}
	if err := sess.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret); err != nil {
		return nil, fmt.Errorf("cannot read credential %s: %v", ref, err)
	}
	if secret.Labels[CredentialTypeLabel] != CredentialType {
		return nil, fmt.Errorf("secret %s is not a host inventory credential (label %s=%s)", ref, CredentialTypeLabel, CredentialType)
	}
	pull := secret.Data[CredentialPullKey]
	if len(pull) == 0 {
		return nil, fmt.Errorf("credential %s has no %s", ref, CredentialPullKey)
	}
	return pull, nil
}

// credential is what the wizard may show of a host inventory credential: no
// secret value.
type credential struct {
	Namespace     string `json:"namespace"`
	Name          string `json:"name"`
	BaseDomain    string `json:"baseDomain"`
	SSHKey        string `json:"sshKey"`
	HasPullSecret bool   `json:"hasPullSecret"`
}

type releaseChoice struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// wizard is what the create wizard offers: releases, the proposed API server
// address and the host inventory credentials the user may read.
func (s *Server) wizard(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx, cancel := requestContext(r)
	defer cancel()
	out := struct {
		Releases         []releaseChoice `json:"releases"`
		APIServerAddress string          `json:"apiServerAddress"`
		Credentials      []credential    `json:"credentials"`
		CredentialsError string          `json:"credentialsError,omitempty"`
	}{Releases: []releaseChoice{}, Credentials: []credential{}}
	if rels, err := s.Releases.List(); err == nil {
		for i := len(rels) - 1; i >= 0; i-- {
			out.Releases = append(out.Releases, releaseChoice{Name: rels[i].Name, Image: rels[i].Image})
		}
	}
	out.APIServerAddress = s.APIServerAddress
	if out.APIServerAddress == "" {
		out.APIServerAddress, _ = clusterspec.DefaultAPIServerAddress(ctx, sess.client, s.Config.Host)
	}
	list := &corev1.SecretList{}
	if err := sess.client.List(ctx, list, client.InNamespace(r.URL.Query().Get("namespace")),
		client.MatchingLabels{CredentialTypeLabel: CredentialType}); err != nil {
		out.CredentialsError = err.Error()
	}
	for _, sec := range list.Items {
		out.Credentials = append(out.Credentials, credential{Namespace: sec.Namespace, Name: sec.Name,
			BaseDomain: string(sec.Data[CredentialDomainKey]), SSHKey: string(sec.Data[CredentialSSHKey]),
			HasPullSecret: len(sec.Data[CredentialPullKey]) > 0})
	}
	sort.Slice(out.Credentials, func(i, j int) bool {
		return out.Credentials[i].Namespace+"/"+out.Credentials[i].Name < out.Credentials[j].Namespace+"/"+out.Credentials[j].Name
	})
	writeJSON(w, http.StatusOK, out)
}

// matchingAgents counts the Agents a node pool with this selector could use
// in a namespace, and how many of them are free to bind now.
func (s *Server) matchingAgents(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	ns := q.Get("namespace")
	if len(validation.IsDNS1123Label(ns)) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "agent-namespace", fmt.Sprintf("%q is not a namespace name", ns))
		return
	}
	sel, err := labels.Parse(q.Get("selector"))
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "agentLabelSelector", fmt.Sprintf("%q is not a label selector: %v", q.Get("selector"), err))
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	agents := &agentv1.AgentList{}
	if err := sess.client.List(ctx, agents, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		writeErr(w, err)
		return
	}
	free := 0
	for i := range agents.Items {
		if agentmachine.Unsuitable(&agents.Items[i], &capiproviderv1.AgentMachine{}) == "" {
			free++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"matching": len(agents.Items), "free": free})
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// upgrade changes a HostedCluster's spec.release.image after the same checks
// the operator makes: the release exists, and the upgrade rules allow it
// unless force is set (then the HostedCluster is annotated
// hypershift.openshift.io/force-upgrade-to).
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		ReleaseImage string `json:"releaseImage"`
		Force        bool   `json:"force"`
	}
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "body", `must be {"releaseImage": "<image>", "force": false}: `+err.Error())
		return
	}
	if strings.TrimSpace(req.ReleaseImage) == "" {
		writeError(w, http.StatusUnprocessableEntity, "releaseImage", "is required: the image of a release this management cluster serves, e.g. hcp.dev/release:1.37.2")
		return
	}
	image := strings.TrimSpace(req.ReleaseImage)
	rel, err := s.Releases.Resolve(image)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "releaseImage", err.Error())
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	hc, err := pathCluster(ctx, r, sess)
	if err != nil {
		writeErr(w, err)
		return
	}
	if ue := hosted.CheckChange(hc, rel.Name, image); ue != nil && !req.Force {
		writeError(w, http.StatusUnprocessableEntity, "releaseImage", ue.Message+"; force it only if you know the control plane can run it")
		return
	}
	patch := client.MergeFrom(hc.DeepCopy())
	hc.Spec.Release.Image = image
	if req.Force {
		if hc.Annotations == nil {
			hc.Annotations = map[string]string{}
		}
		hc.Annotations[hyperv1.ForceUpgradeToAnnotation] = image
	}
	if err := sess.client.Patch(ctx, hc, patch); err != nil {
		writeErr(w, err)
		return
	}
	s.Log.Info("console changed a cluster's release", "user", sess.user, "hostedcluster", hc.Namespace+"/"+hc.Name, "release", image, "force", req.Force)
	writeJSON(w, http.StatusOK, map[string]string{"releaseImage": image})
}

// backup creates an HCPEtcdBackup of the cluster the path names: to the
// management plane's data directory, or to the storage the body names.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		Storage *hyperv1.EtcdBackupStorage `json:"storage"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "body", `must be {} or {"storage": {"type": "Local"|"S3", ...}}: `+err.Error())
			return
		}
	}
	storage := hyperv1.EtcdBackupStorage{Type: hyperv1.LocalBackupStorage}
	if req.Storage != nil {
		storage = *req.Storage
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	hc, err := pathCluster(ctx, r, sess)
	if err != nil {
		writeErr(w, err)
		return
	}
	b := &hyperv1.HCPEtcdBackup{ObjectMeta: metav1.ObjectMeta{Namespace: hc.Namespace, Name: hc.Name + "-" + time.Now().UTC().Format("20060102-150405")},
		Spec: hyperv1.HCPEtcdBackupSpec{HostedCluster: corev1.LocalObjectReference{Name: hc.Name}, Storage: storage}}
	if err := sess.client.Create(ctx, b); err != nil {
		writeErr(w, err)
		return
	}
	s.Log.Info("console started a backup", "user", sess.user, "hostedcluster", hc.Namespace+"/"+hc.Name, "backup", b.Name)
	writeJSON(w, http.StatusCreated, map[string]string{"name": b.Name})
}

// approve sets an Agent's spec.approved.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		Approved *bool `json:"approved"`
	}
	if err := decodeBody(r, &req); err != nil || req.Approved == nil {
		writeError(w, http.StatusBadRequest, "approved", `send {"approved": true} or {"approved": false}`)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	a := &agentv1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}}
	patch := fmt.Sprintf(`{"spec":{"approved":%t}}`, *req.Approved)
	if err := sess.client.Patch(ctx, a, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		writeErr(w, err)
		return
	}
	s.Log.Info("console agent approval", "user", sess.user, "agent", a.Namespace+"/"+a.Name, "approved", *req.Approved)
	writeJSON(w, http.StatusOK, map[string]bool{"approved": a.Spec.Approved})
}

// scale sets a NodePool's replicas.
func (s *Server) scale(w http.ResponseWriter, r *http.Request, sess *session) {
	var req struct {
		Replicas *int32 `json:"replicas"`
	}
	if err := decodeBody(r, &req); err != nil || req.Replicas == nil || *req.Replicas < 0 || *req.Replicas > 500 {
		writeError(w, http.StatusUnprocessableEntity, "replicas", "must be a number of nodes from 0 to 500")
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	np := &hyperv1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, *req.Replicas)
	if err := sess.client.Patch(ctx, np, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		writeErr(w, err)
		return
	}
	s.Log.Info("console scaled a node pool", "user", sess.user, "nodepool", np.Namespace+"/"+np.Name, "replicas", *req.Replicas)
	writeJSON(w, http.StatusOK, map[string]int32{"replicas": *np.Spec.Replicas})
}
