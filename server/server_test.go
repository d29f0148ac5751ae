package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/api"
	"github.com/fiatdev/fiat/cli"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/server"
)

// node is one running fiat server with a client for each of its ports.
type node struct {
	t      *testing.T
	data   string
	srv    *server.Server
	public *http.Client
	admin  *api.Client
}

func start(t *testing.T, data string) *node {
	t.Helper()
	return startConfig(t, testConfig(data))
}

// testConfig is a server on free ports with small limits.
func testConfig(data string) server.Config {
	cfg := server.Defaults
	cfg.Listen, cfg.Admin, cfg.Data = "127.0.0.1:0", "127.0.0.1:0", data
	cfg.MaxBundle, cfg.MaxBody, cfg.MaxHeader = 64<<10, 1<<10, 4<<10
	cfg.Logger = quietLogger()
	return cfg
}

func startConfig(t *testing.T, cfg server.Config) *node {
	t.Helper()
	srv, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, data: cfg.Data, srv: srv}
	t.Cleanup(func() { n.stop() })
	publicAddr := srv.Public.String()
	// Every *.localhost name reaches the router, as curl and browsers do.
	n.public = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, publicAddr)
		},
		MaxIdleConnsPerHost: 64,
	}}
	n.admin = &api.Client{Server: "http://" + srv.Admin.String(), Token: srv.Token}
	return n
}

func (n *node) stop() {
	if n.srv != nil {
		n.srv.Shutdown(context.Background())
		n.srv = nil
	}
}

