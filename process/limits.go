package process

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A limiter bounds what each instance may use, through cgroup v1's
// controllers where fiat may create groups in them (as root on these
// machines): its memory, to its service's memory, and its CPU, to one
// core, so that no instance takes the machine from the others. Where a
// controller is missing, its limit is not applied, and why is said.
type limiter struct {
	// memory and cpu are fiat's directories in the hierarchies of those
	// controllers; empty where there is none.
	memory, cpu string
	// why says which limits are not applied, and why.
	why []string
}

const cgroupV1 = "/sys/fs/cgroup"

// cpuPeriod and cpuQuota give each instance one core: cpuQuota
// microseconds of CPU in every cpuPeriod.
const (
	cpuPeriod = 100_000
	cpuQuota  = 100_000
)

func newLimiter() *limiter {
	l := &limiter{}
	for _, c := range []struct {
		controller, probe string
		dir               *string
	}{{"memory", "memory.limit_in_bytes", &l.memory}, {"cpu", "cpu.cfs_quota_us", &l.cpu}} {
		own, err := ownCgroup(c.controller, c.probe)
		if err == nil {
			*c.dir = filepath.Join(cgroupV1, c.controller, own, "fiat-instances")
			err = os.MkdirAll(*c.dir, 0o755)
		}
		if err != nil {
			*c.dir = ""
			l.why = append(l.why, fmt.Sprintf("no %s limit: no cgroup v1 %s controller fiat may use (%v)", c.controller, c.controller, err))
		}
	}
	return l
}

// ownCgroup is the path of this process's group in the hierarchy of a
// cgroup v1 controller, which has the file probe.
func ownCgroup(controller, probe string) (string, error) {
	if _, err := os.Stat(filepath.Join(cgroupV1, controller, probe)); err != nil {
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
		if len(parts) == 3 && parts[1] == controller {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("this process is in no %s cgroup", controller)
}

// prepare makes the groups, named name, that an instance of owner runs
// in: of at most memory bytes (over it, the kernel kills the process) and
// one core. The instance joins them itself, first thing, by the command
// join returns, so that nothing it starts runs outside them; owner may
// add its own processes to them and nothing else. The returned function,
// called once the instance has exited, kills what it left running in its
// groups (a daemon that left its process group too) and removes them.
func (l *limiter) prepare(name string, memory uint64, owner user) (join string, cleanup func(), err error) {
	var dirs []string
	cleanup = func() {
		for _, dir := range dirs {
			killAll(dir)
			os.Remove(dir)
		}
	}
	for _, g := range []struct {
		base     string
		settings map[string]string
	}{
		{l.memory, map[string]string{"memory.limit_in_bytes": strconv.FormatUint(memory, 10)}},
		{l.cpu, map[string]string{"cpu.cfs_period_us": strconv.Itoa(cpuPeriod), "cpu.cfs_quota_us": strconv.Itoa(cpuQuota)}},
	} {
		if g.base == "" || memory == 0 && g.base == l.memory {
			continue
		}
		dir := filepath.Join(g.base, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			cleanup()
			return "", func() {}, err
		}
		dirs = append(dirs, dir)
		for file, value := range g.settings {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
				cleanup()
				return "", func() {}, err
			}
		}
		procs := filepath.Join(dir, "cgroup.procs")
		if err := owner.chown(procs); err != nil {
			cleanup()
			return "", func() {}, err
		}
		join += fmt.Sprintf("echo $$ > '%s' || exit 1\n", procs)
	}
	return join, cleanup, nil
}

// killAll kills every process in the cgroup dir, until none is left.
func killAll(dir string) {
	for range 100 {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			return
		}
		for _, field := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(field); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
