package cli

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/dustin/go-humanize"
)

// defaultMemoryLimit leaves a quarter of the memory to what the Go runtime
// does not count: SQLite's page cache, thread stacks, process services.
const defaultMemoryLimit = "75%"

// memoryLimit is the soft memory limit `fiat serve` runs under: nearing
// it, the Go runtime collects garbage harder instead of growing until the
// OS kills the process.
type memoryLimit struct {
	Bytes int64  `json:"bytes"`
	From  string `json:"from"`
}

func (m memoryLimit) String() string {
	if m.Bytes == math.MaxInt64 {
		return "no soft memory limit (" + m.From + ")"
	}
	return fmt.Sprintf("soft memory limit %s (%s)", humanize.IBytes(uint64(m.Bytes)), m.From)
}

// setMemoryLimit sets the Go runtime's soft memory limit from spec: a size
// ("2GiB", "512MB"), a share of the memory of the machine or of the cgroup
// fiat runs in, whichever is less ("75%"), or "off". GOMEMLIMIT, the
// runtime's own setting, holds unless the flag was given.
func setMemoryLimit(spec string, given bool) (memoryLimit, error) {
	if env := os.Getenv("GOMEMLIMIT"); env != "" && !given {
		return memoryLimit{Bytes: debug.SetMemoryLimit(-1), From: "GOMEMLIMIT=" + env}, nil
	}
	limit, from, err := parseMemoryLimit(spec)
	if err != nil {
		return memoryLimit{}, fmt.Errorf("--memory-limit %q: %w: give a size like 2GiB, a share of the memory like 75%%, or off", spec, err)
	}
	debug.SetMemoryLimit(limit)
	return memoryLimit{Bytes: debug.SetMemoryLimit(-1), From: from}, nil
}

func parseMemoryLimit(spec string) (limit int64, from string, err error) {
	if spec == "off" {
		return math.MaxInt64, "--memory-limit off", nil
	}
	if share, ok := strings.CutSuffix(spec, "%"); ok {
		percent, err := strconv.ParseFloat(share, 64)
		if err != nil || !(percent > 0 && percent <= 100) {
			return 0, "", fmt.Errorf("a share must be above 0%% and at most 100%%")
		}
		total, what, err := totalMemory()
		if err != nil {
			return 0, "", err
		}
		return int64(float64(total) * percent / 100), fmt.Sprintf("%s of the %s's %s", spec, what, humanize.IBytes(total)), nil
	}
	bytes, err := humanize.ParseBytes(spec)
	if err != nil || bytes == 0 || bytes > math.MaxInt64 {
		return 0, "", fmt.Errorf("not a size")
	}
	return int64(bytes), "--memory-limit " + spec, nil
}

// totalMemory is the memory fiat may use: the machine's, or its cgroup's
// limit if lower.
func totalMemory() (uint64, string, error) {
	total, err := memlimit.FromSystem()
	if err != nil {
		return 0, "", fmt.Errorf("cannot tell how much memory this machine has: give a size")
	}
	if cgroup, err := memlimit.FromCgroup(); err == nil && cgroup < total {
		return cgroup, "cgroup", nil
	}
	return total, "machine", nil
}
