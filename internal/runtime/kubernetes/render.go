package kubernetes

import (
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/controlplane"
)

// Labels on what the runtime makes.
const (
	// ManagedByLabel marks every object the runtime made; Delete removes them.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "hcp"
	// AppLabel names a pod's component.
	AppLabel = "app"
	// MonitoringLabel marks namespaces allowed to scrape metrics.
	MonitoringLabel = "network.openshift.io/policy-group"
	// UIDRangeAnnotation is OpenShift's per-namespace UID range ("<first>/<size>").
	UIDRangeAnnotation = "openshift.io/sa.scc.uid-range"
)

// Pod Security admission labels of a control plane namespace.
var podSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "restricted",
	"pod-security.kubernetes.io/audit":   "restricted",
	"pod-security.kubernetes.io/warn":    "restricted",
}

// Input is what one control plane is rendered from.
type Input struct {
	ControlPlane *controlplane.ControlPlane
	// Image is the release's control plane image: every component's program.
	Image string
	// Images replaces Image for some components, by name: those that run
	// another release's programs while a new release rolls out.
	Images map[string]string
	// UID is the user (and group) the pods run as.
	UID int64
	// BackupImage runs etcd's restore init container (a control plane
	// created from a backup: Component.Restore).
	BackupImage string
	// DedicatedNodes says that management nodes are labelled for control
	// planes (hypershift.openshift.io/control-plane=true), so pods go only there.
	DedicatedNodes bool
}

// containerPorts are the ports each component listens on in its pod.
var containerPorts = map[string][]corev1.ContainerPort{
	controlplane.Etcd: {{Name: "client", ContainerPort: controlplane.EtcdClientPort}, {Name: "peer", ContainerPort: controlplane.EtcdPeerPort},
		{Name: "metrics", ContainerPort: etcdMetricsPort}},
	controlplane.KubeAPIServer: {{Name: "https", ContainerPort: controlplane.KubeAPIServerPodPort}},
	controlplane.KonnectivityServer: {{Name: "server", ContainerPort: controlplane.KonnServerPort}, {Name: "agent", ContainerPort: controlplane.KonnAgentPort},
		{Name: "admin", ContainerPort: controlplane.KonnAdminPort}, {Name: "health", ContainerPort: controlplane.KonnHealthPort}},
	controlplane.KubeControllerManager: {{Name: "https", ContainerPort: controlplane.KCMPort}},
	controlplane.KubeScheduler:         {{Name: "https", ContainerPort: controlplane.SchedulerPort}},
}

// etcdMetricsPort serves etcd's /health without a client certificate, for probes.
const etcdMetricsPort = 2381

