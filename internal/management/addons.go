// Package management renders what management nodes run besides their
// kubelets and cluster DNS: volumes from rancher's local-path-provisioner,
// each node's volumes in a directory of its own, from hcp's registry.
package management

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names of what Addons makes.
const (
	// StorageClass is the management nodes' default StorageClass.
	StorageClass = "local-path"
	// Provisioner provisions StorageClass's volumes.
	Provisioner          = "rancher.io/local-path"
	StorageNamespace     = "local-path-storage"
	provisionerName      = "local-path-provisioner"
	defaultClassAnnotate = "storageclass.kubernetes.io/is-default-class"
)

// Input says what the addons run and where.
type Input struct {
	// ProvisionerImage and HelperImage (a shell with mkdir and rm: busybox)
	// are the images.
	ProvisionerImage, HelperImage string
	// VolumeDirs is each node's directory for its volumes, by node name, as
	// the node's kubelet sees it.
	VolumeDirs map[string]string
	// Tolerations are the management nodes' taints.
	Tolerations []corev1.Toleration
}

// Addons are the objects of the storage provisioner and its default
// StorageClass.
func Addons(in Input) ([]client.Object, error) {
	if in.ProvisionerImage == "" || in.HelperImage == "" {
		return nil, fmt.Errorf("the provisioner and helper images are both needed")
	}
	return storageObjects(in)
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// storageObjects: local-path-provisioner in its namespace (privileged Pod
// Security: its helper pods mount the nodes' volume directories), allowed to
// manage PersistentVolumes, and the default StorageClass it serves. A volume
// is a directory on the node its first pod is scheduled to.
func storageObjects(in Input) ([]client.Object, error) {
	type nodePaths struct {
		Node  string   `json:"node"`
		Paths []string `json:"paths"`
	}
	var paths []nodePaths
	for _, node := range slices.Sorted(maps.Keys(in.VolumeDirs)) {
		paths = append(paths, nodePaths{Node: node, Paths: []string{in.VolumeDirs[node]}})
	}
	config, err := json.MarshalIndent(map[string]any{"nodePathMap": paths}, "", "  ")
	if err != nil {
		return nil, err
	}
	helper := corev1.Pod{TypeMeta: typeMeta("v1", "Pod"), ObjectMeta: metav1.ObjectMeta{Name: "helper-pod"},
		Spec: corev1.PodSpec{
			Tolerations: in.Tolerations,
			Containers:  []corev1.Container{{Name: "helper-pod", Image: in.HelperImage, ImagePullPolicy: corev1.PullIfNotPresent}},
		}}
	helperYAML, err := json.Marshal(helper)
	if err != nil {
		return nil, err
	}
	sa := provisionerName
	labels := map[string]string{"app": provisionerName}
	ns := StorageNamespace
	return []client.Object{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}},
		&rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: provisionerName},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}}}},
		&rbacv1.RoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"), ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: provisionerName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: provisionerName},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
		&rbacv1.ClusterRole{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: metav1.ObjectMeta{Name: "hcp:" + provisionerName},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
			}},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "hcp:" + provisionerName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "hcp:" + provisionerName},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}},
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local-path-config"},
			Data: map[string]string{
				"config.json":    string(config),
				"setup":          "#!/bin/sh\nset -eu\nmkdir -m 0777 -p \"$VOL_DIR\"\n",
				"teardown":       "#!/bin/sh\nset -eu\nrm -rf \"$VOL_DIR\"\n",
				"helperPod.yaml": string(helperYAML),
			}},
		&appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: provisionerName},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					ServiceAccountName: sa,
					PriorityClassName:  "system-cluster-critical",
					Tolerations:        in.Tolerations,
					Containers: []corev1.Container{{
						Name:    provisionerName,
						Image:   in.ProvisionerImage,
						Command: []string{provisionerName, "start", "--config", "/etc/config/config.json", "--service-account-name", sa},
						Env: []corev1.EnvVar{
							{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							{Name: "CONFIG_MOUNT_PATH", Value: "/etc/config/"},
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config/"}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: "local-path-config"}}}}},
				}},
			}},
		&storagev1.StorageClass{TypeMeta: typeMeta("storage.k8s.io/v1", "StorageClass"),
			ObjectMeta:        metav1.ObjectMeta{Name: StorageClass, Annotations: map[string]string{defaultClassAnnotate: "true"}},
			Provisioner:       Provisioner,
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
			ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete)},
	}, nil
}

// Describe is one line saying what the addons are, for hcp up's output.
func Describe(in Input) string {
	nodes := slices.Sorted(maps.Keys(in.VolumeDirs))
	return fmt.Sprintf("StorageClass %s (default; %s, a directory per volume on each of %s)",
		StorageClass, Provisioner, strings.Join(nodes, ", "))
}
