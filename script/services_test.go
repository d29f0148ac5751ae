package script

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// startUsing starts files as a version that uses the given handlers.
func startUsing(t *testing.T, files map[string]string, config fiat.Config, uses map[string]http.Handler) *App {
	t.Helper()
	p, err := Compile(version(files, config))
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Start(Options{Logger: slog.New(slog.DiscardHandler), Uses: uses})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var generous = fiat.Config{Kind: fiat.Script, MaxSteps: 1_000_000, Timeout: 5 * time.Second, Memory: 8 << 20}

func TestServicesCallWhatIsUsed(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Fiat-Version", "api1")
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.Header.Get("X-Who")))
	})
	a := startUsing(t, map[string]string{"main.star": `
def index(req):
    r = services.api.post("/orders", body={"n": 1}, headers={"X-Who": "web"})
    return r.body + " from " + r.headers["fiat-version"]
http.route("GET", "/", index)
http.route("GET", "/other", lambda req: services.db.get("/"))
`}, generous, map[string]http.Handler{"api": api})
	if got := do(a, "GET", "/", ""); got.status != 200 || got.body != "POST /orders web from api1" {
		t.Errorf("a call to api: %d %q", got.status, got.body)
	}
	if got := do(a, "GET", "/other", ""); got.status != 500 || !strings.Contains(got.body, `services.db: this service uses only api: add "db" to uses in fiat.toml`) {
		t.Errorf("a call to a service not used: %d %q", got.status, got.body)
	}
}

// A used service cannot flood its caller: a response larger than what is
// left of the caller's memory budget fails the request, whole, with 507.
func TestServicesResponseIsBounded(t *testing.T) {
	huge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 64 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	a := startUsing(t, map[string]string{"main.star": `http.route("GET", "/", lambda req: services.api.get("/").body)`}, generous, map[string]http.Handler{"api": huge})
	if got := do(a, "GET", "/", ""); got.status != http.StatusInsufficientStorage {
		t.Errorf("a 64MiB answer to a caller with 8MiB: %d %.200q", got.status, got.body)
	}
}

// A used service that hangs does not hold its caller past the caller's
// time limit: the call's context ends with it.
func TestServicesCallEndsAtTheTimeLimit(t *testing.T) {
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	config := generous
	config.Timeout = 50 * time.Millisecond
	a := startUsing(t, map[string]string{"main.star": `http.route("GET", "/", lambda req: services.api.get("/").body)`}, config, map[string]http.Handler{"api": hang})
	began := time.Now()
	got := do(a, "GET", "/", "")
	if got.status != http.StatusGatewayTimeout {
		t.Errorf("a call to a service that hangs: %d %q, want 504", got.status, got.body)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("the request took %s", took)
	}
}

func TestServicesAreNotCalledAtTopLevel(t *testing.T) {
	p, err := Compile(version(map[string]string{"main.star": "x = services.api.get(\"/\")\nhttp.route(\"GET\", \"/\", lambda req: x)\n"}, generous))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Start(Options{Logger: slog.New(slog.DiscardHandler), Uses: map[string]http.Handler{"api": http.NotFoundHandler()}})
	if err == nil || !strings.Contains(err.Error(), "services are called by handlers and tests, not at the top level") {
		t.Errorf("a call at top level: %v", err)
	}
}

// BenchmarkServicesCall is a request whose handler calls a script service
// it uses, in process, next to the same handler answering by itself.
func BenchmarkServicesCall(b *testing.B) {
	api := startUsingB(b, map[string]string{"main.star": `http.route("GET", "/", lambda req: "api")`}, nil)
	for name, main := range map[string]string{
		"alone":   `http.route("GET", "/", lambda req: "api")`,
		"calling": `http.route("GET", "/", lambda req: services.api.get("/").body)`,
	} {
		b.Run(name, func(b *testing.B) {
			a := startUsingB(b, map[string]string{"main.star": main}, map[string]http.Handler{"api": api})
			req := httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				a.ServeHTTP(w, req)
			}
		})
	}
}

func startUsingB(b *testing.B, files map[string]string, uses map[string]http.Handler) *App {
	p, err := Compile(version(files, generous))
	if err != nil {
		b.Fatal(err)
	}
	a, err := p.Start(Options{Logger: slog.New(slog.DiscardHandler), Uses: uses})
	if err != nil {
		b.Fatal(err)
	}
	return a
}