// UIDFor is the user a control plane namespace's pods run as: the first of
// OpenShift's range when the namespace has one, else one derived from its name
// (a distinct range of 10000 per namespace name, above the host's users).
func UIDFor(namespace string, annotations map[string]string) int64 {
	if first, _, ok := strings.Cut(annotations[UIDRangeAnnotation], "/"); ok {
		if uid, err := strconv.ParseInt(first, 10, 64); err == nil && uid > 0 {
			return uid
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(namespace))
	return 1_000_000_000 + int64(h.Sum32()%100_000)*10_000
}

// Render returns every object of a control plane, in apply order.
func Render(in Input) ([]client.Object, error) {
	cp := in.ControlPlane
	var out []client.Object
	for _, c := range cp.Components {
		objs, err := renderComponent(in, c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		out = append(out, objs...)
	}
	out = append(out, services(in)...)
	out = append(out, networkPolicies(in)...)
	return out, nil
}

// VersionAnnotation on a component's workload is the version of the
// component its pod template runs.
const VersionAnnotation = "hcp.dev/version"

// imageOf is the image a component's pods run.
func imageOf(in Input, c controlplane.Component) string {
	if img := in.Images[c.Name]; img != "" {
		return img
	}
	return in.Image
}

func meta(in Input, name, component string) metav1.ObjectMeta {
	l := map[string]string{ManagedByLabel: managedBy, hyperv1.HostedControlPlaneNamespaceLabel: in.ControlPlane.Namespace}
	if component != "" {
		l[AppLabel] = component
	}
	return metav1.ObjectMeta{Namespace: in.ControlPlane.Namespace, Name: name, Labels: l}
}

func podLabels(in Input, c controlplane.Component) map[string]string {
	l := map[string]string{AppLabel: c.Name, hyperv1.HostedControlPlaneNamespaceLabel: in.ControlPlane.Namespace}
	if c.RequestServing {
		l[hyperv1.RequestServingComponentLabel] = "true"
	}
	return l
}

func renderComponent(in Input, c controlplane.Component) ([]client.Object, error) {
	if c.Replicas == 0 {
		return nil, fmt.Errorf("no replicas")
	}
	var out []client.Object
	replicas := int32(c.Replicas)
	tmpl := podReplica(in, c)
	workload := meta(in, c.Name, c.Name)
	if c.Version != "" {
		workload.Annotations = map[string]string{VersionAnnotation: c.Version}
	}
	pod, err := podTemplate(in, c)
	if err != nil {
		return nil, err
	}
	if files := tmpl.Files; len(files) > 0 {
		cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(in, c.Name+"-config", c.Name), Data: maps.Clone(files)}
		out = append(out, cm)
	}
	if c.Persistent {
		size, err := resource.ParseQuantity(c.StorageSize)
		if err != nil {
			return nil, fmt.Errorf("storage size %q: %w", c.StorageSize, err)
		}
		sts := &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
			ObjectMeta: workload,
			Spec: appsv1.StatefulSetSpec{
				Replicas:    &replicas,
				ServiceName: controlplane.ServiceEtcdDiscovery,
				Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: c.Name}},
				// Members find one another while they start.
				PodManagementPolicy: appsv1.ParallelPodManagement,
				Template:            pod,
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: map[string]string{ManagedByLabel: managedBy, AppLabel: c.Name}},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						StorageClassName: ptr.To(c.StorageClass),
						Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
					},
				}},
			}}
		out = append(out, sts)
	} else {
		d := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: workload,
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: c.Name}},
				Template: pod,
				Strategy: rollout(in.ControlPlane.Placement.HighlyAvailable),
			}}
		out = append(out, d)
	}
	out = append(out, disruptionBudget(in, c))
	return out, nil
}

// rollout keeps a single replica serving while its successor starts; spread
// replicas have no spare zone for a surge pod, so one is replaced at a time.
func rollout(ha bool) appsv1.DeploymentStrategy {
	surge, unavailable := intstr.FromInt32(1), intstr.FromInt32(0)
	if ha {
		surge, unavailable = intstr.FromInt32(0), intstr.FromInt32(1)
	}
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

func disruptionBudget(in Input, c controlplane.Component) *policyv1.PodDisruptionBudget {
	pdb := &policyv1.PodDisruptionBudget{TypeMeta: metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(in, c.Name, c.Name),
		Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: c.Name}}}}
	one := intstr.FromInt32(1)
	if in.ControlPlane.Placement.HighlyAvailable {
		pdb.Spec.MaxUnavailable = &one
	} else {
		pdb.Spec.MinAvailable = &one
	}
	return pdb
}

// podReplica is what every pod of c runs: the kubelet fills in what tells
// replicas apart ($(POD_NAME), $(POD_IP)).
func podReplica(in Input, c controlplane.Component) controlplane.Replica {
	return c.Instance(PodsIn(in.ControlPlane.Namespace).Vars(c.Name, 0))
}

