package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"

	"github.com/hcp-dev/hcp/internal/ports"
)

// blocks hands out loopback blocks: control plane k gets 127.<1+k/256>.<k%256>.0/24,
// and replica i of every component listens on 127.<..>.<..>.<i+1>. The table is
// kept in a file so that addresses survive restarts. Several runtimes on one
// machine (several data directories) start their search at different blocks and
// skip blocks whose addresses are in use.
type blocks struct {
	path  string
	start int
	table map[string]int
}

const blockCount = 254 * 256

func loadBlocks(path, seed string) (*blocks, error) {
	h := fnv.New32a()
	h.Write([]byte(seed))
	b := &blocks{path: path, start: int(h.Sum32() % blockCount), table: map[string]int{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &b.table); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// hosts returns n replica hosts of namespace's block, allocating the block.
func (b *blocks) hosts(namespace string, n int) ([]string, error) {
	k, ok := b.table[namespace]
	if !ok {
		used := map[int]bool{}
		for _, v := range b.table {
			used[v] = true
		}
		found := false
		for n := range blockCount {
			k = (b.start + n) % blockCount
			if !used[k] && blockFree(k) {
				found = true
				break
			}
		}
		if !found {
			if busy := WildcardBusyPorts(); len(busy) > 0 {
				return nil, fmt.Errorf("no loopback addresses for %s: another program listens on every address of this machine on port %v, which control plane components need on their own loopback addresses; stop it or make it listen on one address", namespace, busy)
			}
			return nil, fmt.Errorf("no loopback block left for %s", namespace)
		}
		b.table[namespace] = k
		if err := b.save(); err != nil {
			return nil, err
		}
	}
	out := make([]string, n)
	for i := range n {
		out[i] = blockHost(k, i)
	}
	return out, nil
}

func blockHost(k, replica int) string {
	return fmt.Sprintf("127.%d.%d.%d", 1+k/256, k%256, replica+1)
}

// blockFree says whether nothing listens on the block's first hosts.
func blockFree(k int) bool {
	for i := range 3 {
		for _, port := range reservedPorts {
			if !ports.Listenable(blockHost(k, i), port) {
				return false
			}
		}
	}
	return true
}

// WildcardBusyPorts lists the ports control plane components use on their
// loopback addresses that some program holds on every address (0.0.0.0),
// which makes them unusable on any loopback address.
func WildcardBusyPorts() []int {
	var busy []int
	for _, port := range reservedPorts {
		if !ports.Listenable("127.255.255.254", port) {
			busy = append(busy, port)
		}
	}
	return busy
}

func (b *blocks) release(namespace string) error {
	if _, ok := b.table[namespace]; !ok {
		return nil
	}
	delete(b.table, namespace)
	return b.save()
}

func (b *blocks) save() error {
	data, err := json.Marshal(b.table)
	if err != nil {
		return err
	}
	return writeFile(b.path, data)
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
