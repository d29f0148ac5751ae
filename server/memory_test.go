package server_test

import (
	"math"
	"strings"
	"testing"
)

// TestServeSetsASoftMemoryLimit starts `fiat serve` as a process of its
// own each way its memory limit is set, and reads back the limit the Go
// runtime holds.
func TestServeSetsASoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env, args []string
		bytes     int64 // 0: any, short of no limit
		from      string
	}{
		{"default", nil, nil, 0, "75% of the"},
		{"a size", nil, []string{"--memory-limit", "1GiB"}, 1 << 30, "--memory-limit 1GiB"},
		{"GOMEMLIMIT", []string{"GOMEMLIMIT=300MiB"}, nil, 300 << 20, "GOMEMLIMIT=300MiB"},
		{"the flag over GOMEMLIMIT", []string{"GOMEMLIMIT=300MiB"}, []string{"--memory-limit", "50%"}, 0, "50% of the"},
		{"off", nil, []string{"--memory-limit", "off"}, math.MaxInt64, "off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GOMEMLIMIT as this test's cases set it, whatever the machine's.
			env := append([]string{"GOMEMLIMIT="}, tc.env...)
			limit := serveProcess(t, env, append([]string{"--data", t.TempDir()}, tc.args...)...).MemoryLimit
			if tc.bytes == 0 && (limit.Bytes <= 0 || limit.Bytes == math.MaxInt64) || tc.bytes != 0 && limit.Bytes != tc.bytes || !strings.Contains(limit.From, tc.from) {
				t.Errorf("memory limit %d from %q, want %d from %q", limit.Bytes, limit.From, tc.bytes, tc.from)
			}
		})
	}
	for _, bad := range []string{"lots", "0", "0%", "101%", "-1GiB"} {
		if code, _, errOut := runFiat("serve", "--memory-limit", bad); code == 0 || !strings.Contains(errOut, "--memory-limit") {
			t.Errorf("--memory-limit %s: exit %d, %q; want it refused, saying what to give", bad, code, errOut)
		}
	}
}
