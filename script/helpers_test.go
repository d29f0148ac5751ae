package script

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// version makes a script version of files, with generous limits unless
// config says otherwise.
func version(files map[string]string, config ...fiat.Config) *fiat.Version {
	v := &fiat.Version{Service: "hello", Config: fiat.Config{Kind: fiat.Script, MaxSteps: 1_000_000, Timeout: 5 * time.Second}}
	if len(config) > 0 {
		v.Config = config[0]
	}
	for path, data := range files {
		v.Files = append(v.Files, fiat.File{Path: path, Data: []byte(data)})
	}
	slices.SortFunc(v.Files, func(a, b fiat.File) int { return strings.Compare(a.Path, b.Path) })
	v.ID = fiat.HashVersion(v)
	return v
}

// logBuffer collects the service's log, safely for concurrent requests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// start compiles and starts files, failing the test on any problem.
func start(t testing.TB, files map[string]string, config ...fiat.Config) (*App, *logBuffer) {
	t.Helper()
	p, err := Compile(version(files, config...))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	log := &logBuffer{}
	a, err := p.Start(Options{Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return a, log
}

// problems compiles and starts files, and returns what failed as text.
func problems(t *testing.T, files map[string]string, config ...fiat.Config) string {
	t.Helper()
	p, err := Compile(version(files, config...))
	if err == nil {
		_, err = p.Start(Options{Logger: slog.New(slog.DiscardHandler)})
	}
	if err == nil {
		t.Fatal("no problems, want some")
	}
	if _, ok := err.(fiat.Problems); !ok {
		t.Fatalf("error is a %T, want fiat.Problems: %v", err, err)
	}
	return err.Error()
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(a http.Handler, method, target, body string, header ...string) result {
	r := httptest.NewRequestWithContext(context.Background(), method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	data, _ := io.ReadAll(w.Result().Body)
	return result{w.Code, w.Result().Header, string(data)}
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func itoa(n int) string { return strconv.Itoa(n) }

// fromCache starts a's program as a restart does: written to the cache and
// read back.
func fromCache(t *testing.T, a *App) *App {
	t.Helper()
	cache, err := OpenCache(filepath.Join(t.TempDir(), "programs.pack"))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if err := cache.Put(a.Program()); err != nil {
		t.Fatal(err)
	}
	cached, err := cache.Get(a.Program().ID())
	if err != nil {
		t.Fatal(err)
	}
	b, err := cached.Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
