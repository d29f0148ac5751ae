package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/store"
	"github.com/fiatdev/fiat/store/sqlite"
)

// deploys starts `fiat serve` as a process of its own and runs `fiat
// deploy` n times against it, one at a time, as a user does. After each, it
// times one durable commit of a small change to a store of its own in the
// same directory, so that deploys compare with what the disk allows in the
// same run. It returns the server's own time of each deploy, the CLI's
// whole run, and the commits.
func deploys(ctx context.Context, opts Options, dir, data string) (server, cli, commit Distribution, err error) {
	serve, err := startServe(ctx, opts.Fiat, "--data", data)
	if err != nil {
		return server, cli, commit, err
	}
	defer serve.stop()
	db, err := sqlite.Open(filepath.Join(opts.Dir, "commits.db"))
	if err != nil {
		return server, cli, commit, err
	}
	defer db.Close()
	var deploys, whole, commits []float64
	for i := range opts.Deploys {
		if err := change(dir, i); err != nil {
			return server, cli, commit, err
		}
		cmd := exec.CommandContext(ctx, opts.Fiat, "deploy", dir, "--json")
		cmd.Env = append(os.Environ(), "FIAT_SERVER="+serve.Admin, "FIAT_TOKEN="+serve.Token)
		began := time.Now()
		out, err := cmd.Output()
		took := time.Since(began)
		var res deploy.Result
		if err == nil {
			err = json.Unmarshal(out, &res)
		}
		if err != nil || len(res.Services) != 1 || !res.Services[0].Changed {
			return server, cli, commit, fmt.Errorf("fiat deploy %d: %v\n%s", i, err, out)
		}
		deploys, whole = append(deploys, res.DeployMS), append(whole, millis(took))

		began = time.Now()
		if _, err := db.Apply(ctx, store.Change{Env: fmt.Sprintf("commit-%d", i), Kind: "bench", Create: true}); err != nil {
			return server, cli, commit, err
		}
		commits = append(commits, millis(time.Since(began)))
	}
	return distribution(deploys), distribution(whole), distribution(commits), nil
}

// serveProcess is `fiat serve` running as a process of its own.
type serveProcess struct {
	cmd *exec.Cmd
	// Admin is the admin API's URL, Router the public router's address.
	Admin, Router string
	Token         string
	log           bytes.Buffer
}

// startServe starts `fiat serve` on free ports with args added, and
// returns once it serves.
func startServe(ctx context.Context, fiatBinary string, args ...string) (*serveProcess, error) {
	p := &serveProcess{cmd: exec.CommandContext(ctx, fiatBinary, append([]string{"serve", "--json", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, args...)...)}
	p.cmd.Stderr = &p.log
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	var serving struct {
		Admin     string `json:"admin"`
		Router    string `json:"router"`
		TokenPath string `json:"token_path"`
	}
	if err := json.NewDecoder(stdout).Decode(&serving); err != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		return nil, fmt.Errorf("fiat serve did not start: %v\n%s", err, p.log.Bytes())
	}
	token, err := os.ReadFile(serving.TokenPath)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.Admin, p.Router, p.Token = serving.Admin, serving.Router, strings.TrimSpace(string(token))
	return p, nil
}

// stop stops the server as Ctrl-C does.
func (p *serveProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Load is the outcome of one request load.
type Load struct {
	Requests     int          `json:"requests"`
	RequestsPerS float64      `json:"requests_per_second"`
	Latency      Distribution `json:"latency_ms"`
}

// compareHandlers loads a plain net/http handler and the script route with
// the same client, concurrency and duration, one after the other.
func compareHandlers(ctx context.Context, routerAddr, url string, d time.Duration, concurrency int) (plain, script Load, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return plain, script, err
	}
	plainServer := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	go plainServer.Serve(ln)
	defer plainServer.Close()
	if plain, err = load(ctx, ln.Addr().String(), "http://plain.localhost/hello", d, concurrency); err != nil {
		return plain, script, err
	}
	script, err = load(ctx, routerAddr, url, d, concurrency)
	return plain, script, err
}

// load requests url over keep-alive connections to addr from concurrency
// clients for d, after a short warm-up.
func load(ctx context.Context, addr, url string, d time.Duration, concurrency int) (Load, error) {
	client := clientTo(addr, concurrency)
	defer client.CloseIdleConnections()
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return err
	}
	for range concurrency * 10 {
		if err := get(); err != nil {
			return Load{}, err
		}
	}
	latencies := make([][]float64, concurrency)
	errs := make([]error, concurrency)
	deadline := time.Now().Add(d)
	began := time.Now()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				if errs[c] = get(); errs[c] != nil {
					return
				}
				latencies[c] = append(latencies[c], millis(time.Since(t)))
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	var all []float64
	for c := range concurrency {
		if errs[c] != nil {
			return Load{}, errs[c]
		}
		all = append(all, latencies[c]...)
	}
	return Load{Requests: len(all), RequestsPerS: float64(len(all)) / took.Seconds(), Latency: distribution(all)}, nil
}

// clientTo is an HTTP client that sends every request to addr, whatever
// host its URL names, keeping up to conns connections open: the router
// answers *.localhost names without DNS.
func clientTo(addr string, conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: conns,
	}}
}
