package guest

import (
	"fmt"
	"net"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// AddonsInput says what the hosted cluster's own objects depend on.
type AddonsInput struct {
	// ServiceCIDR is the cluster's service network; the DNS Service takes its
	// tenth address.
	ServiceCIDR string
	// CoreDNSImage is the cluster DNS image, e.g. registry.hcp.test/coredns:v1.15.0.
	CoreDNSImage string
	// Policy is the infrastructure availability policy: one DNS replica for
	// SingleReplica, two spread over nodes for HighlyAvailable.
	Policy hyperv1.AvailabilityPolicy
	// KubeletClientUser is the API server's user towards kubelets.
	KubeletClientUser string
	// APIServer is the published API server address (an IP) and port: the
	// kubernetes Service's endpoint, which pods reach it by.
	APIServerIP   string
	APIServerPort int32
	// Tolerations are taints of the cluster's nodes that CoreDNS tolerates
	// too.
	Tolerations []corev1.Toleration
}

// Names of the cluster DNS objects in kube-system.
const (
	CoreDNS    = "coredns"
	DNSService = "kube-dns"
)

// Addons are the objects the control plane keeps inside a hosted cluster so
// that its nodes work: the API server's right to the kubelets' API, the nodes'
// right to what kube-proxy reads, and cluster DNS (CoreDNS at the service
// network's tenth address).
func Addons(in AddonsInput) ([]client.Object, error) {
	dnsIP, err := hosted.ServiceIP(in.ServiceCIDR, hosted.DNSServiceIndex)
	if err != nil {
		return nil, err
	}
	if in.CoreDNSImage == "" {
		return nil, fmt.Errorf("no CoreDNS image")
	}
	replicas := int32(1)
	if in.Policy == hyperv1.HighlyAvailable {
		replicas = 2
	}
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, Labels: map[string]string{"k8s-app": DNSService}}
	}
	binding := func(name, role string, subject rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject}}
	}
	labels := map[string]string{"k8s-app": DNSService}
	dnsPorts := []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
		{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP}}
	objs := []client.Object{
		binding("hcp:kube-apiserver-kubelet-client", "system:kubelet-api-admin",
			rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: in.KubeletClientUser}),
		binding("hcp:node-proxier", "system:node-proxier", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}),
		// Kubelets renew their client certificates themselves.
		binding("hcp:node-client-renewal", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
			rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}),
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(CoreDNS)},
		&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			}},
		binding("system:coredns", "system:coredns", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: CoreDNS, Namespace: metav1.NamespaceSystem}),
		&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta(CoreDNS),
			Data: map[string]string{"Corefile": corefile}},
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: meta(CoreDNS),
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						ServiceAccountName: CoreDNS,
						PriorityClassName:  "system-cluster-critical",
						DNSPolicy:          corev1.DNSDefault,
						NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
						Tolerations: append([]corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
							{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}, in.Tolerations...),
						Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
							PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
								PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: corev1.LabelHostname}}}}},
						Containers: []corev1.Container{{
							Name:  CoreDNS,
							Image: in.CoreDNSImage,
							Args:  []string{"-conf", "/etc/coredns/Corefile"},
							Ports: dnsPorts,
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")}},
							VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
							LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}},
								InitialDelaySeconds: 60, TimeoutSeconds: 5, FailureThreshold: 5},
							ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}},
								PeriodSeconds: 2},
							SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
								Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}, Drop: []corev1.Capability{"ALL"}}},
						}},
						Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: CoreDNS}}}}},
					},
				},
			}},
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: DNSService, Namespace: metav1.NamespaceSystem, Labels: map[string]string{"k8s-app": DNSService, "kubernetes.io/name": "CoreDNS"}},
			Spec: corev1.ServiceSpec{ClusterIP: dnsIP, Selector: labels, Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			}}},
	}
	// The API servers do not reconcile the kubernetes Service's endpoints
	// (they are not on the cluster's network): its endpoint is the published
	// address.
	// A loopback address (a control plane published on 127.0.0.1) is not one
	// pods can reach, nor one an EndpointSlice may hold.
	if ip := net.ParseIP(in.APIServerIP); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() && in.APIServerPort > 0 {
		family := discoveryv1.AddressTypeIPv4
		if ip.To4() == nil {
			family = discoveryv1.AddressTypeIPv6
		}
		objs = append(objs, &discoveryv1.EndpointSlice{TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
				Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes", discoveryv1.LabelManagedBy: "hcp.dev"}},
			AddressType: family,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(in.APIServerPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
		},
			// The Endpoints too, as an API server's own reconciler keeps
			// both; not mirrored into a second slice.
			&corev1.Endpoints{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Endpoints"},
				ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
					Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
				Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: ip.String()}},
					Ports: []corev1.EndpointPort{{Name: "https", Port: in.APIServerPort, Protocol: corev1.ProtocolTCP}}}},
			})
	}
	return objs, nil
}

// corefile serves cluster.local from the API and forwards the rest to the
// node's resolvers.
const corefile = `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`
