package postgres_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/internal/pgtest"
	"github.com/fiatdev/fiat/store"
)

// BenchmarkApply measures a typical deploy's transaction: one new version
// of about 2 KB in two files, and a Set of its service, on a server
// started for the benchmark (or FIAT_TEST_POSTGRES's).
func BenchmarkApply(b *testing.B) {
	db := open(b, pgtest.Database(b))
	code := bytes.Repeat([]byte("def handler(req):\n    return 'hello'\n"), 40)
	var i int
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
		if _, err := db.Apply(b.Context(), store.Change{Env: fiat.Production, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{"api": v.ID}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
