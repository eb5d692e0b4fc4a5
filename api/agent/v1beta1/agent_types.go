package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Agent condition types, as assisted-service names them.
const (
	SpecSyncedCondition      = "SpecSynced"
	ConnectedCondition       = "Connected"
	RequirementsMetCondition = "RequirementsMet"
	ValidatedCondition       = "Validated"
	InstalledCondition       = "Installed"
	BoundCondition           = "Bound"
)

// HostRole is the role a host takes in its cluster.
// +kubebuilder:validation:Enum="";auto-assign;master;worker
type HostRole string

// The host roles.
const (
	HostRoleAutoAssign HostRole = "auto-assign"
	HostRoleMaster     HostRole = "master"
	HostRoleWorker     HostRole = "worker"
)

// Agent is a host that booted the discovery agent and registered through an
// InfraEnv. Its name is the host's ID.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=agents,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type="string",JSONPath=".spec.clusterDeploymentName.name",description="The cluster the agent is bound to"
// +kubebuilder:printcolumn:name="Approved",type="boolean",JSONPath=".spec.approved",description="Approved for use"
// +kubebuilder:printcolumn:name="Role",type="string",JSONPath=".status.role",description="Role"
// +kubebuilder:printcolumn:name="Stage",type="string",JSONPath=".status.progress.currentStage",description="Installation stage"
// +kubebuilder:printcolumn:name="State",type="string",JSONPath=".status.debugInfo.state",description="Host state"
// +kubebuilder:printcolumn:name="Hostname",type="string",JSONPath=".status.inventory.hostname",description="Hostname",priority=1
// +kubebuilder:printcolumn:name="Requested Hostname",type="string",JSONPath=".spec.hostname",description="Requested hostname",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the user and the cluster provider ask of the host.
	// +optional
	Spec AgentSpec `json:"spec,omitempty"`
	// Status is what the host reported.
	// +optional
	Status AgentStatus `json:"status,omitempty"`
}

// ClusterReference names a cluster an Agent is bound to.
type ClusterReference struct {
	// Name is the cluster's name.
	// +required
	Name string `json:"name"`
	// Namespace is the cluster's namespace.
	// +required
	Namespace string `json:"namespace"`
}

// IgnitionEndpointTokenReference references the Secret with the token the host
// presents to the ignition server.
type IgnitionEndpointTokenReference struct {
	// Namespace of the Secret.
	// +required
	Namespace string `json:"namespace"`
	// Name of the Secret.
	// +required
	Name string `json:"name"`
}

