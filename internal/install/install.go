// Package install renders what runs hcp on an existing Kubernetes (or
// OpenShift) management cluster: the CRDs, the priority classes of hosted
// control planes, and the operator with its namespace, ServiceAccount and RBAC.
package install

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hyperv1 "github.com/hcp-dev/hcp/api/hypershift/v1beta1"
	"github.com/hcp-dev/hcp/config/crd"
	"github.com/hcp-dev/hcp/internal/controlplane"
)

// Priority classes, high to low, with HyperShift's values.
const (
	PriorityOperator = "hypershift-operator"
)

// PriorityClasses are the four classes of hosted control plane pods.
func PriorityClasses() []*schedulingv1.PriorityClass {
	pc := func(name string, value int32, desc string) *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{TypeMeta: metav1.TypeMeta{APIVersion: "scheduling.k8s.io/v1", Kind: "PriorityClass"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, Description: desc}
	}
	return []*schedulingv1.PriorityClass{
		pc(PriorityOperator, 100003000, "The hcp operator."),
		pc(controlplane.PriorityEtcd, 100002000, "etcd of hosted control planes."),
		pc(controlplane.PriorityAPICritical, 100001000, "Pods that API calls and admission need: kube-apiserver, konnectivity, aggregated API servers, webhooks."),
		pc(controlplane.PriorityControlPlane, 100000000, "Other hosted control plane pods."),
	}
}

// Options say how the operator runs.
type Options struct {
	// Namespace of the operator.
	Namespace string
	// Image of the operator.
	Image string
	// ImageRepository is where control plane pods pull hcp's images from
	// ("" is hcp's registry).
	ImageRepository string
	// Replicas of the operator (one leads).
	Replicas int32
	// InfraURL is the infrastructure service's address as hosts reach it
	// (the Service hcp-infra, exposed by the user); empty leaves the Agent
	// platform off.
	InfraURL string
}

// Objects returns everything to apply, in order.
func Objects(o Options) ([]client.Object, error) {
	crds, err := crd.All()
	if err != nil {
		return nil, err
	}
	var out []client.Object
	for _, c := range crds {
		c.APIVersion, c.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		out = append(out, c)
	}
	for _, p := range PriorityClasses() {
		out = append(out, p)
	}
	labels := map[string]string{"app": "hcp-operator"}
	out = append(out,
		&corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: o.Namespace,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}},
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "hcp-operator"}},
		clusterRole(),
		&rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "hcp-operator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "hcp-operator"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: o.Namespace, Name: "hcp-operator"}}},
		&appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "hcp-operator", Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: &o.Replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: operatorPod(o)},
			}},
		// The console keeps sessions in each replica's memory: a client
		// stays with one replica.
		&corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "hcp-console", Labels: labels},
			Spec: corev1.ServiceSpec{Selector: labels, SessionAffinity: corev1.ServiceAffinityClientIP,
				Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("console")}}}},
	)
	if o.InfraURL != "" {
		// Hosts register and fetch Ignition here; expose it at InfraURL (a
		// LoadBalancer, NodePort or Route in front of this Service).
		out = append(out, &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: "hcp-infra", Labels: labels},
			Spec: corev1.ServiceSpec{Selector: labels,
				Ports: []corev1.ServicePort{{Name: "https", Port: 8090, TargetPort: intstr.FromString("infra")}}}})
	}
	return out, nil
}

func operatorArgs(o Options) []string {
	args := []string{"--runtime=kubernetes", "--leader-elect=true", "--leader-election-namespace=" + o.Namespace}
	if o.ImageRepository != "" {
		args = append(args, "--image-repository="+o.ImageRepository)
	}
	if o.InfraURL != "" {
		args = append(args, "--infra-bind-address=:8090", "--infra-url="+o.InfraURL)
	}
	return args
}

func operatorPod(o Options) corev1.PodSpec {
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8081)}}, PeriodSeconds: 10}
	}
	t, f := true, false
	return corev1.PodSpec{
		ServiceAccountName: "hcp-operator",
		PriorityClassName:  PriorityOperator,
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &t,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{
			Name:    "operator",
			Image:   o.Image,
			Command: []string{"hcp-operator"},
			Args:    operatorArgs(o),
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 8080}, {Name: "health", ContainerPort: 8081},
				{Name: "console", ContainerPort: 8443}, {Name: "infra", ContainerPort: 8090}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: mustQuantity("100m"), corev1.ResourceMemory: mustQuantity("128Mi")}},
			// A crash tells why in the pod's status (hcp install --wait shows it).
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			ReadinessProbe:           probe("/readyz"),
			LivenessProbe:            probe("/healthz"),
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		// It may run beside the control planes it manages, on nodes kept
		// for them.
		Tolerations: []corev1.Toleration{{Key: hyperv1.ControlPlaneLabel, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
}

// clusterRole is what the operator does in the management cluster: its own
// APIs and Cluster API's, control plane workloads, their Secrets, Services,
// policies and volumes, nodes and pods to read, Leases to lead.
func clusterRole() *rbacv1.ClusterRole {
	all := []string{"*"}
	read := []string{"get", "list", "watch"}
	return &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "hcp-operator"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"hypershift.openshift.io", "agent-install.openshift.io", "capi-provider.agent-install.openshift.io",
				"cluster.x-k8s.io", "addons.cluster.x-k8s.io", "ipam.cluster.x-k8s.io", "runtime.cluster.x-k8s.io"}, Resources: all, Verbs: all},
			{APIGroups: []string{""}, Resources: []string{"namespaces", "secrets", "configmaps", "services", "persistentvolumeclaims", "events", "serviceaccounts"}, Verbs: all},
			{APIGroups: []string{""}, Resources: []string{"pods", "nodes", "endpoints"}, Verbs: read},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: all},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: all},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: all},
			{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: all},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: all},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: read},
			{APIGroups: []string{"scheduling.k8s.io"}, Resources: []string{"priorityclasses"}, Verbs: read},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: read},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: all},
			{APIGroups: []string{"route.openshift.io"}, Resources: []string{"routes"}, Verbs: all},
		}}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
