package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Conditions of backups.
const (
	// ConditionBackupCompleted is True once an HCPEtcdBackup's archive is
	// written, False when it failed (it is not retried: create another).
	ConditionBackupCompleted = "BackupCompleted"
	// ConditionEtcdBackupSucceeded on a HostedCluster says whether its last
	// scheduled backup succeeded; it turns False when one fails.
	ConditionEtcdBackupSucceeded = "EtcdBackupSucceeded"
)

// EtcdBackupStorageType is where backup archives are written.
// +kubebuilder:validation:Enum=Local;S3
type EtcdBackupStorageType string

// The backup storage types.
const (
	// LocalBackupStorage is a directory on the management plane.
	LocalBackupStorage EtcdBackupStorageType = "Local"
	// S3BackupStorage is an S3-compatible object store.
	S3BackupStorage EtcdBackupStorageType = "S3"
)

// Keys of the Secret that holds S3 credentials.
const (
	S3AccessKeyIDKey     = "aws_access_key_id"
	S3SecretAccessKeyKey = "aws_secret_access_key"
)

// EtcdBackupStorage is where a backup archive is written.
// +kubebuilder:validation:XValidation:rule="self.type != 'S3' || has(self.s3)",message="s3 is required when type is S3"
type EtcdBackupStorage struct {
	// Type is Local (a directory on the management plane) or S3.
	// +required
	Type EtcdBackupStorageType `json:"type"`

	// Local is the directory for type Local.
	// +optional
	Local *LocalEtcdBackupStorage `json:"local,omitempty"`

	// S3 is the bucket for type S3.
	// +optional
	S3 *S3EtcdBackupStorage `json:"s3,omitempty"`
}

// LocalEtcdBackupStorage is a directory on the management plane.
type LocalEtcdBackupStorage struct {
	// Path is an absolute directory; backups under the management plane's
	// data directory when empty.
	// +optional
	// +kubebuilder:validation:Pattern=`^(/.*)?$`
	Path string `json:"path,omitempty"`
}

// S3EtcdBackupStorage is a bucket of an S3-compatible object store.
type S3EtcdBackupStorage struct {
	// Endpoint is the store's URL, e.g. https://s3.example.com or
	// http://127.0.0.1:8333.
	// +required
	// +kubebuilder:validation:Pattern=`^https?://[^/]+/?$`
	Endpoint string `json:"endpoint"`

	// Bucket must exist.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`

	// Prefix is put in front of archive names in the bucket.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Region of the bucket; us-east-1 when empty.
	// +optional
	Region string `json:"region,omitempty"`

	// Credentials names a Secret in the namespace of the object that uses
	// it, with keys aws_access_key_id and aws_secret_access_key.
	// +required
	Credentials corev1.LocalObjectReference `json:"credentials"`
}

// HCPEtcdBackupSpec says which cluster to back up and where.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create another HCPEtcdBackup"
type HCPEtcdBackupSpec struct {
	// HostedCluster names the HostedCluster, in this namespace.
	// +required
	HostedCluster corev1.LocalObjectReference `json:"hostedCluster"`

	// Storage is where the archive is written.
	// +required
	Storage EtcdBackupStorage `json:"storage"`
}

// HCPEtcdBackupStatus reports the backup.
type HCPEtcdBackupStatus struct {
	// URL is where the archive is: file:///... or s3://bucket/key.
	// +optional
	URL string `json:"url,omitempty"`
	// Size is the archive's size in bytes.
	// +optional
	Size int64 `json:"size,omitempty"`
	// SHA256 is the archive's checksum.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// Revision is the etcd revision of the snapshot.
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// CompletionTime is when the archive was written.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Conditions: BackupCompleted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// HCPEtcdBackup takes one backup of a hosted cluster: an etcd snapshot with
// the keys that make it usable, in one archive.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=hcpetcdbackups,shortName=etcdbackup;etcdbackups,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type="string",JSONPath=".spec.hostedCluster.name",description="HostedCluster"
// +kubebuilder:printcolumn:name="Completed",type="string",JSONPath=".status.conditions[?(@.type==\"BackupCompleted\")].status",description="The archive is written"
// +kubebuilder:printcolumn:name="Size",type="integer",JSONPath=".status.size",description="Archive size in bytes"
// +kubebuilder:printcolumn:name="URL",type="string",JSONPath=".status.url",description="Where the archive is"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"BackupCompleted\")].message",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type HCPEtcdBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   HCPEtcdBackupSpec   `json:"spec"`
	Status HCPEtcdBackupStatus `json:"status,omitempty"`
}

// HCPEtcdBackupList is a list of HCPEtcdBackups.
// +kubebuilder:object:root=true
type HCPEtcdBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HCPEtcdBackup `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HCPEtcdBackup{}, &HCPEtcdBackupList{})
}