// AgentSpec is the desired state of an Agent.
type AgentSpec struct {
	// ClusterDeploymentName is the cluster the host is bound to; empty when free.
	// +optional
	ClusterDeploymentName *ClusterReference `json:"clusterDeploymentName,omitempty"`
	// Role is the host's role.
	// +optional
	Role HostRole `json:"role,omitempty"`
	// Hostname overrides the host's reported hostname.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Hostname string `json:"hostname,omitempty"`
	// Approved allows the host to be used.
	// +optional
	Approved bool `json:"approved"`
	// InstallationDiskID is the disk to install on.
	// +optional
	InstallationDiskID string `json:"installation_disk_id,omitempty"` //nolint:tagliatelle // assisted-service's name
	// IgnitionEndpointTokenReference references the ignition server token.
	// +optional
	IgnitionEndpointTokenReference *IgnitionEndpointTokenReference `json:"ignitionEndpointTokenReference,omitempty"`
	// NodeLabels are put on the node the host becomes.
	// +optional
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`
}

// AgentStatus is the observed state of an Agent.
type AgentStatus struct {
	// Inventory is the host's hardware as it reported it.
	// +optional
	Inventory HostInventory `json:"inventory,omitempty"`
	// Progress is the installation progress.
	// +optional
	Progress HostProgressInfo `json:"progress,omitempty"`
	// Role is the role the host has.
	// +optional
	Role HostRole `json:"role,omitempty"`
	// ValidationsInfo is the result of each validation, by category.
	// +optional
	ValidationsInfo ValidationsStatus `json:"validationsInfo,omitempty"`
	// InstallationDiskID is the disk chosen for installation.
	// +optional
	InstallationDiskID string `json:"installationDiskID,omitempty"`
	// DebugInfo holds the host's state.
	// +optional
	DebugInfo DebugInfo `json:"debugInfo,omitempty"`
	// Conditions are the Agent's conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ValidationsStatus maps a category (hardware, network, ...) to its validations.
type ValidationsStatus map[string][]HostValidationInfo

// HostValidationInfo is the result of one validation.
type HostValidationInfo struct {
	// ID names the validation, e.g. has-min-cpu-cores.
	ID string `json:"id"`
	// Status is success, failure or pending.
	Status string `json:"status"`
	// Message explains the result.
	Message string `json:"message"`
}

// DebugInfo holds the host's state.
type DebugInfo struct {
	// State is the host's state, e.g. known-unbound.
	// +optional
	State string `json:"state,omitempty"`
	// StateInfo explains the state.
	// +optional
	StateInfo string `json:"stateInfo,omitempty"`
}

// HostProgressInfo is the installation progress of a host.
type HostProgressInfo struct {
	// CurrentStage is the installation stage.
	// +optional
	CurrentStage string `json:"currentStage,omitempty"`
	// ProgressInfo is free text about the stage.
	// +optional
	ProgressInfo string `json:"progressInfo,omitempty"`
	// InstallationPercentage is the progress in percent.
	// +optional
	InstallationPercentage int64 `json:"installationPercentage,omitempty"`
	// StageStartTime is when the stage started.
	// +optional
	StageStartTime *metav1.Time `json:"stageStartTime,omitempty"`
	// StageUpdateTime is when the stage was last reported.
	// +optional
	StageUpdateTime *metav1.Time `json:"stageUpdateTime,omitempty"`
}

// HostInventory is a host's hardware.
type HostInventory struct {
	// Hostname is the host's name.
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// ReportTime is when the inventory was taken.
	// +optional
	ReportTime *metav1.Time `json:"reportTime,omitempty"`
	// Memory is the host's memory.
	// +optional
	Memory HostMemory `json:"memory,omitempty"`
	// Cpu is the host's processors.
	// +optional
	Cpu HostCPU `json:"cpu,omitempty"` //nolint:revive // JSON name from assisted-service
	// Interfaces are the host's network interfaces.
	// +optional
	// +listType=atomic
	Interfaces []HostInterface `json:"interfaces,omitempty"`
	// Disks are the host's disks.
	// +optional
	// +listType=atomic
	Disks []HostDisk `json:"disks,omitempty"`
	// Boot is how the host booted.
	// +optional
	Boot HostBoot `json:"boot,omitempty"`
	// SystemVendor identifies the machine.
	// +optional
	SystemVendor HostSystemVendor `json:"systemVendor,omitempty"`
	// NodeRuntime is how the host would run a node, and what it lacks for
	// that (an hcp extension of the inventory).
	// +optional
	NodeRuntime *HostNodeRuntime `json:"nodeRuntime,omitempty"`
}

// HostNodeRuntime says how a host runs a node once installed.
type HostNodeRuntime struct {
	// Kind is "containerd" for a real kubelet with containerd and runc, or
	// "simulated" for a simulated kubelet (no container runtime; for scale
	// tests).
	// +kubebuilder:validation:Enum=containerd;simulated
	Kind string `json:"kind"`
	// Problems are what keeps the host from running a real node (not root,
	// iptables missing, no usable cgroups); empty when none.
	// +optional
	// +listType=atomic
	Problems []string `json:"problems,omitempty"`
}

// HostMemory is a host's memory.
type HostMemory struct {
	// PhysicalBytes is the installed memory.
	PhysicalBytes int64 `json:"physicalBytes,omitempty"`
	// UsableBytes is the memory the OS can use.
	UsableBytes int64 `json:"usableBytes,omitempty"`
}

// HostCPU is a host's processors.
type HostCPU struct {
	// Architecture is the CPU architecture.
	Architecture string `json:"architecture,omitempty"`
	// ModelName is the CPU model.
	ModelName string `json:"modelName,omitempty"`
	// Count is the number of logical CPUs.
	Count int64 `json:"count,omitempty"`
	// ClockMegahertz is the CPU clock.
	ClockMegahertz int64 `json:"clockMegahertz,omitempty"`
	// Flags are the CPU flags.
	// +listType=atomic
	Flags []string `json:"flags,omitempty"`
}

// HostInterface is a network interface of a host.
type HostInterface struct {
	// Name is the interface name.
	Name string `json:"name"`
	// MacAddress is the hardware address.
	MacAddress string `json:"macAddress,omitempty"`
	// IPV4Addresses are the IPv4 addresses in CIDR form.
	// +listType=atomic
	IPV4Addresses []string `json:"ipV4Addresses,omitempty"`
	// IPV6Addresses are the IPv6 addresses in CIDR form.
	// +listType=atomic
	IPV6Addresses []string `json:"ipV6Addresses,omitempty"`
	// HasCarrier is true when the link is up.
	HasCarrier bool `json:"hasCarrier,omitempty"`
	// MTU is the interface MTU.
	MTU int64 `json:"mtu,omitempty"`
	// SpeedMbps is the link speed.
	SpeedMbps int64 `json:"speedMbps,omitempty"`
	// Vendor is the device vendor.
	Vendor string `json:"vendor,omitempty"`
	// Product is the device product.
	Product string `json:"product,omitempty"`
}

// HostDisk is a disk of a host.
type HostDisk struct {
	// ID identifies the disk (a stable path).
	ID string `json:"id,omitempty"`
	// Name is the device name, e.g. sda.
	Name string `json:"name"`
	// Path is the device path.
	Path string `json:"path,omitempty"`
	// ByPath is the /dev/disk/by-path link.
	ByPath string `json:"byPath,omitempty"`
	// DriveType is HDD, SSD, ...
	DriveType string `json:"driveType,omitempty"`
	// Vendor is the disk vendor.
	Vendor string `json:"vendor,omitempty"`
	// Model is the disk model.
	Model string `json:"model,omitempty"`
	// Serial is the disk serial number.
	Serial string `json:"serial,omitempty"`
	// SizeBytes is the disk size.
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// Bootable is true when the disk has a boot record.
	Bootable bool `json:"bootable,omitempty"`
	// InstallationEligibility says whether the OS can be installed on the disk.
	InstallationEligibility HostInstallationEligibility `json:"installationEligibility,omitempty"`
}

// HostInstallationEligibility says whether the OS can be installed on a disk.
type HostInstallationEligibility struct {
	// Eligible is true when it can.
	Eligible bool `json:"eligible,omitempty"`
	// NotEligibleReasons say why not.
	// +listType=atomic
	NotEligibleReasons []string `json:"notEligibleReasons,omitempty"`
}

// HostBoot is how a host booted.
type HostBoot struct {
	// CurrentBootMode is bios or uefi.
	CurrentBootMode string `json:"currentBootMode,omitempty"`
}

// HostSystemVendor identifies a machine.
type HostSystemVendor struct {
	// Manufacturer is the machine's maker.
	Manufacturer string `json:"manufacturer,omitempty"`
	// ProductName is the machine's model.
	ProductName string `json:"productName,omitempty"`
	// SerialNumber is the machine's serial number.
	SerialNumber string `json:"serialNumber,omitempty"`
	// Virtual is true for a virtual machine.
	Virtual bool `json:"virtual,omitempty"`
}

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Agent{}, &AgentList{})
}
