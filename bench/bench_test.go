package bench_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/fiatdev/fiat/bench"
	"github.com/fiatdev/fiat/cli"
	"github.com/fiatdev/fiat/internal/pgtest"
)

// TestMain lets the test binary act as the fiat command, which the bench
// runs as `fiat serve` and `fiat deploy`.
func TestMain(m *testing.M) {
	if os.Getenv("FIAT_BENCH_TEST_IS_FIAT") != "" {
		os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	pgtest.Main(m)
}

// TestRun runs a small bench end to end, so that `fiat bench` keeps
// working: every part measures something, and the restarted server wakes
// every version deployed.
func TestRun(t *testing.T) {
	t.Setenv("FIAT_BENCH_TEST_IS_FIAT", "1")
	const deploys = 5
	rep, err := bench.Run(t.Context(), bench.Options{
		Dir:         t.TempDir(),
		Deploys:     deploys,
		Fiat:        os.Args[0],
		Duration:    100 * time.Millisecond,
		Concurrency: 2,
		Progress:    io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]bench.Distribution{"server-side deploys": rep.Deploy, "fiat deploy runs": rep.CLIDeploy, "commits": rep.Commit} {
		if d.N != deploys || d.P50 <= 0 {
			t.Errorf("%s: %+v, want %d timed", name, d, deploys)
		}
	}
	if rep.DeployPerCommit <= 0 || rep.CLIDeploy.P50 < rep.Deploy.P50 {
		t.Errorf("deploy/commit ratio %.2f, CLI p50 %.2f ms < server p50 %.2f ms", rep.DeployPerCommit, rep.CLIDeploy.P50, rep.Deploy.P50)
	}
	if rep.PlainHandler.Requests == 0 || rep.ScriptRoute.Requests == 0 || rep.ScriptFlagRoute.Requests == 0 || rep.ScriptRolloutRoute.Requests == 0 {
		t.Errorf("request loads: plain %+v, script %+v, flag %+v, rollout %+v; want requests in each", rep.PlainHandler, rep.ScriptRoute, rep.ScriptFlagRoute, rep.ScriptRolloutRoute)
	}
	if rep.IdleVersions != deploys || rep.Wake.N != deploys || rep.IdleVersionBytes <= 0 || rep.RestartMS <= 0 {
		t.Errorf("after restart: %d versions woken (%+v), %d bytes each, restart %.1f ms; want %d woken, bytes and time measured",
			rep.IdleVersions, rep.Wake, rep.IdleVersionBytes, rep.RestartMS, deploys)
	}
}

// TestCluster runs a small cluster bench end to end, so that `fiat bench
// --store` keeps working: every deploy is timed, and so is its arrival on
// every other node.
func TestCluster(t *testing.T) {
	t.Setenv("FIAT_BENCH_TEST_IS_FIAT", "1")
	const deploys = 6
	rep, err := bench.Cluster(t.Context(), bench.ClusterOptions{
		Dir:      t.TempDir(),
		Fiat:     os.Args[0],
		Store:    pgtest.Database(t),
		Nodes:    3,
		Deploys:  deploys,
		Progress: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deploy.N != deploys || rep.Deploy.P50 <= 0 || rep.PropagationFromRequest.N != deploys ||
		rep.PropagationFromRequest.P50 < rep.PropagationFromAnswer.P50 || rep.PropagationFromRequest.P50 <= 0 {
		t.Errorf("cluster report %+v: want %d deploys timed, and each reaching every node after its request", rep, deploys)
	}
}

// BenchmarkCluster measures deploys on three nodes sharing one PostgreSQL
// (started for the benchmark), and how soon every node serves each:
//
//	go test ./bench -run '^$' -bench Cluster -benchtime 500x
func BenchmarkCluster(b *testing.B) {
	b.Setenv("FIAT_BENCH_TEST_IS_FIAT", "1")
	rep, err := bench.Cluster(b.Context(), bench.ClusterOptions{
		Dir:      b.TempDir(),
		Fiat:     os.Args[0],
		Store:    pgtest.Database(b),
		Nodes:    3,
		Deploys:  b.N,
		Progress: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Deploy.P50, "deploy-p50-ms")
	b.ReportMetric(rep.Deploy.P99, "deploy-p99-ms")
	b.ReportMetric(rep.PropagationFromAnswer.P50, "propagation-from-answer-p50-ms")
	b.ReportMetric(rep.PropagationFromAnswer.P99, "propagation-from-answer-p99-ms")
	b.ReportMetric(rep.PropagationFromRequest.P99, "propagation-from-request-p99-ms")
	b.ReportMetric(0, "ns/op")
}
