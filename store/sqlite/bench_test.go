//go:build unix

package sqlite

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fiatdev/fiat/store/storetest"
)

// BenchmarkApply measures a typical deploy's transaction. ns/op includes
// the fsync of the commit; cpu-ns/op is the CPU time the process spent per
// deploy.
func BenchmarkApply(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "fiat.db"))
	defer db.Close()
	cpu := cpuTime(b)
	storetest.BenchmarkApply(b, db)
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
