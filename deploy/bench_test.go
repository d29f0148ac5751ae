package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/script"
	"github.com/fiatdev/fiat/store/sqlite"
)

// BenchmarkDeploy is a deploy of fiat bench's service, changed by one line
// each time, as the server runs it: validation, the store (fsync
// included) and the switch. Its allocations are what the garbage collector
// pays for per deploy.
func BenchmarkDeploy(b *testing.B) {
	data := b.TempDir()
	db, err := sqlite.Open(filepath.Join(data, "fiat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	programs, err := script.OpenCache(filepath.Join(data, "programs.pack"))
	if err != nil {
		b.Fatal(err)
	}
	defer programs.Close()
	scripts := script.NewRuntime(programs, slog.New(slog.DiscardHandler))
	defer scripts.Close()
	d, _, err := New(context.Background(), Config{Store: db, Runtimes: map[fiat.Kind]fiat.Runtime{fiat.Script: scripts}, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Addresses: fiat.Addresses{Domain: "localhost"}})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	base, err := project.Load("../bench/project")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bundle := project.Bundle{Files: append([]fiat.File(nil), base.Files...)}
		for j, f := range bundle.Files {
			if f.Path == "main.star" {
				bundle.Files[j].Data = fmt.Appendf(append([]byte(nil), f.Data...), "# change %d\n", i)
			}
		}
		if _, err := d.Deploy(context.Background(), fiat.Production, bundle); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
