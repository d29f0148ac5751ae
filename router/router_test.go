package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
)

const (
	v1 = fiat.Hash("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	v2 = fiat.Hash("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	v3 = fiat.Hash("cccccccccccccccccccccccccccccccccccccccccccccccccccc")
	v4 = fiat.Hash("dddddddddddddddddddddddddddddddddddddddddddddddddddd")
)

// saying is a running version that answers what it says, and counts its
// stops.
type saying struct {
	what  string
	stops atomic.Int32
}

// handlerFunc is a running version that serves with a function.
type handlerFunc func(http.ResponseWriter, *http.Request)

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) { f(w, r) }
func (f handlerFunc) Test(context.Context) error                       { return nil }
func (f handlerFunc) Stop(context.Context) error                       { return nil }

func says(s string) *saying { return &saying{what: s} }

func (s *saying) ServeHTTP(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s.what) }
func (s *saying) Test(context.Context) error                       { return nil }
func (s *saying) Stop(context.Context) error                       { s.stops.Add(1); return nil }

func newRouter(load Loader) *Router {
	return New(Config{Addresses: fiat.Addresses{Domain: "localhost", Port: "8080"}, Load: load, Metrics: metrics.New(), MaxBody: 10, Logger: slog.New(slog.DiscardHandler)})
}

func get(t *testing.T, h http.Handler, host string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "http://"+host+"/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRoutesEveryAddress(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, says("one"))
	r.AddVersion(v2, "hello", nil, says("two"))
	if err := r.SetEnvs([]fiat.Env{
		{Name: "production", Services: map[string]fiat.Hash{"hello": v1}},
		{Name: "staging", Services: map[string]fiat.Hash{"hello": v2}},
	}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"hello.localhost:8080":               "one",
		"hello--staging.localhost:8080":      "two",
		"hello-" + v1.Short() + ".localhost": "one",
		"hello-" + v2.Short() + ".localhost": "two",
	} {
		w := get(t, r, host)
		if w.Code != 200 || w.Body.String() != want {
			t.Errorf("%s: %d %q, want 200 %q", host, w.Code, w.Body, want)
		}
		wantVersion := v1.Short()
		if want == "two" {
			wantVersion = v2.Short()
		}
		if got := w.Header().Get("Fiat-Version"); got != wantVersion {
			t.Errorf("%s: Fiat-Version %q, want %q", host, got, wantVersion)
		}
	}
}

func TestUnknownHostsAre404WithAHint(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, says("one"))
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}})
	for _, host := range []string{"nope.localhost:8080", "hello--staging.localhost", "nope-" + v1.Short() + ".localhost", "hello.example.com", "localhost:8080"} {
		w := get(t, r, host)
		if w.Code != 404 || !strings.Contains(w.Body.String(), host) || !strings.Contains(w.Body.String(), "fiat deploy") {
			t.Errorf("%s: %d %q, want 404 naming the host and hinting at fiat deploy", host, w.Code, w.Body)
		}
	}
}

func TestSwitchAndDelete(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, says("one"))
	r.AddVersion(v2, "hello", nil, says("two"))
	r.SetEnvs([]fiat.Env{{Name: "staging", Services: map[string]fiat.Hash{"hello": v1}}})
	r.SetEnvs([]fiat.Env{{Name: "staging", Services: map[string]fiat.Hash{"hello": v2}}})
	if w := get(t, r, "hello--staging.localhost"); w.Body.String() != "two" {
		t.Errorf("after switch: %q, want two", w.Body)
	}
	r.SetEnvs(nil, "staging")
	if w := get(t, r, "hello--staging.localhost"); w.Code != 404 {
		t.Errorf("after delete: %d, want 404", w.Code)
	}
	if w := get(t, r, "hello-"+v1.Short()+".localhost"); w.Body.String() != "one" {
		t.Errorf("version address after delete: %q, want one", w.Body)
	}
	if err := r.SetEnvs([]fiat.Env{{Name: "x", Services: map[string]fiat.Hash{"hello": "cccccccc"}}}); err == nil {
		t.Error("SetEnvs accepted a version never added")
	}
}

func TestStartsVersionsLazilyOnce(t *testing.T) {
	var loads atomic.Int32
	r := newRouter(func(ctx context.Context, id fiat.Hash) (fiat.Running, error) {
		if loads.Add(1) == 1 {
			return nil, errors.New("disk on fire")
		}
		return says("loaded " + id.Short()), nil
	})
	r.AddVersion(v1, "hello", nil, nil)
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}})
	if w := get(t, r, "hello.localhost"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("failed start: %d %q, want 503", w.Code, w.Body)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := get(t, r, "hello.localhost"); w.Body.String() != "loaded "+v1.Short() {
				t.Errorf("got %q", w.Body)
			}
		}()
	}
	wg.Wait()
	if n := loads.Load(); n != 2 {
		t.Errorf("loader called %d times, want 2 (one failure, then once)", n)
	}
}

func TestBodyLimit(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := io.ReadAll(req.Body); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
		}
		io.WriteString(w, "ok")
	}))
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}})
	post := func(body io.Reader, length int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "http://hello.localhost/", body)
		req.ContentLength = length
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	if w := post(strings.NewReader("small"), 5); w.Code != 200 {
		t.Errorf("small body: %d", w.Code)
	}
	if w := post(strings.NewReader(strings.Repeat("x", 11)), 11); w.Code != 413 || !strings.Contains(w.Body.String(), "limit of 10 bytes") {
		t.Errorf("declared large body: %d %q, want 413 naming the limit", w.Code, w.Body)
	}
	// A chunked body has no declared length: the limit applies as it is read.
	if w := post(io.MultiReader(strings.NewReader(strings.Repeat("x", 11))), -1); w.Code != 413 {
		t.Errorf("chunked large body: %d, want 413", w.Code)
	}
}

