package agent

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// cgroupFS is where the machine's cgroup hierarchies are mounted.
var cgroupFS = "/sys/fs/cgroup"

// cgroups is the cgroup layout of this machine: v2 (one unified hierarchy)
// or v1 (one hierarchy per controller set), and where this process sits.
type cgroups struct {
	fs string
	v2 bool
	// own is this process's cgroup: the unified one on v2, the memory
	// controller's on v1 (where a limit on hcp matters most).
	own string
	// hierarchies are the v1 hierarchies' directories under fs.
	hierarchies []string
}

// detectCgroups reads the layout from fs and /proc/self/cgroup's content.
func detectCgroups(fs, self string) (*cgroups, error) {
	c := &cgroups{fs: fs}
	if _, err := os.Stat(filepath.Join(fs, "cgroup.controllers")); err == nil {
		c.v2 = true
	}
	sc := bufio.NewScanner(strings.NewReader(self))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case c.v2 && parts[0] == "0":
			c.own = parts[2]
		case !c.v2 && slices.Contains(strings.Split(parts[1], ","), "memory"):
			c.own = parts[2]
		}
	}
	if c.own == "" {
		c.own = "/"
	}
	if !c.v2 {
		entries, err := os.ReadDir(fs)
		if err != nil {
			return nil, fmt.Errorf("cgroup hierarchies: %w", err)
		}
		for _, e := range entries {
			// The unified mount of a hybrid layout has no controllers.
			if e.IsDir() && e.Name() != "unified" {
				c.hierarchies = append(c.hierarchies, filepath.Join(fs, e.Name()))
			}
		}
		if len(c.hierarchies) == 0 {
			return nil, fmt.Errorf("no cgroup hierarchy under %s", fs)
		}
	}
	return c, nil
}

// nodeRoot is a node's kubelet cgroupRoot: beside this process on v2 (a
// cgroup with processes cannot also hold controlled children), below it on
// v1, so the node's pods count against what hcp itself is allowed. A node
// whose files are under a directory (root, not "/") is told apart by it:
// two hcp ups started from one shell share a cgroup and both have a
// management-0, and one kubelet would remove the other's pods as its own
// strays.
func (c *cgroups) nodeRoot(node, root string) string {
	base := c.own
	if c.v2 {
		base = path.Dir(c.own)
	}
	if root != "" && filepath.Clean(root) != "/" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(filepath.Clean(root)))
		node = fmt.Sprintf("%s-%08x", node, h.Sum32())
	}
	return path.Join(base, "hcp-nodes", node)
}

// prepare creates the node's cgroup root where the kubelet needs it: in
// every v1 hierarchy (the kubelet checks them all), with cpuset's cpus and
// mems filled in on the way down; on v2 with the controllers enabled down to
// it.
func (c *cgroups) prepare(root string) error {
	if c.v2 {
		if err := os.MkdirAll(filepath.Join(c.fs, root), 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", root, err)
		}
		// Enable what the kubelet needs on each level from the base down.
		base := path.Dir(path.Dir(root))
		for _, dir := range []string{base, path.Dir(root), root} {
			for _, ctl := range []string{"cpu", "memory", "pids", "io", "cpuset", "hugetlb"} {
				_ = os.WriteFile(filepath.Join(c.fs, dir, "cgroup.subtree_control"), []byte("+"+ctl), 0o644)
			}
		}
		b, err := os.ReadFile(filepath.Join(c.fs, root, "cgroup.controllers"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		for _, need := range []string{"cpu", "memory", "pids"} {
			if !slices.Contains(strings.Fields(string(b)), need) {
				return fmt.Errorf("cgroup %s lacks the %s controller (enabled: %q): delegate it to hcp's cgroup", root, need, strings.TrimSpace(string(b)))
			}
		}
		return nil
	}
	for _, h := range c.hierarchies {
		if err := os.MkdirAll(filepath.Join(h, root), 0o755); err != nil {
			return fmt.Errorf("cgroup %s in %s: %w", root, h, err)
		}
		if filepath.Base(h) != "cpuset" && !strings.Contains(filepath.Base(h), "cpuset") {
			continue
		}
		// A new cpuset takes no task until it has cpus and mems.
		dir := h
		for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || strings.TrimSpace(string(b)) != "" {
					continue
				}
				pb, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), pb, 0o644); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
				}
			}
		}
	}
	return nil
}

// remove kills every process left in the node's cgroup tree and removes it.
func (c *cgroups) remove(root string) error {
	dirs := []string{filepath.Join(c.fs, root)}
	if !c.v2 {
		dirs = nil
		for _, h := range c.hierarchies {
			dirs = append(dirs, filepath.Join(h, root))
		}
	}
	var errs []error
	for _, top := range dirs {
		var tree []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				tree = append(tree, p)
			}
			return nil
		})
		// Deepest first.
		sort.Slice(tree, func(i, j int) bool { return len(tree[i]) > len(tree[j]) })
		for _, dir := range tree {
			for range 50 {
				if killProcs(filepath.Join(dir, "cgroup.procs")) == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}

// killProcs SIGKILLs the processes listed in a cgroup.procs file and says
// how many there were.
func killProcs(procsFile string) int {
	b, err := os.ReadFile(procsFile)
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}
