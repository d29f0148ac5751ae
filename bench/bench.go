// Package bench measures what fiat promises, on the machine it runs on:
// deploys as users make them (the `fiat deploy` CLI against a `fiat serve`
// process of its own) next to one durable commit of the store on the same
// disk, a script handler's throughput and latency next to a plain Go
// handler's, a restart, and the memory of an idle version. `fiat bench`
// runs it; docs/benchmarks.md records results.
package bench

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/server"
)

// The ~50-line script service every deploy changes by one line.
//
//go:embed project
var projectFiles embed.FS

// Options says how much to measure.
type Options struct {
	// Dir is scratch space for the project and the server's data.
	Dir string
	// Deploys is how many `fiat deploy` runs to time.
	Deploys int
	// Fiat is the fiat binary that runs the server and the CLI.
	Fiat string
	// Duration and Concurrency shape each request load.
	Duration    time.Duration
	Concurrency int
	// Progress receives a line as each part starts.
	Progress io.Writer
}

// Report is what was measured. Times are in milliseconds.
type Report struct {
	Cores int `json:"cores"`
	// Deploy is the server's own time for each deploy (deploy_ms), and
	// CLIDeploy the whole `fiat deploy` run, process start included.
	Deploy    Distribution `json:"deploy_server_ms"`
	CLIDeploy Distribution `json:"deploy_cli_ms"`
	// Commit is one durable commit of a small change to a store on the
	// same disk, timed between the deploys; DeployPerCommit is the ratio
	// of the two medians.
	Commit          Distribution `json:"commit_ms"`
	DeployPerCommit float64      `json:"deploy_per_commit"`
	PlainHandler    Load         `json:"plain_go_handler"`
	ScriptRoute     Load         `json:"script_through_router"`
	// ScriptFlagRoute is the script route reading a flag (at 50%, for
	// requests without a user key) in an env with one.
	ScriptFlagRoute Load `json:"script_reading_a_flag"`
	// ScriptRolloutRoute is the script route of a service rolling out to
	// 50% of users, each request split between the two versions.
	ScriptRolloutRoute Load `json:"script_during_a_rollout"`
	// IdleVersionBytes is the heap one started, idle version adds to the
	// server (compiled program, globals, router entry, metrics).
	IdleVersionBytes int64 `json:"idle_version_bytes"`
	IdleVersions     int   `json:"idle_versions"`
	// RestartMS is how long a server holding IdleVersions versions takes
	// to start serving; Wake is each version's first request after it,
	// which loads the version's compiled program.
	RestartMS float64      `json:"restart_ms"`
	Wake      Distribution `json:"wake_ms"`
}

// Distribution summarises repeated timings.
type Distribution struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func distribution(ms []float64) Distribution {
	if len(ms) == 0 {
		return Distribution{}
	}
	slices.Sort(ms)
	at := func(q float64) float64 { return ms[min(len(ms)-1, int(q*float64(len(ms))))] }
	return Distribution{N: len(ms), P50: at(0.50), P99: at(0.99), Max: ms[len(ms)-1]}
}

// Run measures everything in opts.Dir: deploys against a server process of
// its own, then, in this process, a server started on the same data (the
// restart), its idle versions and its request throughput.
func Run(ctx context.Context, opts Options) (Report, error) {
	rep := Report{Cores: runtime.NumCPU()}
	dir := filepath.Join(opts.Dir, "project")
	if err := writeProject(dir); err != nil {
		return rep, err
	}
	data := filepath.Join(opts.Dir, "data")
	fmt.Fprintf(opts.Progress, "running `fiat deploy` %d times against `fiat serve`, each next to one durable commit...\n", opts.Deploys)
	var err error
	if rep.Deploy, rep.CLIDeploy, rep.Commit, err = deploys(ctx, opts, dir, data); err != nil {
		return rep, err
	}
	rep.DeployPerCommit = rep.Deploy.P50 / rep.Commit.P50

	fmt.Fprintf(opts.Progress, "restarting in this process and waking every idle version...\n")
	cfg := server.Defaults
	cfg.Listen, cfg.Admin, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", data
	cfg.Logger = slog.New(slog.DiscardHandler)
	began := time.Now()
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer func() { srv.Shutdown(context.Background()) }()
	rep.RestartMS = millis(time.Since(began))
	if rep.IdleVersions, rep.IdleVersionBytes, rep.Wake, err = idleVersionMemory(ctx, srv); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "loading a plain Go handler and a script handler, %v each at concurrency %d...\n", opts.Duration, opts.Concurrency)
	url := srv.Addresses.Service("todos", fiat.Production) + "/hello"
	if rep.PlainHandler, rep.ScriptRoute, err = compareHandlers(ctx, srv.Public.String(), url, opts.Duration, opts.Concurrency); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "loading the script handler reading a flag, %v at concurrency %d...\n", opts.Duration, opts.Concurrency)
	if _, err := srv.Deployer.SetFlag(ctx, fiat.Production, "bench", fiat.FlagPatch{Percent: new(50.0)}); err != nil {
		return rep, err
	}
	url = srv.Addresses.Service("todos", fiat.Production) + "/flagged"
	if rep.ScriptFlagRoute, err = load(ctx, srv.Public.String(), url, opts.Duration, opts.Concurrency); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "loading the script handler during a rollout to 50%%, %v at concurrency %d...\n", opts.Duration, opts.Concurrency)
	if err := change(dir, opts.Deploys+1); err != nil {
		return rep, err
	}
	bundle, err := project.Load(dir)
	if err != nil {
		return rep, err
	}
	if _, err := srv.Deployer.DeployRollout(ctx, fiat.Production, bundle, deploy.RolloutPlan{Percent: 50}); err != nil {
		return rep, err
	}
	url = srv.Addresses.Service("todos", fiat.Production) + "/hello"
	rep.ScriptRolloutRoute, err = load(ctx, srv.Public.String(), url, opts.Duration, opts.Concurrency)
	return rep, err
}

// writeProject copies the embedded project to dir.
func writeProject(dir string) error {
	return fs.WalkDir(projectFiles, "project", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := projectFiles.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path[len("project/"):]))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// change makes the project's next version: the module main.star loads
// gets one new comment line, so a deploy compiles that module and starts
// and tests the whole service.
func change(dir string, i int) error {
	const module = "lib/check.star"
	data, err := projectFiles.ReadFile("project/" + module)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, module), fmt.Appendf(data, "# change %d\n", i), 0o644)
}
