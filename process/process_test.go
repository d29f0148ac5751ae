package process

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/internal/ports"
	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/sqlite"
)

// instanceBinary is testdata/instance, built once for the tests.
var instanceBinary []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fiat-instance-")
	if err != nil {
		panic(err)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "instance"), "./testdata/instance").CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("build the test instance: %v\n%s", err, out))
	}
	instanceBinary, err = os.ReadFile(filepath.Join(dir, "instance"))
	os.RemoveAll(dir)
	if err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// newRuntime is a runtime in a directory that the users instances run as
// may pass through, as fiat's data dir is.
func newRuntime(t *testing.T) *Runtime {
	return newRuntimeSharing(t, nil)
}

// newRuntimeSharing is newRuntime, sharing builds through builds.
func newRuntimeSharing(t *testing.T, builds Builds) *Runtime {
	t.Helper()
	dir, err := os.MkdirTemp("", "fiat-processes-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// A relative dir, as fiat serve's default data dir is.
	t.Chdir(dir)
	r, err := NewRuntime("processes", builds, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newVersion is a version of service that runs the test instance.
func newVersion(service string, env map[string]string, change func(*fiat.ProcessConfig)) *fiat.Version {
	p := &fiat.ProcessConfig{Run: "./instance", Health: "/healthz", Instances: 1, StartTimeout: 10 * time.Second, StopTimeout: 5 * time.Second}
	if change != nil {
		change(p)
	}
	v := &fiat.Version{Service: service, Config: fiat.Config{Kind: fiat.Process, Env: env, Process: p},
		Files: []fiat.File{{Path: "instance", Data: instanceBinary, Executable: true}}}
	v.ID = fiat.HashVersion(v)
	return v
}

func start(t *testing.T, r *Runtime, v *fiat.Version) *running {
	t.Helper()
	started, err := r.Start(t.Context(), v.ID, func(context.Context) (*fiat.Version, error) { return v, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { started.Stop(context.Background()) })
	return started.(*running)
}

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://app.localhost"+target, nil))
	body, _ := io.ReadAll(w.Body)
	return w.Code, string(body)
}

// TestStartServeStop starts two instances with the service's config as
// their environment and nothing of fiat's, serves through them, and stops
// them.
func TestStartServeStop(t *testing.T) {
	t.Setenv("FIAT_TOKEN", "fiat's own secret")
	r := newRuntime(t)
	v := start(t, r, newVersion("app", map[string]string{"GREETING": "bonjour"}, func(p *fiat.ProcessConfig) { p.Instances = 2 }))
	pids := map[string]bool{}
	for range 20 {
		code, body := get(t, v, "/")
		if code != 200 || !strings.HasPrefix(body, "bonjour from ") {
			t.Fatalf("GET /: %d %q", code, body)
		}
		pids[strings.TrimPrefix(body, "bonjour from ")] = true
	}
	if len(pids) != 2 {
		t.Errorf("20 requests reached %d instances, want both", len(pids))
	}
	_, env := get(t, v, "/env")
	var keys []string
	for line := range strings.SplitSeq(env, "\n") {
		key, _, _ := strings.Cut(line, "=")
		keys = append(keys, key)
	}
	// The shell that starts the instance sets PWD.
	if strings.Join(keys, " ") != "GREETING HOME PATH PORT PWD" {
		t.Errorf("an instance's environment has %v, want GREETING HOME PATH PORT PWD only:\n%s", keys, env)
	}
	instances := v.Instances()
	if len(instances) != 2 || instances[0].State != "ready" || instances[0].PID == 0 || instances[0].MemoryBytes == 0 {
		t.Errorf("instances: %+v", instances)
	}
	if err := v.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, i := range instances {
		if syscall.Kill(i.PID, 0) == nil {
			t.Errorf("instance %s (pid %d) still runs after Stop", i.ID, i.PID)
		}
	}
}

// TestBuildsOnce builds a version once, also for a runtime started again
// on the same directory, which then needs nothing from the store.
func TestBuildsOnce(t *testing.T) {
	r := newRuntime(t)
	// The build's paths are absolute, as go requires of GOPATH, though
	// the runtime's dir is relative.
	v := newVersion("app", nil, func(p *fiat.ProcessConfig) {
		p.Build = `for p in "$HOME" "$GOCACHE" "$GOPATH"; do case "$p" in /*) ;; *) echo "relative: $p"; exit 1;; esac; done; date >> built.txt`
	})
	first := start(t, r, v)
	first.Stop(t.Context())
	// Another version that differs only in its config runs from the same
	// build.
	configured := newVersion("app", map[string]string{"GREETING": "configured"}, func(p *fiat.ProcessConfig) { p.Build = v.Config.Process.Build })
	if configured.ID == v.ID {
		t.Fatal("the versions are the same")
	}
	if other := start(t, r, configured); other.group.dir != first.group.dir {
		t.Errorf("a config change built again, in %s", other.group.dir)
	}
	again, err := NewRuntime(filepath.Dir(r.paths.builds), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	started, err := again.Start(t.Context(), v.ID, func(context.Context) (*fiat.Version, error) {
		return nil, errors.New("the store was read for a version built already")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer started.Stop(context.Background())
	data, err := os.ReadFile(filepath.Join(first.group.dir, "built.txt"))
	if err != nil || strings.Count(string(data), "\n") != 1 {
		t.Errorf("built.txt: %q, %v; want one line, one build", data, err)
	}
}

// TestRefusals refuses a broken build, an instance that exits at start and
// one whose health check never passes, each with the end of its output.
func TestRefusals(t *testing.T) {
	r := newRuntime(t)
	for name, tc := range map[string]struct {
		env    map[string]string
		change func(*fiat.ProcessConfig)
		want   []string
	}{
		"broken build": {nil, func(p *fiat.ProcessConfig) { p.Build = "echo compiling; echo 'main.go:3: syntax error' >&2; exit 1" },
			[]string{"build = ", "failed", "main.go:3: syntax error"}},
		"exit at start": {map[string]string{"EXIT_AT_ONCE": "1"}, nil,
			[]string{"exited before it was ready", "exiting before serving"}},
		"health never passes": {nil, func(p *fiat.ProcessConfig) { p.Health = "/unhealthy"; p.StartTimeout = time.Second },
			[]string{`did not answer 2xx at health = "/unhealthy" within start_timeout = "1s"`, "listening on"}},
	} {
		v := newVersion("app", tc.env, tc.change)
		_, err := r.Start(t.Context(), v.ID, func(context.Context) (*fiat.Version, error) { return v, nil }, nil)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want an error saying %q", name, err, want)
			}
		}
	}
}

// TestCrashedInstanceRestartsWithBackoff has an instance crash again and
// again: it is started again, less and less often, and says so.
func TestCrashedInstanceRestartsWithBackoff(t *testing.T) {
	r := newRuntime(t)
	v := start(t, r, newVersion("app", map[string]string{"CRASH_AFTER": "50ms"}, nil))
	deadline := time.Now().Add(20 * time.Second)
	for v.Instances()[0].Restarts < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("instances after 20s: %+v", v.Instances())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var waits []string
	for _, line := range v.Logs(100) {
		if _, wait, ok := strings.Cut(line.Text, "starting it again in "); ok {
			waits = append(waits, wait)
		}
	}
	if len(waits) < 3 || waits[0] != "100ms" || waits[1] != "200ms" || waits[2] != "400ms" {
		t.Errorf("restarts waited %v, want 100ms, 200ms, 400ms, ...", waits)
	}
	logged, err := os.ReadFile(filepath.Join(r.paths.logs, "app", v.proxy.version+".log"))
	if err != nil || !strings.Contains(string(logged), "web.1 crashing on purpose") {
		t.Errorf("the log file: %v\n%.300s", err, logged)
	}
}

// TestStopKillsWhatIgnoresSIGTERM stops an instance that ignores SIGTERM:
// SIGKILL after stop_timeout.
func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	r := newRuntime(t)
	v := start(t, r, newVersion("app", map[string]string{"IGNORE_TERM": "1"}, func(p *fiat.ProcessConfig) { p.StopTimeout = time.Second }))
	pid := v.Instances()[0].PID
	began := time.Now()
	v.Stop(t.Context())
	if took := time.Since(began); took < time.Second {
		t.Errorf("Stop returned after %v, before stop_timeout", took)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Error("the instance still runs")
	}
}

// TestInstanceCannotReadFiatsFiles has an instance try to read a file of
// fiat's and one of another service, as root does: it cannot.
func TestInstanceCannotReadFiatsFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("instances run as users of their own only when fiat runs as root")
	}
	r := newRuntime(t)
	secret := filepath.Join(filepath.Dir(filepath.Dir(r.paths.builds)), "admin-token")
	if err := os.WriteFile(secret, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := start(t, r, newVersion("other", map[string]string{"GREETING": "other"}, nil))
	v := start(t, r, newVersion("app", nil, nil))
	for _, path := range []string{secret, filepath.Join(other.group.dir, "instance"), filepath.Dir(secret)} {
		if _, body := get(t, v, "/read?path="+path); !strings.Contains(body, "permission denied") {
			t.Errorf("an instance read %s: %.40q", path, body)
		}
	}
}

// TestProxy checks what the proxy adds and takes away, streams events at
// once, and answers 503 with no instance.
func TestProxy(t *testing.T) {
	r := newRuntime(t)
	v := start(t, r, newVersion("app", nil, nil))
	req := httptest.NewRequest("GET", "http://app.localhost/headers", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.RemoteAddr = "10.1.2.3:4567"
	w := httptest.NewRecorder()
	v.ServeHTTP(w, req)
	if body := w.Body.String(); strings.Contains(body, "6.6.6.6") || !strings.Contains(body, "X-Forwarded-For=10.1.2.3") ||
		!strings.Contains(body, "X-Forwarded-Host=app.localhost") || !strings.Contains(body, "Fiat-Version="+v.proxy.version) {
		t.Errorf("the instance saw:\n%s", body)
	}

	// The instance hears the flags evaluated for the request, never what
	// the request said they are.
	for _, c := range []struct {
		flags fiat.Flags
		want  string
	}{{nil, ""}, {headerFlags("beta=on, new_checkout=off"), "Fiat-Flags=beta=on, new_checkout=off"}} {
		ctx := t.Context()
		if c.flags != nil {
			ctx = fiat.WithFlags(ctx, c.flags)
		}
		req := httptest.NewRequestWithContext(ctx, "GET", "http://app.localhost/headers", nil)
		req.Header.Set("Fiat-Flags", "beta=off, admin=on")
		w := httptest.NewRecorder()
		v.ServeHTTP(w, req)
		if body := w.Body.String(); strings.Contains(body, "admin") || c.want != "" && !strings.Contains(body, c.want) {
			t.Errorf("with flags %v, the instance saw:\n%s", c.flags, body)
		}
	}

	srv := httptest.NewServer(v)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	events, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(events)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Errorf("the first event: %q, %v; want it before the stream ends", line, err)
	}
	cancel()
	resp.Body.Close()

	if err := v.Scale(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, v, "/"); code != 503 || !strings.Contains(body, "no instance ready") {
		t.Errorf("with no instance: %d %q", code, body)
	}
}

// headerFlags are flags whose Fiat-Flags header is the string.
type headerFlags string

func (headerFlags) Flag(string) bool { return false }
func (h headerFlags) Header() string { return string(h) }

// TestWorkersAndRelease runs a worker beside the web instance, without
// PORT or traffic, and a release command whose failure refuses the deploy.
func TestWorkersAndRelease(t *testing.T) {
	r := newRuntime(t)
	v := start(t, r, newVersion("app", nil, func(p *fiat.ProcessConfig) {
		p.Workers = map[string]string{"jobs": "./instance"}
		p.Release = "echo migrating; exit 3"
	}))
	instances := v.Instances()
	if len(instances) != 2 || instances[1].ID != "jobs.1" || instances[1].Type != "jobs" || instances[1].State != "running" {
		t.Errorf("instances: %+v, want web.1 and a running jobs.1", instances)
	}
	if backends := v.group.backends(); len(backends) != 1 {
		t.Errorf("backends %v: a worker takes no traffic", backends)
	}
	err := v.Test(t.Context())
	var problems fiat.Problems
	if !errors.As(err, &problems) || !strings.Contains(err.Error(), `release = "echo migrating; exit 3" failed`) || !strings.Contains(err.Error(), "migrating") {
		t.Errorf("a failing release: %v", err)
	}
	v.Stop(t.Context())
	for _, i := range instances {
		if syscall.Kill(i.PID, 0) == nil {
			t.Errorf("%s still runs after Stop", i.ID)
		}
	}
}

// TestMemoryLimit has an instance allocate past its service's memory: the
// kernel stops it, and it is started again; under the limit it lives.
func TestMemoryLimit(t *testing.T) {
	r := newRuntime(t)
	if r.limits.memory == "" {
		t.Skipf("this machine gives fiat no memory cgroup: %s", r.limits.why)
	}
	v := newVersion("app", nil, nil)
	v.Config.Memory = 64 << 20
	v.ID = fiat.HashVersion(v)
	started := start(t, r, v)
	if code, body := get(t, started, "/alloc?mb=16"); code != 200 {
		t.Fatalf("16 MiB of 64: %d %q", code, body)
	}
	if code, body := get(t, started, "/alloc?mb=200"); code == 200 {
		t.Fatalf("200 MiB of 64: %d %q, want the instance stopped", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for started.Instances()[0].Restarts == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the instance was not started again: %+v", started.Instances())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sharedBuilds is a store's builds, in memory.
type sharedBuilds struct {
	mu       sync.Mutex
	archives map[fiat.Hash][]byte
}

func (s *sharedBuilds) PutBuild(_ context.Context, id fiat.Hash, archive []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archives[id] = archive
	return nil
}

func (s *sharedBuilds) Build(_ context.Context, id fiat.Hash) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if archive, ok := s.archives[id]; ok {
		return archive, nil
	}
	return nil, store.ErrNotFound
}

// TestBuildsAreShared builds a version on one node and starts it on
// another, which takes the first node's build instead of building again.
func TestBuildsAreShared(t *testing.T) {
	shared := &sharedBuilds{archives: map[fiat.Hash][]byte{}}
	v := newVersion("app", nil, func(p *fiat.ProcessConfig) {
		p.Build = "mkdir -p out/bin && date +%s%N > out/stamp && ln -s ../instance out/bin/app"
	})
	a, b := newRuntimeSharing(t, shared), newRuntimeSharing(t, shared)
	onA := start(t, a, v)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := shared.Build(t.Context(), buildKey(v)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the build was not shared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	onB := start(t, b, v)
	stamp := func(v *running) string {
		data, err := os.ReadFile(filepath.Join(v.group.dir, "out", "stamp"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if stamp(onA) != stamp(onB) {
		t.Errorf("the second node built again: stamps %q and %q", stamp(onA), stamp(onB))
	}
	if target, err := os.Readlink(filepath.Join(onB.group.dir, "out", "bin", "app")); err != nil || target != "../instance" {
		t.Errorf("the build's symlink: %q, %v", target, err)
	}
}

// TestHostileBuildArchive refuses archives that would write or point
// outside the build.
func TestHostileBuildArchive(t *testing.T) {
	for name, entry := range map[string]*tar.Header{
		"escaping path":    {Name: "../../etc/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		"escaping symlink": {Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"},
		"absolute symlink": {Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		"device":           {Name: "dev", Typeflag: tar.TypeChar},
	} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		tw.WriteHeader(entry)
		tw.Close()
		zw.Close()
		dir := filepath.Join(t.TempDir(), "build")
		if err := extract(buf.Bytes(), dir, user{}); err == nil {
			t.Errorf("%s: extracted", name)
		}
	}
}

// TestLogsOnDisk keeps a version's output in a file that is rotated, not
// grown without bound, as well as in memory.
func TestLogsOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app", "v.log")
	b := newLogBook("aaaaaaaaaaaa", path)
	line := strings.Repeat("x", 100)
	for range 25_000 {
		b.add("web.1", line)
	}
	b.close()
	current, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	previous, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if current.Size() > maxLogFile+200 || previous.Size() > maxLogFile+200 || current.Mode().Perm() != 0o600 {
		t.Errorf("log files of %d and %d bytes, mode %v; want at most about %d each, 0600", current.Size(), previous.Size(), current.Mode().Perm(), maxLogFile)
	}
	if got := b.last(maxLogLines + 10); len(got) != maxLogLines || got[len(got)-1].Text != line {
		t.Errorf("kept %d lines in memory, want the last %d", len(got), maxLogLines)
	}
}

// TestProxyErrors answers 502 when the instance cannot be reached and 504
// when it does not start answering in time, naming the service and
// version and not the instance's address.
func TestProxyErrors(t *testing.T) {
	r := newRuntime(t)
	v := start(t, r, newVersion("app", nil, nil))
	v.proxy.transport.ResponseHeaderTimeout = 200 * time.Millisecond
	code, body := get(t, v, "/slow?for=2s")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "service app, version "+v.proxy.version+", did not answer within 200ms") {
		t.Errorf("a slow instance: %d %q", code, body)
	}
	closed, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprint("127.0.0.1:", closed)
	v.proxy.setBackends([]string{addr})
	code, body = get(t, v, "/")
	if code != http.StatusBadGateway || !strings.Contains(body, "service app, version "+v.proxy.version+", could not be reached") || strings.Contains(body, addr) {
		t.Errorf("an instance that is gone: %d %q", code, body)
	}
}

// TestProxyBalancesByOutstandingRequests sends requests while one is held
// by an instance: they all go to the other.
func TestProxyBalancesByOutstandingRequests(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	backend := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				once.Do(func() { close(held) })
				<-release
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	p := newProxy("app", "aaaaaaaaaaaa")
	p.setBackends([]string{backend("a"), backend("b")})
	holder := make(chan string)
	go func() { _, body := get(t, p, "/hold"); holder <- body }()
	<-held
	answers := map[string]int{}
	for range 10 {
		_, body := get(t, p, "/")
		answers[body]++
	}
	close(release)
	busy := <-holder
	if len(answers) != 1 || answers[busy] != 0 {
		t.Errorf("with %s busy, 10 requests went to %v; want all to the other", busy, answers)
	}
}

// TestCPULimit has an instance spin on every core: it gets one.
func TestCPULimit(t *testing.T) {
	r := newRuntime(t)
	if r.limits.cpu == "" {
		t.Skipf("this machine gives fiat no cpu cgroup: %s", r.limits.why)
	}
	v := start(t, r, newVersion("app", nil, nil))
	pid := v.Instances()[0].PID
	groups, _ := filepath.Glob(filepath.Join(r.limits.cpu, "app-"+v.proxy.version+"-web.1-*"))
	if len(groups) != 1 {
		t.Fatalf("the instance's cpu cgroups: %v, want one", groups)
	}
	procs, err := os.ReadFile(filepath.Join(groups[0], "cgroup.procs"))
	if err != nil || strings.TrimSpace(string(procs)) != fmt.Sprint(pid) {
		t.Fatalf("the instance's cpu cgroup holds %q, %v; want its pid", procs, err)
	}
	quota, _ := os.ReadFile(filepath.Join(groups[0], "cpu.cfs_quota_us"))
	if strings.TrimSpace(string(quota)) != fmt.Sprint(cpuQuota) {
		t.Errorf("cpu.cfs_quota_us = %q, want one core", quota)
	}
}

// TestEscapedProcessesAreKilled has an instance start a daemon that leaves
// its process group: stopping the instance kills the daemon too.
func TestEscapedProcessesAreKilled(t *testing.T) {
	r := newRuntime(t)
	if r.limits.memory == "" {
		t.Skipf("this machine gives fiat no memory cgroup, which is what finds such processes: %s", r.limits.why)
	}
	// One daemon started by the instance once it serves, one by its
	// command before anything else: an instance is in its groups from its
	// first instruction.
	v := start(t, r, newVersion("app", nil, func(p *fiat.ProcessConfig) {
		p.Run = "setsid sleep 1000 & echo $! > daemon.pid; exec ./instance"
	}))
	_, body := get(t, v, "/spawn")
	var spawned, first int
	data, _ := os.ReadFile(filepath.Join(v.group.dir, "daemon.pid"))
	fmt.Sscan(string(data), &first)
	if _, err := fmt.Sscan(body, &spawned); err != nil || syscall.Kill(spawned, 0) != nil || first == 0 {
		t.Fatalf("the daemons did not start: %q, %q", body, data)
	}
	v.Stop(t.Context())
	for _, pid := range []int{first, spawned} {
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("daemon %d outlived its instance", pid)
			}
		}
	}
}

// TestBuildsAreKeptInTheStore shares a build through a real store, under
// its key, which is no version's id.
func TestBuildsAreKeptInTheStore(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "fiat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v := newVersion("app", nil, func(p *fiat.ProcessConfig) { p.Build = "echo built > out" })
	start(t, newRuntimeSharing(t, db), v)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.Build(t.Context(), buildKey(v))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store has no build: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
