package script

import (
	"net/http"
	"testing"
)

const routesScript = `
def show(name):
    return lambda req: name + " " + json.encode(req.params)

http.route("GET", "/", show("root"))
http.route("GET", "/users/{id}", show("user"))
http.route("GET", "/users/me", show("me"))
http.route("POST", "/users", show("create"))
http.route("DELETE", "/users/{id}", show("delete"))
http.route("*", "/any", show("any"))
http.route("GET", "/files/{rest...}", show("files"))
http.route("GET", "/docs/", show("docs"))
http.route("GET", "/a/{x}/b/{y}", show("ab"))
`

func TestRouting(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": routesScript})
	for _, tc := range []struct {
		method, path string
		status       int
		body, allow  string
	}{
		{"GET", "/", 200, "root {}", ""},
		{"GET", "/nope", 404, "404 page not found\n", ""},
		{"GET", "/users/42", 200, `user {"id":"42"}`, ""},
		{"GET", "/users/me", 200, "me {}", ""},
		{"GET", "/users/a%20b", 200, `user {"id":"a b"}`, ""},
		{"GET", "/users/42/more", 404, "404 page not found\n", ""},
		{"POST", "/users", 200, "create {}", ""},
		{"GET", "/users", 405, "Method Not Allowed\n", "POST"},
		{"PUT", "/users/42", 405, "Method Not Allowed\n", "DELETE, GET, HEAD"},
		{"DELETE", "/users/42", 200, `delete {"id":"42"}`, ""},
		{"HEAD", "/users/42", 200, `user {"id":"42"}`, ""},
		{"PATCH", "/any", 200, "any {}", ""},
		{"GET", "/any", 200, "any {}", ""},
		{"GET", "/files/a/b/c.txt", 200, `files {"rest":"a/b/c.txt"}`, ""},
		{"GET", "/files/", 200, `files {"rest":""}`, ""},
		{"GET", "/files", 307, "<a href=\"/files/\">Temporary Redirect</a>.\n\n", ""},
		{"GET", "/docs/", 200, "docs {}", ""},
		{"GET", "/docs/page", 404, "404 page not found\n", ""},
		{"GET", "/a/1/b/2", 200, `ab {"x":"1","y":"2"}`, ""},
	} {
		got := do(a, tc.method, tc.path, "")
		if got.status != tc.status || got.body != tc.body || got.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: got %d %q (Allow %q), want %d %q (Allow %q)", tc.method, tc.path, got.status, got.body, got.header.Get("Allow"), tc.status, tc.body, tc.allow)
		}
	}
}

// HEAD responses have no body on the wire.
func TestHeadOverHTTP(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": routesScript})
	srv := newServer(t, a)
	res, err := http.Head(srv.URL + "/users/1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("HEAD: got %d %q, want 200 text/plain", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestRouteProblems(t *testing.T) {
	for _, tc := range []struct {
		name, main, want string
	}{
		{"lowercase method", `http.route("get", "/", str)`,
			`main.star:1:11: http.route: method "get" is not an uppercase HTTP method like "GET", or "*" for any`},
		{"relative path", `http.route("GET", "users", str)`,
			`main.star:1:11: http.route: path "users" must start with "/"`},
		{"invalid path", `http.route("GET", "/a/{b", str)`,
			`main.star:1:11: http.route: invalid path "/a/{b": bad wildcard segment (must end with '}')`},
		{"conflict", "http.route(\"GET\", \"/a/{x}\", str)\nhttp.route(\"GET\", \"/a/{y}\", str)",
			`main.star:2:11: http.route: route GET /a/{y} conflicts with route GET /a/{x} declared at main.star:1:11: GET /a/{y} matches the same requests as GET /a/{x}`},
		{"overlap", "http.route(\"GET\", \"/a/{x}\", str)\nhttp.route(\"GET\", \"/{y}/b\", str)",
			`main.star:2:11: http.route: route GET /{y}/b conflicts with route GET /a/{x} declared at main.star:1:11: GET /{y}/b and GET /a/{x} both match some paths, like "/a/b". But neither is more specific than the other. GET /{y}/b matches "/y/b", but GET /a/{x} doesn't. GET /a/{x} matches "/a/x", but GET /{y}/b doesn't.`},
		{"every bad route", "http.route(\"get\", \"/\", str)\nhttp.route(\"GET\", \"x\", str)",
			"main.star:1:11: http.route: method \"get\" is not an uppercase HTTP method like \"GET\", or \"*\" for any\n" +
				`main.star:2:11: http.route: path "x" must start with "/"`},
		{"handler not callable", `http.route("GET", "/", 42)`,
			`main.star:1:11: http.route: for parameter handler: got int, want callable`},
		{"no routes", `x = 1`,
			`main.star: declares no routes: add http.route(method, path, handler)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := problems(t, map[string]string{"main.star": tc.main}); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestRouteOutsideTopLevel(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
def add(req):
    http.route("GET", "/more", str)
http.route("GET", "/", add)
`})
	got := do(a, "GET", "/", "")
	want := "main.star:3: http.route: routes are declared at the top level of a module, while the version starts; not in a handler or a test\n"
	if got.status != 500 || got.body != want {
		t.Errorf("got %d %q, want 500 %q", got.status, got.body, want)
	}
}
