// Package labnet gives lab hosts on one machine networks of their own: a
// bridge on the machine and, per host, a network namespace joined to it by a
// veth pair, so each host has its own interface, MAC and address and reaches the
// machine's services through the bridge address.
package labnet

import (
	"fmt"
	"hash/fnv"
	"os/exec"
	"strings"
)

// Net is one lab network.
type Net struct {
	// id keeps names and the subnet apart between data directories.
	id     string
	subnet int
}

// New returns the lab network of a data directory (nothing is created yet).
func New(dataDir string) *Net {
	h := fnv.New32a()
	h.Write([]byte(dataDir))
	sum := h.Sum32()
	return &Net{id: fmt.Sprintf("%04x", sum&0xffff), subnet: int(sum>>16) % 250}
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

// Up creates the bridge, replacing one left by an earlier run.
func (n *Net) Up() error {
	_ = exec.Command("ip", "link", "del", n.bridge()).Run()
	return run(
		[]string{"link", "add", n.bridge(), "type", "bridge"},
		[]string{"addr", "add", n.Gateway() + "/24", "dev", n.bridge()},
		[]string{"link", "set", n.bridge(), "up"},
	)
}

// Host creates lab host i's namespace, replacing one left by an earlier run.
func (n *Net) Host(i int) error {
	ns := n.Namespace(i)
	outside, inside := fmt.Sprintf("hl%sv%d", n.id, i), fmt.Sprintf("hl%sp%d", n.id, i)
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
}

// Exec returns the command line that runs argv inside lab host i.
func (n *Net) Exec(i int, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Namespace(i)}, argv...)
}

func run(cmds ...[]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
