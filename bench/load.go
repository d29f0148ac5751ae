package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/fiatdev/fiat/server"
)

// cliDeploys times `fiat deploy` as a user runs it: a new process each time,
// CLI start included.
func cliDeploys(ctx context.Context, srv *server.Server, fiatBinary, dir string, n int) (Distribution, error) {
	var ms []float64
	for i := range n {
		if err := change(dir, 100000+i); err != nil {
			return Distribution{}, err
		}
		cmd := exec.CommandContext(ctx, fiatBinary, "deploy", dir, "--json")
		cmd.Env = append(os.Environ(), "FIAT_SERVER=http://"+srv.Admin.String(), "FIAT_TOKEN="+srv.Token)
		began := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return Distribution{}, fmt.Errorf("fiat deploy: %v\n%s", err, out)
		}
		ms = append(ms, millis(time.Since(began)))
	}
	return distribution(ms), nil
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