// get requests a path at a URL the server gave (service or version URL).
func (n *node) get(url string) (int, string, http.Header) {
	n.t.Helper()
	resp, err := n.public.Get(url)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// fiat runs the CLI in-process against this node.
func (n *node) fiat(args ...string) (code int, stdout, stderr string) {
	n.t.Helper()
	n.t.Setenv("FIAT_TOKEN", n.srv.Token)
	n.t.Setenv("FIAT_SERVER", "http://"+n.srv.Admin.String())
	return runFiat(args...)
}

// runFiat runs the CLI in-process with the environment as it is.
func runFiat(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func (n *node) deployJSON(dir string, args ...string) deploy.Result {
	n.t.Helper()
	code, out, errOut := n.fiat(append([]string{"deploy", dir, "--json"}, args...)...)
	if code != 0 {
		n.t.Fatalf("fiat deploy %s: exit %d\n%s%s", dir, code, out, errOut)
	}
	var res deploy.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		n.t.Fatalf("fiat deploy --json printed %q: %v", out, err)
	}
	return res
}

// writeProject writes a one-service project whose only route answers body.
func writeProject(t *testing.T, dir, service, body string) string {
	t.Helper()
	files := map[string]string{
		"fiat.toml": fmt.Sprintf("[services.%s]\n", service),
		"main.star": fmt.Sprintf("def handle(req):\n    return %q\n\nhttp.route(\"GET\", \"/\", handle)\n", body),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// served is what `fiat serve --json` prints once it serves.
type served struct {
	Router      string
	Admin       string
	TokenPath   string `json:"token_path"`
	NewToken    bool   `json:"new_token"`
	MemoryLimit struct {
		Bytes int64
		From  string
	} `json:"memory_limit"`
	Deploy deploy.Result
}

// serveProcess runs `fiat serve --json` on free ports as a process of its
// own, with env added to its environment, and returns what it printed.
func serveProcess(t *testing.T, env []string, args ...string) served {
	t.Helper()
	_, stdout := fiatProcessEnv(t, env, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--json"}, args...)...)
	var s served
	if err := json.NewDecoder(stdout).Decode(&s); err != nil {
		t.Fatalf("fiat serve --json did not print a JSON value: %v", err)
	}
	return s
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	token, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(token))
}

// TestServeDeploysOnStart runs the README's first command, `fiat serve
// --deploy examples/hello`, as a process of its own, with --json: it says
// where it serves, where the token is and what it deployed, and the
// example answers.
func TestServeDeploysOnStart(t *testing.T) {
	data := t.TempDir()
	started := serveProcess(t, nil, "--data", data, "--deploy", "../examples/hello")
	if !started.NewToken || started.TokenPath != filepath.Join(data, server.TokenFile) {
		t.Errorf("token: %q, new %v; want a new one in %s", started.TokenPath, started.NewToken, data)
	}
	admin := &api.Client{Server: started.Admin, Token: readToken(t, started.TokenPath)}
	if envs, err := admin.Envs(t.Context()); err != nil || len(envs) != 1 || envs[0].Services["hello"] != started.Deploy.Services[0].Version {
		t.Fatalf("envs from the admin API it names: %v, %v; want production with the hello it deployed (%+v)", envs, err, started.Deploy)
	}
	if code, body := getHello(t, http.DefaultClient, started.Router); code != 200 || !strings.Contains(body, "Bonjour, ada!") {
		t.Errorf("the example answers %d %q", code, body)
	}
}

// getHello requests the example's greeting from the router at addr, as
// curl -H "Host: hello.localhost" would.
func getHello(t *testing.T, client *http.Client, addr string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/hello/ada?lang=fr", nil)
	req.Host = "hello.localhost"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestDeployTheExample(t *testing.T) {
	n := start(t, t.TempDir())
	res := n.deployJSON("../examples/hello")
	if res.Env != "production" || len(res.Services) != 1 || res.DeployMS <= 0 {
		t.Fatalf("deploy result %+v", res)
	}
	s := res.Services[0]
	port := n.srv.Addresses.Port
	if s.Name != "hello" || len(s.Version) != fiat.HashLen || !s.Changed ||
		s.URL != "http://hello.localhost:"+port ||
		s.VersionURL != "http://hello-"+s.Version.Short()+".localhost:"+port {
		t.Fatalf("service result %+v", s)
	}
	for _, url := range []string{s.URL, s.VersionURL} {
		code, body, header := n.get(url + "/hello/ada?lang=fr")
		if code != 200 || !strings.Contains(body, "Bonjour, ada!") || header.Get("Fiat-Version") != s.Version.Short() {
			t.Errorf("GET %s/hello/ada: %d %q Fiat-Version %q", url, code, body, header.Get("Fiat-Version"))
		}
	}
	again := n.deployJSON("../examples/hello")
	if again.Services[0].Changed || again.Services[0].Version != s.Version {
		t.Errorf("redeploying unchanged code: %+v, want unchanged %s", again.Services[0], s.Version)
	}
	code, out, _ := n.fiat("deploy", "../examples/hello")
	if code != 0 || !strings.Contains(out, "unchanged") || !strings.Contains(out, s.URL) || !strings.Contains(out, "nothing changed") {
		t.Errorf("human output of an unchanged deploy:\n%s", out)
	}
}

func TestEveryVersionKeepsItsAddress(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	first := n.deployJSON(writeProject(t, dir, "app", "first")).Services[0]
	second := n.deployJSON(writeProject(t, dir, "app", "second")).Services[0]
	if !second.Changed || second.Version == first.Version {
		t.Fatalf("changed code kept version %s", first.Version)
	}
	for url, want := range map[string]string{first.VersionURL: "first", second.VersionURL: "second", second.URL: "second"} {
		if code, body, _ := n.get(url); code != 200 || body != want {
			t.Errorf("GET %s = %d %q, want %q", url, code, body, want)
		}
	}
}

// hammer has each of clients call request again and again until stop is
// closed, and returns a function that waits for them and says how many
// calls succeeded. A call that fails fails t, and stops its client.
func hammer(t *testing.T, clients int, stop <-chan struct{}, request func() error) (wait func() int64) {
	var served atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := request(); err != nil {
					t.Error(err)
					return
				}
				served.Add(1)
			}
		})
	}
	return func() int64 { wg.Wait(); return served.Load() }
}
