// Package labnet gives lab hosts on one machine networks of their own: a
// bridge on the machine and, per host, a network namespace joined to it by a
// veth pair, so each host has its own interface, MAC and address and reaches the
// machine's services through the bridge address.
package labnet

import (
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hcp-dev/hcp/internal/hub"
)

// RegistryDir records which data directory each lab network on this machine
// belongs to (a file per network, named by its id), so a later hcp up can
// reclaim the networks of runs that are gone.
var RegistryDir = "/run/hcp/labnets"

// Net is one lab network.
type Net struct {
	// id keeps names apart between data directories.
	id      string
	dataDir string
	subnet  int
}

// New returns the lab network of a data directory (nothing is created yet).
func New(dataDir string) *Net {
	h := fnv.New32a()
	h.Write([]byte(dataDir))
	sum := h.Sum32()
	return &Net{id: fmt.Sprintf("%04x", sum&0xffff), dataDir: dataDir, subnet: int(sum>>16) % 250}
}

// Gone is the lab network of an hcp up run that is gone.
type Gone struct {
	Bridge, DataDir string
}

// Reclaim removes the lab networks of hcp up runs that are gone: their data
// directory no longer exists, or no live process holds its lock, and the
// process that made the network has ended. It returns what it removed.
func Reclaim() []Gone {
	entries, _ := os.ReadDir(RegistryDir)
	var removed []Gone
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(RegistryDir, e.Name()))
		if err != nil {
			continue
		}
		dataDir, pid := parseRecord(string(b))
		if hub.Running(dataDir) || (pid > 0 && syscall.Kill(pid, 0) == nil) {
			// Its hcp up runs: it may not hold its data directory's lock
			// yet (the network comes first).
			continue
		}
		n := New(dataDir)
		if n.id != e.Name() {
			continue
		}
		n.removeAll()
		_ = os.Remove(filepath.Join(RegistryDir, e.Name()))
		removed = append(removed, Gone{Bridge: n.bridge(), DataDir: dataDir})
	}
	return removed
}

// removeAll deletes the bridge and every lab host namespace of this network.
func (n *Net) removeAll() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "hcp-lab-"+n.id+"-") {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(links), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == n.bridge() || strings.HasPrefix(name, n.bridge()+"v") {
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// chooseSubnet moves the network to the first 10.231.x.0/24 from its own that
// no interface of this machine other than its bridge has an address in: a
// leftover bridge of another run must not make its hosts unreachable.
func (n *Net) chooseSubnet() error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for _, ifc := range ifaces {
		if ifc.Name == n.bridge() {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip := ipn.IP.To4(); ip != nil && ip[0] == 10 && ip[1] == 231 {
				used[int(ip[2])] = true
			}
		}
	}
	for i := range 250 {
		if s := (n.subnet + i) % 250; !used[s] {
			n.subnet = s
			return nil
		}
	}
	return fmt.Errorf("every 10.231.x.0/24 lab subnet is in use on this machine; remove leftover hl* bridges (ip link del <name>)")
}

// Available says whether network namespaces can be made here (root and ip).
func Available() bool {
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	name := "hcp-probe-ns"
	if exec.Command("ip", "netns", "add", name).Run() != nil {
		return false
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return true
}

// Gateway is the machine's address on the lab network.
func (n *Net) Gateway() string { return fmt.Sprintf("10.231.%d.1", n.subnet) }

func (n *Net) bridge() string { return "hl" + n.id }

// Namespace is the network namespace of lab host i.
func (n *Net) Namespace(i int) string { return fmt.Sprintf("hcp-lab-%s-%d", n.id, i) }

// Address is lab host i's address.
func (n *Net) Address(i int) string { return fmt.Sprintf("10.231.%d.%d", n.subnet, 10+i) }

// Up creates the bridge, replacing one left by an earlier run, on a subnet
// no other interface uses, and records the network so that a later run can
// reclaim it once this one is gone.
//
// A bridge this network left (hcp up was killed) is kept, with its subnet,
// when no other interface took that subnet: its hosts' nodes still run.
func (n *Net) Up() error {
	if s, ok := n.existingSubnet(); ok {
		n.subnet = s
		if err := n.chooseSubnet(); err == nil && n.subnet == s {
			n.record()
			return run([]string{"link", "set", n.bridge(), "up"})
		}
	}
	_ = exec.Command("ip", "link", "del", n.bridge()).Run()
	if err := n.chooseSubnet(); err != nil {
		return err
	}
	n.record()
	return run(
		[]string{"link", "add", n.bridge(), "type", "bridge"},
		[]string{"addr", "add", n.Gateway() + "/24", "dev", n.bridge()},
		[]string{"link", "set", n.bridge(), "up"},
	)
}

// record notes which data directory the network belongs to, and the
// process (hcp up) that made it.
func (n *Net) record() {
	if err := os.MkdirAll(RegistryDir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(RegistryDir, n.id), []byte(fmt.Sprintf("%s\n%d\n", n.dataDir, os.Getpid())), 0o644)
	}
}

// parseRecord reads a registry file: the data directory, then the pid of
// the process that made the network (0 when the file has none).
func parseRecord(s string) (string, int) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	pid := 0
	if len(lines) > 1 {
		pid, _ = strconv.Atoi(strings.TrimSpace(lines[1]))
	}
	return strings.TrimSpace(lines[0]), pid
}

