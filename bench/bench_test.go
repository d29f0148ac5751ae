package bench

import (
	"io"
	"testing"
	"time"
)

// TestRun runs a small bench end to end, so that `fiat bench` keeps
// working: every part measures something, and the restarted server wakes
// every version deployed.
func TestRun(t *testing.T) {
	const deploys = 5
	rep, err := Run(t.Context(), Options{
		Dir:         t.TempDir(),
		Deploys:     deploys,
		Duration:    100 * time.Millisecond,
		Concurrency: 2,
		Progress:    io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deploy.N != deploys || rep.Deploy.P50 <= 0 {
		t.Errorf("deploys: %+v, want %d timed", rep.Deploy, deploys)
	}
	if rep.PlainHandler.Requests == 0 || rep.ScriptRoute.Requests == 0 {
		t.Errorf("request loads: plain %+v, script %+v; want requests in both", rep.PlainHandler, rep.ScriptRoute)
	}
	if rep.IdleVersions != deploys || rep.Wake.N != deploys || rep.IdleVersionBytes <= 0 || rep.RestartMS <= 0 {
		t.Errorf("after restart: %d versions woken (%+v), %d bytes each, restart %.1f ms; want %d woken, bytes and time measured",
			rep.IdleVersions, rep.Wake, rep.IdleVersionBytes, rep.RestartMS, deploys)
	}
}
