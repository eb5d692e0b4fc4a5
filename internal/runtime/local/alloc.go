package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// blocks hands out loopback blocks: control plane k gets 127.<1+k/256>.<k%256>.0/24,
// and replica i of every component listens on 127.<..>.<..>.<i+1>. The table is
// kept in a file so that addresses survive restarts.
type blocks struct {
	path  string
	table map[string]int
}

func loadBlocks(path string) (*blocks, error) {
	b := &blocks{path: path, table: map[string]int{}}
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
		for k = 0; used[k]; k++ {
		}
		if k >= 254*256 {
			return nil, fmt.Errorf("no loopback block left for %s", namespace)
		}
		b.table[namespace] = k
		if err := b.save(); err != nil {
			return nil, err
		}
	}
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("127.%d.%d.%d", 1+k/256, k%256, i+1)
	}
	return out, nil
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

// listenable says whether addr:port can be listened on now.
func listenable(addr string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
