package script

import (
	"context"
	"github.com/fiatdev/fiat"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
)

// benchFiles is a small service of about 50 lines, with its tests.
var benchFiles = map[string]string{
	"main.star": `
load("lib/validate.star", "require")

STATUSES = ["open", "doing", "done"]
TODOS = {
    "1": {"id": "1", "title": "write docs", "status": "open"},
    "2": {"id": "2", "title": "ship it", "status": "doing"},
}

def list_todos(req):
    status = req.query.get("status")
    todos = [t for t in TODOS.values() if status == None or t["status"] == status]
    return {"todos": todos, "count": len(todos)}

def get_todo(req):
    todo = TODOS.get(req.params["id"])
    if todo == None:
        return response(404, {"error": "no todo " + req.params["id"]})
    return todo

def create_todo(req):
    data = req.json()
    problem = require(data, ["title"])
    if problem:
        return response(400, {"error": problem})
    status = data.get("status", "open")
    if status not in STATUSES:
        return response(400, {"error": "status must be one of " + ", ".join(STATUSES)})
    log("created", data["title"])
    return response(201, {"id": str(len(TODOS) + 1), "title": data["title"], "status": status})

def health(req):
    return "ok"

http.route("GET", "/todos", list_todos)
http.route("GET", "/todos/{id}", get_todo)
http.route("POST", "/todos", create_todo)
http.route("GET", "/health", health)
http.route("GET", "/hello", lambda req: "hello")
`,
	"lib/validate.star": `
def require(data, fields):
    missing = [f for f in fields if not data.get(f)]
    if missing:
        return "missing " + ", ".join(missing)
    return None
`,
	"main_test.star": `
def test_list():
    assert.eq(app.get("/todos").json()["count"], 2)
    assert.eq(app.get("/todos?status=done").json()["count"], 0)

def test_get():
    assert.eq(app.get("/todos/1").json()["title"], "write docs")
    assert.eq(app.get("/todos/9").status, 404)

def test_create():
    assert.eq(app.post("/todos", body={"title": "x"}).status, 201)
    assert.eq(app.post("/todos", body={}).json(), {"error": "missing title"})
`,
}

var discardLog = Options{Logger: slog.New(slog.DiscardHandler)}

func BenchmarkCompile(b *testing.B) {
	v := version(benchFiles)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStart(b *testing.B) {
	p, err := Compile(version(benchFiles))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Start(discardLog); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTest(b *testing.B) {
	a, _ := start(b, benchFiles)
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Test(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeploy is what a deploy of the service costs the script runtime.
func BenchmarkDeploy(b *testing.B) {
	v := version(benchFiles)
	b.ReportAllocs()
	for b.Loop() {
		p, err := Compile(v)
		if err != nil {
			b.Fatal(err)
		}
		a, err := p.Start(discardLog)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Test(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that costs nothing, so that the
// benchmarks measure the App alone.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header               { return w.header }
func (w *discardWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w *discardWriter) WriteString(s string) (int, error) { return len(s), nil }
func (w *discardWriter) WriteHeader(status int)            { w.status = status }

func (w *discardWriter) reset() {
	clear(w.header)
	w.status = 0
}

func BenchmarkServeHTTP(b *testing.B) {
	a, _ := start(b, benchFiles)
	for _, path := range []string{"/hello", "/todos/1"} {
		b.Run(path[1:], func(b *testing.B) {
			r := httptest.NewRequest("GET", path, nil)
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				a.ServeHTTP(w, r)
			}
			if w.status != 0 {
				b.Fatalf("status %d", w.status)
			}
		})
	}
}

func BenchmarkServeHTTPParallel(b *testing.B) {
	a, _ := start(b, benchFiles)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/hello", nil)
		w := &discardWriter{header: http.Header{}}
		for pb.Next() {
			w.reset()
			a.ServeHTTP(w, r)
		}
	})
}

// BenchmarkIdleVersionMemory measures the heap that a started version holds
// while it serves nothing, loaded from the cache as after a restart.
func BenchmarkIdleVersionMemory(b *testing.B) {
	v := version(benchFiles)
	p, err := Compile(v)
	if err != nil {
		b.Fatal(err)
	}
	c, err := OpenCache(filepath.Join(b.TempDir(), "programs.pack"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(p); err != nil {
		b.Fatal(err)
	}
	const versions = 500
	var perVersion float64
	for b.Loop() {
		apps := make([]*App, versions)
		before := heapAfterGC()
		for i := range apps {
			p, err := c.Get(v.ID)
			if err != nil {
				b.Fatal(err)
			}
			if apps[i], err = p.Start(discardLog); err != nil {
				b.Fatal(err)
			}
		}
		perVersion = float64(heapAfterGC()-before) / versions
		runtime.KeepAlive(apps)
	}
	b.ReportMetric(perVersion, "B/version")
}

func heapAfterGC() uint64 {
	// Twice: sync.Pool keeps a victim cache through one collection.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkServeHTTPFlag is a route returning a string, and one reading a
// flag first: what flag() costs a request.
func BenchmarkServeHTTPFlag(b *testing.B) {
	a, _ := start(b, map[string]string{"main.star": `
def hello(req):
    return "hello"

def flagged(req):
    if flag("bench"):
        return "hello"
    return "hello"

http.route("GET", "/hello", hello)
http.route("GET", "/flagged", flagged)
`})
	for _, path := range []string{"/hello", "/flagged"} {
		b.Run(path[1:], func(b *testing.B) {
			r := httptest.NewRequestWithContext(fiat.WithFlags(context.Background(), onFlags{"bench": true}), "GET", path, nil)
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				a.ServeHTTP(w, r)
			}
		})
	}
}