func BenchmarkRoute(b *testing.B) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, handlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}})
	req := httptest.NewRequest("GET", "http://hello.localhost:8080/", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.ServeHTTP(w, req)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// TestMetricsOnlyForRequestedVersions checks that a version adds series to
// /metrics at its first request, not before: a server holding thousands of
// idle versions does not export thousands of empty series.
func TestMetricsOnlyForRequestedVersions(t *testing.T) {
	m := metrics.New()
	r := New(Config{Addresses: fiat.Addresses{Domain: "localhost"}, Metrics: m, MaxBody: 10})
	r.AddVersion(v1, "hello", nil, says("one"))
	r.AddVersion(v2, "hello", nil, says("two"))
	get(t, r, "hello-"+v1.Short()+".localhost")
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	out := w.Body.String()
	if !strings.Contains(out, `version="`+v1.Short()+`"`) {
		t.Errorf("/metrics lacks the requested version %s", v1.Short())
	}
	if strings.Contains(out, `version="`+v2.Short()+`"`) {
		t.Errorf("/metrics has series of version %s, which nobody requested", v2.Short())
	}
}

// TestHandlerCannotForgeFiatHeaders checks that whatever a handler sets,
// a response names the version that answered, carries no hop-by-hop
// header of the handler's, and never an informational status.
func TestHandlerCannotForgeFiatHeaders(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "hello", nil, handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Fiat-Version", v2.Short())
		h["fiat-version"] = []string{"forged"}
		h.Set("Connection", "close")
		h["transfer-encoding"] = []string{"chunked"}
		h.Set("Upgrade", "websocket")
		h.Set("X-Kept", "yes")
		w.WriteHeader(http.StatusSwitchingProtocols)
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "body")
	}))
	r.AddVersion(v2, "quiet", nil, handlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Fiat-Version", "forged")
	}))
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1, "quiet": v2}}})

	w := get(t, r, "hello.localhost")
	if w.Code != http.StatusTeapot || w.Body.String() != "body" {
		t.Errorf("got %d %q, want 418 \"body\": a 1xx status must not reach the client", w.Code, w.Body)
	}
	if got := w.Header().Values("Fiat-Version"); len(got) != 1 || got[0] != v1.Short() {
		t.Errorf("Fiat-Version = %q, want only %q", got, v1.Short())
	}
	for name := range w.Header() {
		if fiat.IsReservedHeader(name) && name != "Fiat-Version" {
			t.Errorf("the handler's %s header reached the client", name)
		}
	}
	if w.Header().Get("X-Kept") != "yes" {
		t.Errorf("the handler's own header was dropped: %v", w.Header())
	}
	// A handler that writes nothing still answers as its version.
	if w := get(t, r, "quiet.localhost"); w.Code != 200 || w.Header().Get("Fiat-Version") != v2.Short() {
		t.Errorf("empty response: %d, Fiat-Version %q, want 200 and %q", w.Code, w.Header().Get("Fiat-Version"), v2.Short())
	}
}

// TestVersionAddressCannotBeTaken checks that a version's address reaches
// that version, even when an env maps a service whose name is the whole
// label (which deploys refuse, but the router must not rely on it).
func TestVersionAddressCannotBeTaken(t *testing.T) {
	r := newRouter(nil)
	r.AddVersion(v1, "pay", nil, says("real"))
	r.AddVersion(v2, "pay-"+v1.Short(), nil, says("impostor"))
	r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"pay": v1, "pay-" + v1.Short(): v2}}})
	if w := get(t, r, "pay-"+v1.Short()+".localhost"); w.Body.String() != "real" {
		t.Errorf("version address answered %q, want the version itself", w.Body)
	}
}

func TestNotFoundGivesWorkingAddresses(t *testing.T) {
	r := newRouter(nil)
	w := get(t, r, "nope.localhost:8080")
	for _, want := range []string{"http://hello.localhost:8080", "http://hello--staging.localhost:8080"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("404 page %q does not give %s", w.Body, want)
		}
	}
}

// TestVersionThatCannotStartSaysNothingOfWhy gives the public a 503 that
// names the version, and the log the reason, which may name fiat's store.
func TestVersionThatCannotStartSaysNothingOfWhy(t *testing.T) {
	var log bytes.Buffer
	r := New(Config{
		Addresses: fiat.Addresses{Domain: "localhost"},
		Load: func(context.Context, fiat.Hash) (fiat.Running, error) {
			return nil, errors.New("the store is unreachable: failed to connect to user=fiat database=secret")
		},
		Metrics: metrics.New(),
		Logger:  slog.New(slog.NewTextHandler(&log, nil)),
	})
	r.AddVersion(v1, "hello", nil, nil)
	if err := r.SetEnvs([]fiat.Env{{Name: "production", Services: map[string]fiat.Hash{"hello": v1}}}); err != nil {
		t.Fatal(err)
	}
	w := get(t, r, "hello.localhost")
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "secret") || !strings.Contains(w.Body.String(), v1.Short()) {
		t.Errorf("a version that cannot start answers %d %q, want 503 naming the version and not why", w.Code, w.Body)
	}
	if !strings.Contains(log.String(), "database=secret") {
		t.Errorf("the log says %q, want why the version could not start", log.String())
	}
}
