// Package bench measures what fiat promises, on the machine it runs on:
// server-side deploy time, `fiat deploy` end to end, a script handler's
// throughput and latency next to a plain Go handler's, and the memory of an
// idle version. `fiat bench` runs it; docs/benchmarks.md records results.
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
	"github.com/fiatdev/fiat/api"
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
	// Deploys is how many server-side deploys to time.
	Deploys int
	// CLIDeploys is how many `fiat deploy` runs to time, end to end.
	CLIDeploys int
	// Fiat is the fiat binary the CLI runs use.
	Fiat string
	// Duration and Concurrency shape each request load.
	Duration    time.Duration
	Concurrency int
	// Progress receives a line as each part starts.
	Progress io.Writer
}

// Report is what was measured. Times are in milliseconds.
type Report struct {
	Cores        int          `json:"cores"`
	Deploy       Distribution `json:"deploy_server_ms"`
	CLIDeploy    Distribution `json:"deploy_cli_ms"`
	PlainHandler Load         `json:"plain_go_handler"`
	ScriptRoute  Load         `json:"script_through_router"`
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

// Run measures everything, in a fresh server whose data lives in opts.Dir.
func Run(ctx context.Context, opts Options) (Report, error) {
	rep := Report{Cores: runtime.NumCPU()}
	dir := filepath.Join(opts.Dir, "project")
	if err := writeProject(dir); err != nil {
		return rep, err
	}
	cfg := server.Defaults
	cfg.Listen, cfg.Admin, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(opts.Dir, "data")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.Start(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer func() { srv.Shutdown(context.Background()) }()
	client := &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}

	fmt.Fprintf(opts.Progress, "deploying a changed ~50-line script %d times...\n", opts.Deploys)
	if rep.Deploy, err = serverDeploys(ctx, client, dir, opts.Deploys); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "running `fiat deploy` %d times...\n", opts.CLIDeploys)
	if rep.CLIDeploy, err = cliDeploys(ctx, srv, opts.Fiat, dir, opts.CLIDeploys); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "loading a plain Go handler and a script handler, %v each at concurrency %d...\n", opts.Duration, opts.Concurrency)
	url := srv.Addresses.Service("todos", fiat.Production) + "/hello"
	if rep.PlainHandler, rep.ScriptRoute, err = compareHandlers(ctx, srv.Public.String(), url, opts.Duration, opts.Concurrency); err != nil {
		return rep, err
	}
	fmt.Fprintf(opts.Progress, "restarting and waking every idle version...\n")
	srv.Shutdown(ctx)
	began := time.Now()
	if srv, err = server.Start(ctx, cfg); err != nil {
		return rep, err
	}
	rep.RestartMS = millis(time.Since(began))
	rep.IdleVersions, rep.IdleVersionBytes, rep.Wake, err = idleVersionMemory(ctx, srv)
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

// change makes the project's next version: same code, one new comment line.
func change(dir string, i int) error {
	main := filepath.Join(dir, "main.star")
	data, err := projectFiles.ReadFile("project/main.star")
	if err != nil {
		return err
	}
	return os.WriteFile(main, fmt.Appendf(data, "# change %d\n", i), 0o644)
}

func serverDeploys(ctx context.Context, client *api.Client, dir string, n int) (Distribution, error) {
	var ms []float64
	for i := range n {
		if err := change(dir, i); err != nil {
			return Distribution{}, err
		}
		bundle, err := project.Load(dir)
		if err != nil {
			return Distribution{}, err
		}
		res, err := client.Deploy(ctx, fiat.Production, bundle)
		if err != nil {
			return Distribution{}, err
		}
		if !res.Services[0].Changed {
			return Distribution{}, fmt.Errorf("deploy %d changed nothing", i)
		}
		ms = append(ms, res.DeployMS)
	}
	return distribution(ms), nil
}