func podTemplate(in Input, c controlplane.Component) (corev1.PodTemplateSpec, error) {
	tmpl := podReplica(in, c)
	args := tmpl.Args
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
	for _, v := range c.Volumes {
		volumes = append(volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: v.Secret, DefaultMode: ptr.To(int32(0o440))}}})
		mounts = append(mounts, corev1.VolumeMount{Name: v.Name, MountPath: controlplane.MountRoot + "/" + v.Name, ReadOnly: true})
	}
	if len(tmpl.Files) > 0 {
		volumes = append(volumes, corev1.Volume{Name: controlplane.ReplicaVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: c.Name + "-config"}}}})
		mounts = append(mounts, corev1.VolumeMount{Name: controlplane.ReplicaVolume, MountPath: controlplane.MountRoot + "/" + controlplane.ReplicaVolume, ReadOnly: true})
	}
	dataDir := controlplane.DataRoot + "/" + c.Name
	if c.Persistent {
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: dataDir})
	} else {
		// Scratch space (the API server's generated certificates).
		volumes = append(volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "data", MountPath: dataDir})
	}
	probe, err := readiness(c, &args)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	env := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}
	for _, e := range c.Env {
		k, v, _ := strings.Cut(e, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	requests := corev1.ResourceList{}
	if c.Resources.CPU != "" {
		q, err := resource.ParseQuantity(c.Resources.CPU)
		if err != nil {
			return corev1.PodTemplateSpec{}, fmt.Errorf("cpu %q: %w", c.Resources.CPU, err)
		}
		requests[corev1.ResourceCPU] = q
	}
	if c.Resources.Memory != "" {
		q, err := resource.ParseQuantity(c.Resources.Memory)
		if err != nil {
			return corev1.PodTemplateSpec{}, fmt.Errorf("memory %q: %w", c.Resources.Memory, err)
		}
		requests[corev1.ResourceMemory] = q
	}
	spec := corev1.PodSpec{
		PriorityClassName:            c.PriorityClass,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		SecurityContext:              podSecurity(in.UID),
		Containers: []corev1.Container{{
			Name:      c.Name,
			Image:     imageOf(in, c),
			Command:   []string{c.Binary},
			Args:      args,
			Env:       env,
			Ports:     containerPorts[c.Name],
			Resources: corev1.ResourceRequirements{Requests: requests},
			// A container that fails tells why in its status.
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			VolumeMounts:             mounts,
			ReadinessProbe:           probe,
			LivenessProbe:            liveness(probe),
			SecurityContext:          containerSecurity(),
		}},
		Volumes: volumes,
	}
	if c.Restore != "" {
		// A member with no data yet starts from the archive's snapshot.
		spec.InitContainers = []corev1.Container{{
			Name:                     "restore",
			Image:                    in.BackupImage,
			Command:                  []string{"/usr/local/bin/hcp-operator", "etcd-restore", "--url=" + c.Restore, "--work-dir=/tmp", "--"},
			Args:                     args,
			Env:                      env,
			VolumeMounts:             mounts,
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext:          containerSecurity(),
		}}
	}
	if c.StopGrace > 0 {
		spec.TerminationGracePeriodSeconds = ptr.To(int64(max(c.StopGrace/time.Second, 1)))
	}
	place(in, c, &spec)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels(in, c),
		Annotations: map[string]string{"hypershift.openshift.io/component-hash": c.Hash()}}, Spec: spec}, nil
}

// readiness turns the model's probe into an HTTP(S) GET. etcd's health needs a
// client certificate on its client port, so etcd also serves it, plainly, on
// its metrics port.
func readiness(c controlplane.Component, args *[]string) (*corev1.Probe, error) {
	p := c.Probe
	if p.Port == 0 {
		return nil, nil
	}
	scheme, port := corev1.URISchemeHTTPS, p.Port
	if p.Scheme == "http" {
		scheme = corev1.URISchemeHTTP
	}
	if c.Name == controlplane.Etcd {
		*args = append(*args, "--listen-metrics-urls=http://0.0.0.0:"+strconv.Itoa(etcdMetricsPort))
		scheme, port = corev1.URISchemeHTTP, etcdMetricsPort
	}
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p.Path, Port: intstr.FromInt32(int32(port)), Scheme: scheme}},
		PeriodSeconds:    5,
		TimeoutSeconds:   3,
		FailureThreshold: 3,
	}, nil
}

