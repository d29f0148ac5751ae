// Package process is fiat's runtime of process services: programs that
// serve HTTP on the port fiat gives them, like Heroku's dynos. It builds a
// version once, in a directory of its own, runs its instances as an
// unprivileged user with only their own environment, restarts them when
// they crash, keeps their output, and hands requests to them through a
// reverse proxy.
package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/fiatdev/fiat"
)

// builtMarker is written last into a version's directory: a directory
// without it is a build that did not finish, which is done again.
const builtMarker = ".fiat-built"

// paths is where the runtime keeps what it builds and runs.
type paths struct {
	// builds holds a directory per version, and its config beside it.
	builds string
	// caches holds, per user, the HOME and the caches builds reuse.
	caches string
	// logs holds, per service, a file of each version's output.
	logs string
}

// build makes the directory version id runs in, unless it is made
// already, and returns it with what the version's instances need. A
// directory is the version's files and its build command run in them; it
// is keyed by those and the service, not by the whole version, so that
// versions that differ only in config (fiat config set) share it rather
// than build again. version is called only if id was never built here.
func (r *Runtime) build(ctx context.Context, id fiat.Hash, version func(context.Context) (*fiat.Version, error)) (dir string, b built, err error) {
	if b, err := readBuilt(r.versionFile(id)); err == nil {
		dir = filepath.Join(r.paths.builds, string(b.Build))
		if _, err := os.Stat(filepath.Join(dir, builtMarker)); err == nil {
			return dir, b, nil
		}
	}
	v, err := version(ctx)
	if err != nil {
		return "", built{}, err
	}
	if v.Config.Process == nil {
		return "", built{}, fmt.Errorf("version %s of %s is not a process service", id.Short(), v.Service)
	}
	b = built{Service: v.Service, Config: v.Config, Build: buildKey(v)}
	dir = filepath.Join(r.paths.builds, string(b.Build))
	if err := r.make(ctx, v, b.Build, dir); err != nil {
		return "", built{}, err
	}
	return dir, b, writeBuilt(r.versionFile(id), b)
}

// buildKey names what building v makes: its service, files and build
// command, as a hash.
func buildKey(v *fiat.Version) fiat.Hash {
	return fiat.HashVersion(&fiat.Version{Service: v.Service, Files: v.Files, Config: fiat.Config{Kind: fiat.Process, Process: &fiat.ProcessConfig{Build: v.Config.Process.Build}}})
}

// versionFile holds what a version's instances need, out of their reach.
func (r *Runtime) versionFile(id fiat.Hash) string {
	return filepath.Join(r.paths.builds, string(id)+".json")
}

// make builds v into dir, named key, unless it is built: from another
// node's build of it if one is shared, else here.
func (r *Runtime) make(ctx context.Context, v *fiat.Version, key fiat.Hash, dir string) error {
	lock := r.buildLock(key)
	lock.Lock()
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(dir, builtMarker)); err == nil {
		return nil
	}
	owner := r.owner(v.Service)
	// A build that did not finish is started again, from scratch.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	shared := v.Config.Process.Build != "" && r.builds != nil
	if shared {
		if archive, err := r.builds.Build(ctx, key); err == nil {
			err = extract(archive, dir, owner)
			if err == nil {
				return finish(dir)
			}
			r.logger.Warn("cannot use another node's build: building it here", "service", v.Service, "build", key.Short(), "err", err)
			os.RemoveAll(dir)
		}
	}
	if err := writeFiles(dir, v.Files, owner); err != nil {
		return fmt.Errorf("write the files of version %s: %w", v.ID.Short(), err)
	}
	if build := v.Config.Process.Build; build != "" {
		if err := r.prepareHome(owner); err != nil {
			return err
		}
		out := newTail(buildTailBytes)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", build)
		cmd.Dir = dir
		cmd.Env = r.buildEnv(owner)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: owner.credential()}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		if err := cmd.Run(); err != nil {
			os.RemoveAll(dir)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fiat.Problems{{Message: fmt.Sprintf("%s: build = %q failed (%v); the end of its output:\n%s", v.Service, build, err, out.lines(tailLines))}}
		}
	}
	if err := finish(dir); err != nil {
		return err
	}
	if shared {
		go r.share(key, dir)
	}
	return nil
}

// finish marks the build in dir done.
func finish(dir string) error {
	return os.WriteFile(filepath.Join(dir, builtMarker), nil, 0o644)
}

func (r *Runtime) buildLock(id fiat.Hash) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	lock, ok := r.building[id]
	if !ok {
		lock = &sync.Mutex{}
		r.building[id] = lock
	}
	return lock
}

// writeFiles writes files into dir, a new directory that owner owns.
func writeFiles(dir string, files []fiat.File, owner user) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := owner.chown(dir); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			return fmt.Errorf("file %q is outside the version", f.Path)
		}
		for parent := filepath.Dir(path); parent != dir; parent = filepath.Dir(parent) {
			if _, err := os.Stat(parent); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(parent, 0o700); err != nil {
					return err
				}
			}
		}
		mode := os.FileMode(0o600)
		if f.Executable {
			mode = 0o700
		}
		if err := os.WriteFile(path, f.Data, mode); err != nil {
			return err
		}
	}
	return owner.chownAll(dir)
}

// built is what a built version's instances need besides its directory.
type built struct {
	Service string      `json:"service"`
	Config  fiat.Config `json:"config"`
	// Build names the directory it runs in.
	Build fiat.Hash `json:"build"`
}

func writeBuilt(path string, b built) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func readBuilt(path string) (built, error) {
	var b built
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, err
	}
	if b.Config.Process == nil {
		return b, errors.New("not a process service's")
	}
	return b, nil
}

// defaultPath is the PATH of builds and instances.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// buildEnv is all a build sees of the world: PATH, HOME and the caches
// that go, npm and pip reuse from one build to the next.
func (r *Runtime) buildEnv(owner user) []string {
	home := filepath.Join(r.paths.caches, owner.name())
	return []string{
		"PATH=" + buildPath(),
		"HOME=" + home,
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"GOCACHE=" + filepath.Join(home, ".cache", "go-build"),
		"GOPATH=" + filepath.Join(home, "go"),
		"GOTOOLCHAIN=local",
		// The data dir is often inside the user's git checkout, which go
		// would try to stamp into the binary, as a user who may not read
		// it: the version's hash already says what was built.
		"GOFLAGS=-buildvcs=false",
		"npm_config_cache=" + filepath.Join(home, ".npm"),
		"PIP_CACHE_DIR=" + filepath.Join(home, ".cache", "pip"),
		"LANG=C.UTF-8",
	}
}

// buildPath is defaultPath and where this machine's Go is, so that a
// project's build can use it.
func buildPath() string {
	path := defaultPath
	if goBin, err := exec.LookPath("go"); err == nil {
		path = filepath.Dir(goBin) + ":" + path
	}
	return path
}

// buildTailBytes and tailLines bound what a failed build or start shows
// of its output.
const (
	buildTailBytes = 64 << 10
	tailLines      = 20
)

// tail keeps the last bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lines returns the last n lines written.
func (t *tail) lines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	text := bytes.TrimRight(t.buf, "\n")
	for i := len(text) - 1; i >= 0; i-- {
		if text[i] == '\n' {
			if n--; n == 0 {
				return string(text[i+1:])
			}
		}
	}
	return string(text)
}
