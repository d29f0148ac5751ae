package sqlite

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

func TestLatencyXX(t *testing.T) {
	dir := "/work/tmp/lat"
	db := open(t, filepath.Join(dir, t.Name()+fmt.Sprint(time.Now().UnixNano())+".db"))
	defer db.Close()
	code := bytes.Repeat([]byte("def handler(req):\n    return 'hello'\n"), 40)
	var ms []float64
	for i := range 3000 {
		v := &fiat.Version{
			Service: "api",
			Config:  fiat.Config{Kind: fiat.Script, MaxSteps: 1000, Timeout: time.Second},
			Files: []fiat.File{
				{Path: "fiat.toml", Data: []byte(`[services.api]` + "\n" + `kind = "script"` + "\n")},
				{Path: "main.star", Data: fmt.Appendf(code, "# %d\n", i)},
			},
		}
		v.ID = fiat.HashVersion(v)
		p, err := db.Begin(t.Context(), store.Change{Env: fiat.Production, Kind: "deploy", Versions: []*fiat.Version{v}, Set: map[string]fiat.Hash{v.Service: v.ID}})
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := p.Commit(); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, float64(time.Since(began).Microseconds())/1000)
		time.Sleep(300 * time.Microsecond) // the client's share of a deploy
	}
	for _, r := range [][2]int{{0, 1000}, {1000, 3000}} {
		s := slices.Clone(ms[r[0]:r[1]])
		slices.Sort(s)
		t.Logf("%v: p50 %.3f p90 %.3f p99 %.3f max %.3f", r, s[len(s)/2], s[len(s)*9/10], s[len(s)*99/100], s[len(s)-1])
	}
}
