//go:build unix

package sqlite

import (
	"bytes"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// BenchmarkApply measures a typical deploy: one new version of about 2 KB
// in two files, and a Set of its service. ns/op includes the fsync of the
// commit; cpu-ns/op is the CPU time the process spent per deploy.
func BenchmarkApply(b *testing.B) {
	db := open(b, filepath.Join(b.TempDir(), "fiat.db"))
	defer db.Close()
	code := bytes.Repeat([]byte("def handler(req):\n    return 'hello'\n"), 40)
	var i int
	cpu := cpuTime(b)
	for b.Loop() {
		v := &fiat.Version{
			Service: "api",
			Config:  fiat.Config{Kind: fiat.Script, MaxSteps: 1000, Timeout: time.Second},
			Files: []fiat.File{
				{Path: "fiat.toml", Data: []byte(`[services.api]` + "\n" + `kind = "script"` + "\n")},
				{Path: "main.star", Data: fmt.Appendf(code, "# %d\n", i)},
			},
		}
		v.ID = fiat.HashVersion(v)
		deploy(b, db, fiat.Production, v)
		i++
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
