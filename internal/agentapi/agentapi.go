// Package agentapi is the wire protocol between hcp-agent and the
// infrastructure service, in the shape of assisted-service's v2 agent API:
// register a host, poll for steps, post step replies and progress. Every
// request carries the InfraEnv's token in the X-Secret-Key header.
package agentapi

import (
	"fmt"
	"regexp"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
)

// Paths of the API; {infra_env_id} and {host_id} are UUIDs.
const (
	Base             = "/api/assisted-install/v2"
	RegisterPath     = Base + "/infra-envs/{infra_env_id}/hosts"
	HostPath         = Base + "/infra-envs/{infra_env_id}/hosts/{host_id}"
	InstructionsPath = Base + "/infra-envs/{infra_env_id}/hosts/{host_id}/instructions"
	ProgressPath     = Base + "/infra-envs/{infra_env_id}/hosts/{host_id}/progress"
	DownloadPath     = Base + "/infra-envs/{infra_env_id}/downloads/files"

	// SecretKeyHeader carries the InfraEnv token.
	SecretKeyHeader = "X-Secret-Key"
)

// Step types.
const (
	StepInventory = "inventory"
	StepInstall   = "install"
)

// Installation stages a host reports through progress, in order.
const (
	StageStartingInstallation = "Starting installation"
	StageWritingImage         = "Writing image to disk"
	StageRebooting            = "Rebooting"
	StageJoined               = "Joined"
	StageDone                 = "Done"
	StageFailed               = "Failed"
)

// Host states, as assisted-service names them.
const (
	StateDiscoveringUnbound  = "discovering-unbound"
	StateKnownUnbound        = "known-unbound"
	StateInsufficientUnbound = "insufficient-unbound"
	StateDisconnectedUnbound = "disconnected-unbound"

	// States of a bound Agent.
	StateKnown                  = "known"
	StateInsufficient           = "insufficient"
	StateDisconnected           = "disconnected"
	StateInstalling             = "installing"
	StateInstallingInProgress   = "installing-in-progress"
	StateAddedToExistingCluster = "added-to-existing-cluster"
	StateError                  = "error"

	// StateUnbindingPendingUserAction: the Agent was unbound after its host
	// started installing; the host must boot into discovery again.
	StateUnbindingPendingUserAction = "unbinding-pending-user-action"
)

// Stages lists the stages a host may report.
var Stages = []string{StageStartingInstallation, StageWritingImage, StageRebooting, StageJoined, StageDone, StageFailed}

// Limits on what a host may send.
const (
	MaxBodyBytes      = 1 << 20
	MaxSmallBodyBytes = 16 << 10
	MaxDisks          = 256
	MaxInterfaces     = 256
	MaxAddresses      = 64
	MaxCPUFlags       = 512
	// MaxProgressInfo is the longest progress_info a host may report.
	MaxProgressInfo = 1024
)

// HostCreateParams registers a host.
type HostCreateParams struct {
	HostID                string `json:"host_id"`
	DiscoveryAgentVersion string `json:"discovery_agent_version,omitempty"`
}

// Host is the service's view of a registered host.
type Host struct {
	ID         string `json:"id"`
	InfraEnvID string `json:"infra_env_id"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	StatusInfo string `json:"status_info"`
	Href       string `json:"href"`
}

// Step is one instruction for a host.
type Step struct {
	StepType string   `json:"step_type"`
	StepID   string   `json:"step_id"`
	Args     []string `json:"args,omitempty"`
}

// Steps are the instructions a poll returns.
type Steps struct {
	NextInstructionSeconds int64  `json:"next_instruction_seconds"`
	Instructions           []Step `json:"instructions"`
}

// StepReply is a host's answer to a step.
type StepReply struct {
	StepType string `json:"step_type"`
	StepID   string `json:"step_id"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
	Error    string `json:"error,omitempty"`
}

// HostProgress reports an installation stage.
type HostProgress struct {
	CurrentStage string `json:"current_stage"`
	ProgressInfo string `json:"progress_info,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidID says whether s is a lowercase UUID, the form of host and InfraEnv IDs.
func ValidID(s string) bool { return uuidRE.MatchString(s) }

// ValidateInventory checks an inventory against the schema's limits and names
// the first field that breaks them.
func ValidateInventory(inv *agentv1.HostInventory) error {
	switch {
	case len(inv.Hostname) > 253:
		return fmt.Errorf("hostname: longer than 253 characters")
	case inv.Cpu.Count < 0 || inv.Cpu.Count > 1<<16:
		return fmt.Errorf("cpu.count: %d is out of range", inv.Cpu.Count)
	case len(inv.Cpu.Flags) > MaxCPUFlags:
		return fmt.Errorf("cpu.flags: more than %d", MaxCPUFlags)
	case inv.Memory.PhysicalBytes < 0 || inv.Memory.UsableBytes < 0:
		return fmt.Errorf("memory: negative size")
	case len(inv.Disks) > MaxDisks:
		return fmt.Errorf("disks: more than %d", MaxDisks)
	case len(inv.Interfaces) > MaxInterfaces:
		return fmt.Errorf("interfaces: more than %d", MaxInterfaces)
	}
	for i, d := range inv.Disks {
		if d.SizeBytes < 0 {
			return fmt.Errorf("disks[%d].sizeBytes: negative", i)
		}
		if len(d.Name) > 256 || len(d.Path) > 4096 {
			return fmt.Errorf("disks[%d]: name or path too long", i)
		}
	}
	for i, n := range inv.Interfaces {
		if len(n.IPV4Addresses)+len(n.IPV6Addresses) > MaxAddresses {
			return fmt.Errorf("interfaces[%d]: more than %d addresses", i, MaxAddresses)
		}
		if len(n.Name) > 256 {
			return fmt.Errorf("interfaces[%d].name: too long", i)
		}
	}
	return nil
}