// existingSubnet is the subnet of this network's bridge, if it exists.
func (n *Net) existingSubnet() (int, bool) {
	ifc, err := net.InterfaceByName(n.bridge())
	if err != nil {
		return 0, false
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip := ipn.IP.To4(); ip != nil && ip[0] == 10 && ip[1] == 231 && ip[3] == 1 {
				return int(ip[2]), true
			}
		}
	}
	return 0, false
}

// Host creates lab host i's namespace. One left by an earlier run is kept
// when it is intact (its address and its link to the bridge): the host's
// node and its pods still run there. Otherwise it is made anew.
func (n *Net) Host(i int) error {
	ns := n.Namespace(i)
	outside, inside := fmt.Sprintf("hl%sv%d", n.id, i), fmt.Sprintf("hl%sp%d", n.id, i)
	if out, err := exec.Command("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", "eth0").Output(); err == nil &&
		strings.Contains(string(out), " "+n.Address(i)+"/24 ") {
		if run([]string{"link", "set", outside, "master", n.bridge()}, []string{"link", "set", outside, "up"}) == nil {
			return nil
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	_ = exec.Command("ip", "link", "del", outside).Run()
	return run(
		[]string{"netns", "add", ns},
		[]string{"link", "add", outside, "type", "veth", "peer", "name", inside},
		[]string{"link", "set", outside, "master", n.bridge()},
		[]string{"link", "set", outside, "up"},
		[]string{"link", "set", inside, "netns", ns},
		[]string{"-n", ns, "link", "set", inside, "name", "eth0"},
		[]string{"-n", ns, "addr", "add", n.Address(i) + "/24", "dev", "eth0"},
		[]string{"-n", ns, "link", "set", "eth0", "up"},
		[]string{"-n", ns, "link", "set", "lo", "up"},
		[]string{"-n", ns, "route", "add", "default", "via", n.Gateway()},
	)
}

// Down removes the namespaces of hosts 0..count-1 and the bridge.
func (n *Net) Down(count int) {
	for i := range count {
		_ = exec.Command("ip", "netns", "del", n.Namespace(i)).Run()
		_ = exec.Command("ip", "link", "del", fmt.Sprintf("hl%sv%d", n.id, i)).Run()
	}
	_ = exec.Command("ip", "link", "del", n.bridge()).Run()
	_ = os.Remove(filepath.Join(RegistryDir, n.id))
}

// Exec returns the command line that runs argv inside lab host i: in its
// network namespace only (ip netns exec would also remount /sys, hiding the
// cgroup file systems a node's kubelet needs).
func (n *Net) Exec(i int, argv ...string) []string {
	return append([]string{"nsenter", "--net=/run/netns/" + n.Namespace(i), "--"}, argv...)
}

func run(cmds ...[]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
