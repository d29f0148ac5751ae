package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/internal/ports"
	"github.com/fiatdev/fiat/metrics"
	"github.com/fiatdev/fiat/router"
)

// BenchmarkProxyVsNginx loads one plain Go backend through fiat's router
// and proxy, as a process service, and through nginx (installed with apt-get if missing) with upstream
// keep-alive, with the same client, in the same run, each twice, and
// reports requests per second and p99 latency of both:
//
//	go test ./process -run '^$' -bench ProxyVsNginx -benchtime 1x
func BenchmarkProxyVsNginx(b *testing.B) {
	backend := listen(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	p := newProxy("bench", "aaaaaaaaaaaa")
	p.setBackends([]string{backend})
	id := fiat.Hash("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	r := router.New(router.Config{Addresses: fiat.Addresses{Domain: "localhost"}, Metrics: metrics.New(), MaxBody: 1 << 20})
	r.AddVersion(id, "bench", nil, &running{proxy: p, group: &group{}, cfg: fiat.Config{}})
	if err := r.SetEnvs([]fiat.Env{{Name: fiat.Production, Services: map[string]fiat.Hash{"bench": id}}}); err != nil {
		b.Fatal(err)
	}
	throughFiat := listen(b, r)
	nginx := startNginx(b, backend)
	const concurrency, duration = 32, 3 * time.Second
	var fiatRPS, nginxRPS, fiatP99, nginxP99 []float64
	for range 2 {
		rps, p99 := load(b, nginx, concurrency, duration)
		nginxRPS, nginxP99 = append(nginxRPS, rps), append(nginxP99, p99)
		rps, p99 = load(b, throughFiat, concurrency, duration)
		fiatRPS, fiatP99 = append(fiatRPS, rps), append(fiatP99, p99)
	}
	b.ReportMetric(slices.Max(fiatRPS), "fiat-req/s")
	b.ReportMetric(slices.Max(nginxRPS), "nginx-req/s")
	b.ReportMetric(slices.Max(fiatRPS)/slices.Max(nginxRPS), "fiat/nginx")
	b.ReportMetric(slices.Min(fiatP99), "fiat-p99-ms")
	b.ReportMetric(slices.Min(nginxP99), "nginx-p99-ms")
	b.ReportMetric(0, "ns/op")
}

func listen(b *testing.B, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// startNginx runs nginx proxying to backend, as a reverse proxy in front
// of an app is set up, and returns its address.
func startNginx(b *testing.B, backend string) string {
	if _, err := exec.LookPath("nginx"); err != nil {
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", "nginx")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("install nginx for the benchmark: %v\n%s", err, out)
		}
	}
	dir := b.TempDir()
	port, err := ports.Free()
	if err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s;
	proxy_temp_path %[1]s;
	upstream app { server %[2]s; keepalive 256; }
	server {
		listen 127.0.0.1:%[3]d;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		}
	}
}
`, dir, backend, port)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("nginx", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			b.Fatalf("nginx did not start:\n%s", log)
		}
	}
}

// load requests addr from concurrency keep-alive clients for d, and
// returns the requests per second and the p99 latency in milliseconds.
func load(b *testing.B, addr string, concurrency int, d time.Duration) (float64, float64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	// Every host reaches addr; the router finds the service by host.
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	url := "http://bench.localhost/"
	latencies := make([][]time.Duration, concurrency)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	began := time.Now()
	var wg sync.WaitGroup
	for c := range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				latencies[c] = append(latencies[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	all := slices.Concat(latencies...)
	slices.Sort(all)
	return float64(len(all)) / took.Seconds(), float64(all[len(all)*99/100].Microseconds()) / 1000
}