func liveness(readiness *corev1.Probe) *corev1.Probe {
	if readiness == nil {
		return nil
	}
	l := readiness.DeepCopy()
	// Started slowly the first time (etcd joining, the API server's caches).
	l.InitialDelaySeconds, l.PeriodSeconds, l.FailureThreshold = 60, 10, 6
	return l
}

func podSecurity(uid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(uid),
		RunAsGroup:     ptr.To(uid),
		FSGroup:        ptr.To(uid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurity drops every capability (KILL, MKNOD, SETUID and SETGID
// among them), forbids privilege escalation and writes to the image.
func containerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// place applies the placement rules of hosted control planes: tolerate the
// control-plane and cluster taints, prefer (or, on dedicated nodes, require)
// nodes labelled for control planes and for this cluster, keep one cluster's
// pods together, spread each component's replicas over zones and hosts when
// highly available, and honour the cluster's node selector, tolerations and
// topology.
func place(in Input, c controlplane.Component, spec *corev1.PodSpec) {
	pl := in.ControlPlane.Placement
	ns := in.ControlPlane.Namespace
	spec.NodeSelector = maps.Clone(pl.NodeSelector)
	spec.Tolerations = []corev1.Toleration{
		{Key: hyperv1.ControlPlaneLabel, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
		{Key: hyperv1.ClusterLabel, Operator: corev1.TolerationOpEqual, Value: ns, Effect: corev1.TaintEffectNoSchedule},
	}
	spec.Tolerations = append(spec.Tolerations, pl.Tolerations...)

	var required []corev1.NodeSelectorRequirement
	if in.DedicatedNodes {
		required = append(required, corev1.NodeSelectorRequirement{Key: hyperv1.ControlPlaneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}})
	}
	switch pl.Topology {
	case hyperv1.DedicatedTopology:
		required = append(required, corev1.NodeSelectorRequirement{Key: hyperv1.ClusterLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{ns}})
	case hyperv1.DedicatedRequestServingTopology:
		if c.RequestServing {
			required = append(required, corev1.NodeSelectorRequirement{Key: hyperv1.RequestServingComponentLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}})
			spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: hyperv1.RequestServingComponentLabel, Operator: corev1.TolerationOpEqual,
				Value: "true", Effect: corev1.TaintEffectNoSchedule})
		}
	}
	aff := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
			{Weight: 50, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: hyperv1.ControlPlaneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{"true"}}}}},
			{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: hyperv1.ClusterLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{ns}}}}},
		}}}
	if len(required) > 0 {
		aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: required}}}
	}
	// One cluster's pods together, on as few nodes as they fit.
	aff.PodAffinity = &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
		Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{hyperv1.HostedControlPlaneNamespaceLabel: ns}}}}}}
	if pl.HighlyAvailable {
		own := &metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: c.Name}}
		aff.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
			{TopologyKey: corev1.LabelTopologyZone, LabelSelector: own},
			{TopologyKey: corev1.LabelHostname, LabelSelector: own},
		}}
	}
	spec.Affinity = aff
}

