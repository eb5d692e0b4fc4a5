package agent

import (
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/jaypipes/ghw"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentv1 "github.com/hcp-dev/hcp/api/agent/v1beta1"
)

// minInstallDisk is the least size of a disk the OS can be installed on.
const minInstallDisk = 20_000_000_000

// Inventory describes the machine it runs on: CPU, memory, disks with their
// installation eligibility, network interfaces with addresses, system vendor and
// boot mode. hostname overrides the machine's hostname (for several lab hosts on
// one machine).
func Inventory(hostname string) (*agentv1.HostInventory, error) {
	inv := &agentv1.HostInventory{Hostname: hostname}
	if inv.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		inv.Hostname = h
	}
	now := metav1.Now()
	inv.ReportTime = &now
	inv.Cpu.Architecture = runtime.GOARCH
	if cpu, err := ghw.CPU(); err == nil {
		inv.Cpu.Count = int64(cpu.TotalHardwareThreads)
		if len(cpu.Processors) > 0 {
			inv.Cpu.ModelName = cpu.Processors[0].Model
			for _, f := range cpu.Processors[0].Capabilities {
				if len(inv.Cpu.Flags) < 256 {
					inv.Cpu.Flags = append(inv.Cpu.Flags, f)
				}
			}
		}
	}
	if inv.Cpu.Count == 0 {
		inv.Cpu.Count = int64(runtime.NumCPU())
	}
	if mem, err := ghw.Memory(); err == nil {
		inv.Memory.PhysicalBytes, inv.Memory.UsableBytes = mem.TotalPhysicalBytes, mem.TotalUsableBytes
	}
	if block, err := ghw.Block(); err == nil {
		for _, d := range block.Disks {
			inv.Disks = append(inv.Disks, disk(d))
		}
	}
	inv.Interfaces = interfaces()
	if p, err := ghw.Product(); err == nil {
		inv.SystemVendor = agentv1.HostSystemVendor{Manufacturer: known(p.Vendor), ProductName: known(p.Name), SerialNumber: known(p.SerialNumber)}
		inv.SystemVendor.Virtual = isVirtual(p.Vendor + " " + p.Name)
	}
	inv.Boot.CurrentBootMode = "bios"
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		inv.Boot.CurrentBootMode = "uefi"
	}
	return inv, nil
}

func disk(d *ghw.Disk) agentv1.HostDisk {
	out := agentv1.HostDisk{
		ID: "/dev/" + d.Name, Name: d.Name, Path: "/dev/" + d.Name, DriveType: d.DriveType.String(),
		Vendor: known(d.Vendor), Model: known(d.Model), Serial: known(d.SerialNumber), SizeBytes: int64(d.SizeBytes),
	}
	if d.BusPath != "" && d.BusPath != "unknown" {
		out.ByPath = "/dev/disk/by-path/" + d.BusPath
		out.ID = out.ByPath
	}
	var reasons []string
	if d.IsRemovable {
		reasons = append(reasons, "Disk is removable")
	}
	if d.SizeBytes < minInstallDisk {
		reasons = append(reasons, "Disk is too small (disk size is less than 20 GB)")
	}
	if strings.HasPrefix(d.Name, "loop") || strings.HasPrefix(d.Name, "ram") || strings.HasPrefix(d.Name, "zram") {
		reasons = append(reasons, "Disk is a virtual device")
	}
	if ro, err := os.ReadFile("/sys/block/" + d.Name + "/ro"); err == nil && strings.TrimSpace(string(ro)) == "1" {
		reasons = append(reasons, "Disk is read-only")
	}
	out.InstallationEligibility = agentv1.HostInstallationEligibility{Eligible: len(reasons) == 0, NotEligibleReasons: reasons}
	return out
}

func interfaces() []agentv1.HostInterface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []agentv1.HostInterface
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		hi := agentv1.HostInterface{Name: i.Name, MacAddress: i.HardwareAddr.String(), MTU: int64(i.MTU), HasCarrier: i.Flags&net.FlagRunning != 0}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ipn.IP.To4() != nil {
				hi.IPV4Addresses = append(hi.IPV4Addresses, ipn.String())
			} else {
				hi.IPV6Addresses = append(hi.IPV6Addresses, ipn.String())
			}
		}
		if b, err := os.ReadFile("/sys/class/net/" + i.Name + "/speed"); err == nil {
			var speed int64
			for _, c := range strings.TrimSpace(string(b)) {
				if c < '0' || c > '9' {
					speed = 0
					break
				}
				speed = speed*10 + int64(c-'0')
			}
			hi.SpeedMbps = speed
		}
		out = append(out, hi)
	}
	return out
}

func known(s string) string {
	if s == "unknown" {
		return ""
	}
	return s
}

func isVirtual(s string) bool {
	s = strings.ToLower(s)
	for _, v := range []string{"kvm", "qemu", "vmware", "virtualbox", "xen", "bochs", "firecracker", "virtual machine", "hyper-v", "openstack", "amazon ec2", "google compute"} {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}
