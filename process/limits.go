package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A limiter bounds the memory of instances, through the memory controller
// of cgroup v1 where fiat may create groups in it (as root on these
// machines). Elsewhere it applies no limit, and says so.
type limiter struct {
	// base is fiat's directory in the memory hierarchy; empty if none.
	base string
	// why is why instances run without a limit, when they do.
	why string
}

const cgroupV1Memory = "/sys/fs/cgroup/memory"

func newLimiter() *limiter {
	own, err := ownMemoryCgroup()
	if err != nil {
		return &limiter{why: fmt.Sprintf("no cgroup v1 memory controller: %v", err)}
	}
	base := filepath.Join(cgroupV1Memory, own, "fiat-instances")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return &limiter{why: fmt.Sprintf("cannot create a memory cgroup: %v", err)}
	}
	return &limiter{base: base}
}

// ownMemoryCgroup is the path of this process's group in the memory
// hierarchy of cgroup v1.
func ownMemoryCgroup() (string, error) {
	if _, err := os.Stat(filepath.Join(cgroupV1Memory, "memory.limit_in_bytes")); err != nil {
		return "", err
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		parts := strings.SplitN(lines.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			return parts[2], nil
		}
	}
	return "", errors.New("this process is in no memory cgroup")
}

// limit puts process pid in a memory cgroup of its own, name, of at most
// bytes: over it, the kernel kills the process. The returned function
// removes the group once the process has exited.
func (l *limiter) limit(name string, pid int, bytes uint64) (func(), error) {
	if l.base == "" || bytes == 0 {
		return func() {}, nil
	}
	dir := filepath.Join(l.base, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return func() {}, err
	}
	remove := func() { os.Remove(dir) }
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatUint(bytes, 10)), 0o644); err != nil {
		remove()
		return func() {}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		remove()
		return func() {}, err
	}
	return remove, nil
}