// services are the in-cluster Services and the published ones.
func services(in Input) []client.Object {
	sel := func(c string) map[string]string { return map[string]string{AppLabel: c} }
	svc := func(name, component string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: meta(in, name, component),
			Spec: corev1.ServiceSpec{Selector: sel(component), Ports: ports, Type: corev1.ServiceTypeClusterIP}}
	}
	tcp := func(name string, port, target int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: port, TargetPort: intstr.FromInt32(target)}
	}
	discovery := svc(controlplane.ServiceEtcdDiscovery, controlplane.Etcd,
		tcp("client", controlplane.EtcdClientPort, controlplane.EtcdClientPort), tcp("peer", controlplane.EtcdPeerPort, controlplane.EtcdPeerPort))
	discovery.Spec.ClusterIP = corev1.ClusterIPNone
	discovery.Spec.PublishNotReadyAddresses = true
	out := []client.Object{
		discovery,
		svc(controlplane.ServiceEtcdClient, controlplane.Etcd, tcp("client", controlplane.EtcdClientPort, controlplane.EtcdClientPort)),
		svc(controlplane.ServiceKonnectivityLocal, controlplane.KonnectivityServer, tcp("server", controlplane.KonnServerPort, controlplane.KonnServerPort)),
	}
	for _, p := range in.ControlPlane.Published {
		name := publishedServiceName(p.Service)
		port := int32(controlplane.KubeAPIServerPodPort)
		if p.Service == string(hyperv1.Konnectivity) {
			port = int32(controlplane.KonnAgentPort)
		}
		s := svc(name, p.Component, tcp("https", port, int32(p.TargetPort)))
		strategy := p.Strategy
		switch strategy.Type {
		case hyperv1.NodePort:
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = int32(p.Port)
		case hyperv1.LoadBalancer:
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
		case hyperv1.Route:
			out = append(out, route(in, name, strategy))
		}
		out = append(out, s)
	}
	return out
}

// publishedServiceName is the Service of a published service type.
func publishedServiceName(service string) string {
	if service == string(hyperv1.Konnectivity) {
		return controlplane.ServiceKonnectivity
	}
	return controlplane.ServiceKubeAPIServer
}

// published is the control plane's published service of a type.
func published(cp *controlplane.ControlPlane, svc hyperv1.ServiceType) controlplane.PublishedService {
	for _, p := range cp.Published {
		if p.Service == string(svc) {
			return p
		}
	}
	return controlplane.PublishedService{}
}

var routeGVK = schema.GroupVersionKind{Group: "route.openshift.io", Version: "v1", Kind: "Route"}

// route passes TLS through to the Service: clients verify the component's own
// certificate.
func route(in Input, name string, strategy hyperv1.ServicePublishingStrategy) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"to":   map[string]any{"kind": "Service", "name": name},
		"port": map[string]any{"targetPort": "https"},
		"tls":  map[string]any{"termination": "passthrough", "insecureEdgeTerminationPolicy": "None"},
	}}}
	if strategy.Route != nil && strategy.Route.Hostname != "" {
		_ = unstructured.SetNestedField(u.Object, strategy.Route.Hostname, "spec", "host")
	}
	u.SetGroupVersionKind(routeGVK)
	m := meta(in, name, "")
	u.SetNamespace(m.Namespace)
	u.SetName(m.Name)
	u.SetLabels(m.Labels)
	return u
}

// networkPolicies: nothing reaches the namespace's pods but the namespace's
// own pods, clients of the API server on 6443, agents of konnectivity where it
// is published, and metrics scrapers from monitoring namespaces.
func networkPolicies(in Input) []client.Object {
	np := func(name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		return &networkingv1.NetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta(in, name, ""), Spec: spec}
	}
	tcp := corev1.ProtocolTCP
	port := func(p int) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(int32(p)))}}
	}
	out := []client.Object{
		np("default-deny", networkingv1.NetworkPolicySpec{}),
		np("same-namespace", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}}),
		np("kube-apiserver", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: controlplane.KubeAPIServer}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: port(controlplane.KubeAPIServerPodPort)}}}),
		np("metrics", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{MonitoringLabel: "monitoring"}}}}}}}),
	}
	if t := published(in.ControlPlane, hyperv1.Konnectivity).Strategy.Type; t == hyperv1.NodePort || t == hyperv1.LoadBalancer || t == hyperv1.Route {
		out = append(out, np("konnectivity-server", networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{AppLabel: controlplane.KonnectivityServer}},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: port(controlplane.KonnAgentPort)}}}))
	}
	return out
}
