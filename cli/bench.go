package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fiatdev/fiat/bench"
)

func (c *cli) benchCmd() *cobra.Command {
	opts := bench.Options{Deploys: 1000, Duration: 5 * time.Second, Concurrency: 16}
	var storeURL string
	nodes := 3
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure deploy time, request throughput and latency, and idle memory on this machine",
		Long: "bench measures what fiat promises, in a scratch directory: `fiat deploy` run again and again against " +
			"`fiat serve` in a process of its own, each deploy changing a module of a ~50-line script service, next to one " +
			"durable commit of the store on the same disk; then a restart on the data those deploys left, the memory of " +
			"an idle version, and a script handler through the router next to a plain Go net/http handler under the same load.\n\n" +
			"With --store, bench measures nodes instead: --nodes `fiat serve` processes share that PostgreSQL database, and " +
			"each deploy, made on each node in turn, is timed, and so is how soon every other node serves it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fiatBinary, err := os.Executable()
			if err != nil {
				return err
			}
			scratch, err := os.MkdirTemp(opts.Dir, "fiat-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(scratch)
			if storeURL != "" {
				rep, err := bench.Cluster(cmd.Context(), bench.ClusterOptions{
					Dir: scratch, Fiat: fiatBinary, Store: storeURL, Nodes: nodes, Deploys: opts.Deploys, Progress: c.stderr,
				})
				if err != nil {
					return err
				}
				c.print(rep, func(w io.Writer) { printClusterReport(w, rep) })
				return nil
			}
			run := opts
			run.Dir, run.Fiat, run.Progress = scratch, fiatBinary, c.stderr
			rep, err := bench.Run(cmd.Context(), run)
			if err != nil {
				return err
			}
			c.print(rep, func(w io.Writer) { printReport(w, rep) })
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Deploys, "deploys", opts.Deploys, "how many times to run fiat deploy")
	f.DurationVar(&opts.Duration, "duration", opts.Duration, "length of each request load")
	f.IntVar(&opts.Concurrency, "concurrency", opts.Concurrency, "concurrent clients of each request load")
	f.StringVar(&opts.Dir, "dir", "", "where to make the scratch directory (default: the system's temp dir)")
	f.StringVar(&storeURL, "store", "", "measure --nodes nodes sharing this PostgreSQL database (postgres://…; use an empty one) instead of one node")
	f.IntVar(&nodes, "nodes", nodes, "how many nodes share --store")
	return cmd
}

func printReport(w io.Writer, r bench.Report) {
	fmt.Fprintf(w, "cores: %d\n\n", r.Cores)
	printDistributions(w, []measure{
		{"deploy, server side (ms)", r.Deploy},
		{"one durable commit (ms)", r.Commit},
		{"`fiat deploy`, end to end (ms)", r.CLIDeploy},
		{"first request to an idle version after a restart (ms)", r.Wake},
	})
	fmt.Fprintf(w, "\ndeploy/commit: %.2fx at the median\n", r.DeployPerCommit)
	fmt.Fprintf(w, "\n| handler | requests/s | p50 ms | p99 ms |\n|---|---|---|---|\n")
	for _, l := range []struct {
		name string
		l    bench.Load
	}{{"plain Go net/http", r.PlainHandler}, {"script through fiat's router", r.ScriptRoute}, {"script reading a flag through fiat's router", r.ScriptFlagRoute}, {"script during a 50% rollout through fiat's router", r.ScriptRolloutRoute}} {
		fmt.Fprintf(w, "| %s | %.0f | %.3f | %.3f |\n", l.name, l.l.RequestsPerS, l.l.Latency.P50, l.l.Latency.P99)
	}
	fmt.Fprintf(w, "\nscript/plain: %.2fx the requests per second, %.2fx the p99 latency\n",
		r.ScriptRoute.RequestsPerS/r.PlainHandler.RequestsPerS, r.ScriptRoute.Latency.P99/r.PlainHandler.Latency.P99)
	fmt.Fprintf(w, "idle version: %.1f KB each (%d versions started, then idle)\n", float64(r.IdleVersionBytes)/1024, r.IdleVersions)
	fmt.Fprintf(w, "restart with %d versions: serving after %.1f ms\n", r.IdleVersions, r.RestartMS)
}

func printClusterReport(w io.Writer, r bench.ClusterReport) {
	fmt.Fprintf(w, "cores: %d, nodes: %d\n\n", r.Cores, r.Nodes)
	printDistributions(w, []measure{
		{"deploy, server side (ms)", r.Deploy},
		{"every other node serves it, from the deploy's answer (ms)", r.PropagationFromAnswer},
		{"every other node serves it, from the deploy's request (ms)", r.PropagationFromRequest},
	})
	fmt.Fprintf(w, "\nA deploy commits between its request and its answer: the time from its commit until every node serves it lies between the two.\n")
}

// A measure is a named distribution, a row of a report's table.
type measure struct {
	name string
	d    bench.Distribution
}

func printDistributions(w io.Writer, measures []measure) {
	fmt.Fprintf(w, "| measure | n | p50 | p99 | max |\n|---|---|---|---|---|\n")
	for _, m := range measures {
		fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f |\n", m.name, m.d.N, m.d.P50, m.d.P99, m.d.Max)
	}
}
