package process

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fiatdev/fiat"
)

// Runtime is fiat's runtime of process services.
type Runtime struct {
	paths  paths
	logger *slog.Logger
	limits *limiter
	// builds shares builds with other nodes; nil shares none.
	builds Builds

	mu sync.Mutex
	// building serializes the builds of each version.
	building map[fiat.Hash]*sync.Mutex
}

var _ fiat.Runtime = (*Runtime)(nil)

// NewRuntime returns a runtime that keeps its builds and caches in dir,
// and shares its builds with other nodes through builds. dir and its
// parents must let the users instances run as pass (0711), and no more.
func NewRuntime(dir string, builds Builds, logger *slog.Logger) (*Runtime, error) {
	// Builds and instances run elsewhere than fiat's working directory,
	// and tools such as go refuse relative paths in their environment.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r := &Runtime{paths: paths{builds: filepath.Join(dir, "builds"), caches: filepath.Join(dir, "caches"), logs: filepath.Join(dir, "logs")}, logger: logger, limits: newLimiter(), builds: builds, building: map[fiat.Hash]*sync.Mutex{}}
	for _, why := range r.limits.why {
		logger.Warn("process services will run without a limit", "why", why)
	}
	for _, d := range []string{dir, r.paths.builds, r.paths.caches} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Start builds version id unless it is built, and starts its instances,
// returning once they are all ready.
func (r *Runtime) Start(ctx context.Context, id fiat.Hash, version func(context.Context) (*fiat.Version, error), uses map[string]http.Handler) (fiat.Running, error) {
	if err := r.checkReachable(); err != nil {
		return nil, err
	}
	dir, built, err := r.build(ctx, id, version)
	if err != nil {
		return nil, err
	}
	links, err := openLinks(uses)
	if err != nil {
		return nil, err
	}
	service, cfg := built.Service, built.Config
	v := &running{proxy: newProxy(service, id.Short()), cfg: cfg, links: links}
	v.group = &group{id: id, service: service, dir: dir, cfg: cfg, links: links, owner: r.owner(service), limits: r.limits, logs: newLogBook(id, filepath.Join(r.paths.logs, service, id.Short()+".log")), changed: v.proxy.setBackends}
	err = v.group.scale(ctx, cfg.Process.Instances)
	if err == nil {
		err = v.group.startWorkers(ctx)
	}
	if err != nil {
		v.group.stop()
		links.close(context.Background())
		return nil, err
	}
	return v, nil
}

// checkReachable refuses to run instances as users of their own that could
// not enter their directories: every directory above the builds must let
// others pass.
func (r *Runtime) checkReachable() error {
	if os.Geteuid() != 0 {
		return nil
	}
	for dir := r.paths.builds; ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("process services run as users of their own, who cannot enter %s (mode %#o): let others pass through it (chmod o+x %s), or keep fiat's data dir elsewhere", dir, info.Mode().Perm(), dir)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

// prepareHome makes the directory the builds of owner keep their caches
// in.
func (r *Runtime) prepareHome(owner user) error {
	home := filepath.Join(r.paths.caches, owner.name())
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	return owner.chown(home)
}

// running is a started version of a process service.
type running struct {
	proxy *proxy
	group *group
	cfg   fiat.Config
	links *links
}

var (
	_ fiat.Supervised = (*running)(nil)
	_ fiat.Scaler     = (*running)(nil)
)

func (v *running) ServeHTTP(w http.ResponseWriter, r *http.Request) { v.proxy.ServeHTTP(w, r) }

// Test runs the version's release command, if it has one, once, before
// the switch: one that fails refuses the deploy. A process service's
// readiness is its test.
func (v *running) Test(ctx context.Context) error {
	release := v.cfg.Process.Release
	if release == "" {
		return nil
	}
	g := v.group
	out := newTail(buildTailBytes)
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", release)
	cmd.Dir = g.dir
	cmd.Env = g.environ()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: g.owner.credential()}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return fiat.Problems{{Message: fmt.Sprintf("%s: release = %q failed (%v); the end of its output:\n%s", g.service, release, err, out.lines(tailLines))}}
	}
	return nil
}

// Stop lets the requests in flight finish, for up to the service's
// stop_timeout, then stops its instances.
func (v *running) Stop(ctx context.Context) error {
	drain, cancel := context.WithTimeout(ctx, v.cfg.Process.StopTimeout)
	defer cancel()
	v.proxy.drain(drain)
	v.group.stop()
	// Its instances are gone: what they had sent to the versions they
	// use is answered, or never will be.
	v.links.close(drain)
	v.group.logs.close()
	v.proxy.close()
	return nil
}

func (v *running) Instances() []fiat.Instance { return v.group.status() }

func (v *running) Logs(n int) []fiat.LogLine { return v.group.logs.last(n) }

func (v *running) Follow(ctx context.Context) <-chan fiat.LogLine {
	return v.group.logs.follow(ctx)
}

func (v *running) Restart(ctx context.Context) error { return v.group.restart(ctx) }

func (v *running) Scale(ctx context.Context, n int) error {
	if n < 0 || n > fiat.MaxInstances {
		return fmt.Errorf("%d instances: give 0 to %d", n, fiat.MaxInstances)
	}
	return v.group.scale(ctx, n)
}
