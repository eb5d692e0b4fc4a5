// Package ports picks TCP ports for programs that will listen on them a moment
// later.
//
// A port the kernel hands out for port 0 comes from its ephemeral range, the
// same range it takes source ports of outgoing connections and other
// programs' port-0 listeners from, so it may be gone by the time the program
// binds it. Free picks from below that range instead, at random, which only a
// program choosing ports by hand could take.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is where picked ports start: above the well-known ports of the
// components (2379, 6443, 8443, 10257, 10259, ...).
const lowest = 11000

// Free returns a port that addr:port can be listened on now.
func Free(addr string) (int, error) {
	lo, hi := pickRange()
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		if Listenable(addr, port) {
			return port, nil
		}
	}
	// Nearly everything in the range is taken: let the kernel choose.
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", addr, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Listenable says whether addr:port can be listened on now.
func Listenable(addr string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// pickRange is [lo, hi) outside the kernel's ephemeral range.
func pickRange() (lo, hi int) {
	ephLo, ephHi := ephemeral()
	if ephLo-lowest >= 2000 {
		return lowest, ephLo
	}
	if 65536-(ephHi+1) >= 2000 {
		return ephHi + 1, 65536
	}
	return lowest, 65536
}

// ephemeral is the kernel's ephemeral port range, Linux's default when it
// cannot be read.
func ephemeral() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l <= 0 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}
