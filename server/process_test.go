package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/server"
	"golang.org/x/net/websocket"
)

var instance struct {
	once   sync.Once
	binary []byte
	err    error
}

// buildInstance builds the process runtime's test instance, once.
func buildInstance() ([]byte, error) {
	instance.once.Do(func() {
		dir, err := os.MkdirTemp("", "fiat-instance-")
		if err != nil {
			instance.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "instance")
		if out, err := exec.Command("go", "build", "-o", path, "../process/testdata/instance").CombinedOutput(); err != nil {
			instance.err = fmt.Errorf("build the test instance: %v\n%s", err, out)
			return
		}
		instance.binary, instance.err = os.ReadFile(path)
	})
	return instance.binary, instance.err
}

// publicDir is a directory, as a user's project dir is, that others may
// pass through: process instances, run as users of their own, must reach
// their builds under the data dir inside it.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fiat-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeProcessProject writes a project of one process service, app, that
// runs the test instance greeting with greeting.
func writeProcessProject(t *testing.T, dir, greeting string) string {
	t.Helper()
	toml := fmt.Sprintf("[services.app]\nrun = \"./instance\"\nhealth = \"/healthz\"\nenv = { GREETING = %q }\n", greeting)
	if err := os.WriteFile(filepath.Join(dir, "fiat.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := buildInstance()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "instance"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestProcessServiceUnderLoad deploys a process service fifty times while
// clients request it without pause: no request fails, each is answered by
// a version deployed, and the replaced versions' instances stop. Then a
// rollback, a config change, logs, scale and restart, as a user would.
func TestProcessServiceUnderLoad(t *testing.T) {
	cfg := testConfig(filepath.Join(publicDir(t), "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	dir := t.TempDir()
	first := n.deployJSON(writeProcessProject(t, dir, "v0"))
	url := n.srv.Addresses.Service("app", fiat.Production)
	if _, body, _ := n.get(url); !strings.HasPrefix(body, "v0 from ") {
		t.Fatalf("the first version answers %q", body)
	}

	known := sync.Map{} // greeting → true, set before its deploy
	known.Store("v0", true)
	stop := make(chan struct{})
	served := hammer(t, 4, stop, func() error {
		resp, err := n.public.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		greeting, _, _ := strings.Cut(string(body), " from ")
		if _, ok := known.Load(greeting); resp.StatusCode != 200 || !ok {
			return fmt.Errorf("during deploys: %d %q", resp.StatusCode, body)
		}
		return nil
	})
	var deployMS []float64
	for i := 1; i <= 50; i++ {
		greeting := fmt.Sprint("v", i)
		known.Store(greeting, true)
		res := n.deployJSON(writeProcessProject(t, dir, greeting))
		deployMS = append(deployMS, res.DeployMS)
	}
	close(stop)
	requests := served()
	slices.Sort(deployMS)
	t.Logf("%d requests served during 50 deploys; deploy p50 %.1f ms, max %.1f ms", requests, deployMS[25], deployMS[49])
	if requests < 50 {
		t.Errorf("only %d requests served during the deploys", requests)
	}
	if _, body, _ := n.get(url); !strings.HasPrefix(body, "v50 from ") {
		t.Errorf("after the deploys: %q", body)
	}
	ps := n.processes()
	if len(ps) != 1 || len(ps[0].Instances) != 1 || ps[0].Instances[0].State != "ready" {
		t.Errorf("fiat ps after 50 deploys: %+v, want one ready instance", ps)
	}
	waitFor(t, "the replaced versions' instances to stop", func() bool { return len(instancesIn(n.data)) == 1 })

	n.fiat("rollback", "app")
	if _, body, _ := n.get(url); !strings.HasPrefix(body, "v49 from ") {
		t.Errorf("after a rollback: %q", body)
	}
	if code, out, errOut := n.fiat("config", "set", "app", "GREETING=configured"); code != 0 {
		t.Fatalf("config set: %s%s", out, errOut)
	}
	if _, body, _ := n.get(url); !strings.HasPrefix(body, "configured from ") {
		t.Errorf("after config set: %q", body)
	}
	if _, out, _ := n.fiat("logs", "app"); !strings.Contains(out, "web.1 listening on") {
		t.Errorf("fiat logs app:\n%s", out)
	}
	if code, out, errOut := n.fiat("scale", "app=2"); code != 0 {
		t.Fatalf("scale: %s%s", out, errOut)
	}
	waitFor(t, "two instances", func() bool { ps := n.processes(); return len(ps) == 1 && len(ps[0].Instances) == 2 })
	before := n.processes()[0].Instances
	if code, out, errOut := n.fiat("restart", "app"); code != 0 {
		t.Fatalf("restart: %s%s", out, errOut)
	}
	after := n.processes()[0].Instances
	if len(after) != 2 || after[0].PID == before[0].PID || after[1].PID == before[1].PID {
		t.Errorf("restart: instances %+v, then %+v; want two new ones", before, after)
	}

	// The first version stopped long ago; its address starts it again.
	if code, body, _ := n.get(first.Services[0].VersionURL); code != 200 || !strings.HasPrefix(body, "v0 from ") {
		t.Errorf("the first version's address: %d %q", code, body)
	}
}

// TestProcessStreams passes server-sent events, as they are written, and
// a WebSocket through the router to a process service.
func TestProcessStreams(t *testing.T) {
	cfg := testConfig(filepath.Join(publicDir(t), "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	n.deployJSON(writeProcessProject(t, t.TempDir(), "streams"))
	url := n.srv.Addresses.Service("app", fiat.Production)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	resp, err := n.public.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Errorf("the first event through the router: %q, %v; want it before the stream ends", line, err)
	}
	resp.Body.Close()

	conn, err := net.Dial("tcp", n.srv.Public.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	wsCfg, err := websocket.NewConfig(strings.Replace(url, "http://", "ws://", 1)+"/ws", url)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(wsCfg, conn)
	if err != nil {
		t.Fatalf("WebSocket handshake through the router: %v", err)
	}
	if _, err := ws.Write([]byte("echo me")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(ws, got); err != nil || string(got) != "echo me" {
		t.Errorf("WebSocket echo: %q, %v", got, err)
	}
}

func (n *node) processes() []deploy.Process {
	n.t.Helper()
	ps, err := n.admin.Processes(n.t.Context())
	if err != nil {
		n.t.Fatal(err)
	}
	return ps
}

// instancesIn returns the pids of the processes that run in a directory
// under data: the instances of a server's process services.
func instancesIn(data string) []int {
	abs, _ := filepath.Abs(data)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && strings.HasPrefix(cwd, abs+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// BenchmarkProcessDeploy deploys a prebuilt Go HTTP server again and
// again, its run changed each time, nothing to build, and reports the
// server's time from the deploy's request to the new version serving:
//
//	go test ./server -run '^$' -bench ProcessDeploy -benchtime 200x
func BenchmarkProcessDeploy(b *testing.B) {
	root, err := os.MkdirTemp("", "fiat-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o711)
	cfg := server.Defaults
	cfg.Listen, cfg.Admin, cfg.Data, cfg.MaxBundle, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(root, "data"), 32<<20, quietLogger()
	srv, err := server.Start(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	admin := &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}
	dir := filepath.Join(root, "project")
	os.Mkdir(dir, 0o755)
	binary, err := buildInstance()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "instance"), binary, 0o755); err != nil {
		b.Fatal(err)
	}
	var ms []float64
	for i := range b.N {
		toml := fmt.Sprintf("[services.app]\nrun = \"./instance # deploy %d\"\nhealth = \"/healthz\"\n", i)
		if err := os.WriteFile(filepath.Join(dir, "fiat.toml"), []byte(toml), 0o644); err != nil {
			b.Fatal(err)
		}
		bundle, err := project.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		res, err := admin.Deploy(b.Context(), fiat.Production, bundle)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, res.DeployMS)
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "deploy-p50-ms")
	b.ReportMetric(ms[len(ms)*99/100], "deploy-p99-ms")
	b.ReportMetric(0, "ns/op")
}
