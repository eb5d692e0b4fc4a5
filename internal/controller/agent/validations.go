package agent

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
	"github.com/hcp-dev/hcp/internal/hosted"
)

// Validation IDs and categories.
const (
	ValidationHasInventory   = "has-inventory"
	ValidationMinCPUCores    = "has-min-cpu-cores"
	ValidationMinMemory      = "has-min-memory"
	ValidationMinValidDisks  = "has-min-valid-disks"
	ValidationHostnameValid  = "hostname-valid"
	ValidationHostnameUnique = "hostname-unique"
	ValidationConnected      = "connected"
	// ValidationCanRunNode: the host has what a real node needs (root,
	// iptables, cgroups), or is a simulated node.
	ValidationCanRunNode = "can-run-node"

	CategoryHardware = "hardware"
	CategoryNetwork  = "network"

	statusSuccess = "success"
	statusFailure = "failure"
	statusPending = "pending"
)

// Requirements are the least a worker host must have.
type Requirements struct {
	CPUCores    int64
	MemoryBytes int64
	DiskBytes   int64
}

// DefaultRequirements are a worker's: 2 cores, 8 GiB of memory, a 100 GB disk.
var DefaultRequirements = Requirements{CPUCores: 2, MemoryBytes: 8 << 30, DiskBytes: 100_000_000_000}

// validate runs every validation of a host. otherHostnames are the hostnames of
// the other Agents in the namespace.
func validate(agent *agentv1.Agent, connected bool, req Requirements, otherHostnames map[string]bool) agentv1.ValidationsStatus {
	inv := agent.Status.Inventory
	has := inv.ReportTime != nil
	out := agentv1.ValidationsStatus{}
	add := func(category, id string, ok bool, pass, fail string) {
		v := agentv1.HostValidationInfo{ID: id, Status: statusSuccess, Message: pass}
		switch {
		case !has && id != ValidationConnected && id != ValidationHasInventory:
			v.Status, v.Message = statusPending, "Missing inventory"
		case !ok:
			v.Status, v.Message = statusFailure, fail
		}
		out[category] = append(out[category], v)
	}
	add(CategoryHardware, ValidationHasInventory, has, "Valid inventory exists for the host", "Did not receive the host's hardware inventory")
	add(CategoryHardware, ValidationMinCPUCores, inv.Cpu.Count >= req.CPUCores,
		"Sufficient CPU cores", fmt.Sprintf("The host has %d CPU cores; a worker needs at least %d", inv.Cpu.Count, req.CPUCores))
	add(CategoryHardware, ValidationMinMemory, inv.Memory.PhysicalBytes >= req.MemoryBytes,
		"Sufficient minimum RAM", fmt.Sprintf("The host has %s of memory; a worker needs at least %s", gib(inv.Memory.PhysicalBytes), gib(req.MemoryBytes)))
	eligible := 0
	for _, d := range inv.Disks {
		if d.InstallationEligibility.Eligible && d.SizeBytes >= req.DiskBytes {
			eligible++
		}
	}
	add(CategoryHardware, ValidationMinValidDisks, eligible > 0,
		"Sufficient disk capacity", fmt.Sprintf("No eligible disk of at least %d GB was found", req.DiskBytes/1_000_000_000))
	name := hosted.Hostname(agent)
	nameOK := name != "" && name != "localhost" && !strings.HasPrefix(name, "localhost.") && len(validation.IsDNS1123Subdomain(name)) == 0
	add(CategoryHardware, ValidationHostnameValid, nameOK,
		fmt.Sprintf("Hostname %s is allowed", name), fmt.Sprintf("Hostname %q is forbidden: it must be a DNS name and not localhost; set spec.hostname", name))
	add(CategoryHardware, ValidationHostnameUnique, !otherHostnames[name],
		fmt.Sprintf("Hostname %s is unique in the namespace", name), fmt.Sprintf("Hostname %s is not unique in the namespace; set spec.hostname on one of the Agents", name))
	runtime, problems := "containerd", []string(nil)
	if r := inv.NodeRuntime; r != nil {
		runtime, problems = r.Kind, r.Problems
	}
	add(CategoryHardware, ValidationCanRunNode, len(problems) == 0,
		"The host can run a node ("+runtime+")", "The host cannot run a node: "+strings.Join(problems, "; "))
	v := agentv1.HostValidationInfo{ID: ValidationConnected, Status: statusSuccess, Message: "Host is connected"}
	if !connected {
		v.Status, v.Message = statusFailure, "Host is disconnected: it has not checked in"
	}
	out[CategoryNetwork] = append(out[CategoryNetwork], v)
	return out
}

// failed lists the failing validation IDs.
func failed(v agentv1.ValidationsStatus) (failing, pending []string) {
	for _, cat := range []string{CategoryHardware, CategoryNetwork} {
		for _, x := range v[cat] {
			switch x.Status {
			case statusFailure:
				failing = append(failing, x.ID)
			case statusPending:
				pending = append(pending, x.ID)
			}
		}
	}
	return failing, pending
}

func gib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB" }
