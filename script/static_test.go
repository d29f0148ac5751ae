package script

import (
	"strings"
	"testing"
)

var staticFiles = map[string]string{
	"main.star": `
http.static("/assets", "public")
http.route("GET", "/", lambda req: "home")
`,
	"public/app.css":     "body { color: red }",
	"public/index.html":  "<h1>index</h1>",
	"public/sub/x.js":    "let x = 1",
	"private/secret.txt": "hunter2",
}

// TestStatic serves a version's files under a dir, with caching headers,
// and nothing outside the dir.
func TestStatic(t *testing.T) {
	a, _ := start(t, staticFiles)
	check := func(a *App) {
		t.Helper()
		for target, want := range map[string]string{
			"/assets/app.css":  "body { color: red }",
			"/assets/":         "<h1>index</h1>",
			"/assets/sub/x.js": "let x = 1",
			"/":                "home",
		} {
			if got := do(a, "GET", target, ""); got.status != 200 || got.body != want {
				t.Errorf("GET %s: %d %q, want %q", target, got.status, got.body, want)
			}
		}
		css := do(a, "GET", "/assets/app.css", "")
		if ct := css.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || css.header.Get("ETag") == "" {
			t.Errorf("app.css: Content-Type %q, ETag %q", ct, css.header.Get("ETag"))
		}
		if got := do(a, "GET", "/assets/app.css", "", "If-None-Match", css.header.Get("ETag")); got.status != 304 {
			t.Errorf("GET with the ETag: %d, want 304", got.status)
		}
		for _, target := range []string{"/assets/missing.css", "/assets/../private/secret.txt", "/assets/%2e%2e/private/secret.txt", "/private/secret.txt", "/assets/main.star"} {
			if got := do(a, "GET", target, ""); strings.Contains(got.body, "hunter2") || got.status == 200 {
				t.Errorf("GET %s: %d %q, want no file", target, got.status, got.body)
			}
		}
	}
	check(a)

	// A program from the cache serves the same files.
	b := fromCache(t, a)
	check(b)
}

func TestStaticRefusesBadDirs(t *testing.T) {
	for call, want := range map[string]string{
		`http.static("assets", "public")`:   `prefix "assets"`,
		`http.static("/assets/", "public")`: `prefix "/assets/"`,
		`http.static("/assets", "../up")`:   `dir "../up"`,
		`http.static("/assets", "/etc")`:    `dir "/etc"`,
		`http.static("/assets", "nothing")`: `dir "nothing" has no files`,
	} {
		files := map[string]string{"main.star": call + "\n", "public/a.txt": "a"}
		if got := problems(t, files); !strings.Contains(got, "main.star:1:") || !strings.Contains(got, want) {
			t.Errorf("%s: %s, want a problem at main.star:1 saying %s", call, got, want)
		}
	}
	files := map[string]string{"main.star": `
def handle(req):
    http.static("/x", "public")
    return "no"

http.route("GET", "/", handle)
`, "public/a.txt": "a"}
	a, _ := start(t, files)
	if got := do(a, "GET", "/", ""); got.status != 500 || !strings.Contains(got.body, "top level") {
		t.Errorf("http.static in a handler: %d %q", got.status, got.body)
	}
}
