package script

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestAttributes(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
def echo(req):
    return {
        "method": req.method,
        "path": req.path,
        "params": req.params,
        "query": req.query,
        "headers": req.headers,
        "body": req.body,
    }
http.route("*", "/echo/{id}", echo)
http.route("POST", "/json", lambda req: {"got": req.json()})
http.route("GET", "/attrs", lambda req: dir(req))
`})
	for _, tc := range []struct {
		name, method, target, body string
		header                     []string
		status                     int
		want                       string
	}{
		{"all", "POST", "/echo/7?b=2&a=1&a=3", "hi", []string{"X-Token", "abc", "X-Multi", "1", "x-multi", "2"}, 200,
			`{"body":"hi","headers":{"x-multi":"1, 2","x-token":"abc"},"method":"POST","params":{"id":"7"},"path":"/echo/7","query":{"a":"1","b":"2"}}`},
		{"empty", "GET", "/echo/x", "", nil, 200,
			`{"body":"","headers":{},"method":"GET","params":{"id":"x"},"path":"/echo/x","query":{}}`},
		{"json", "POST", "/json", `{"a": [1, 2.5, "x", null, true]}`, nil, 200,
			`{"got":{"a":[1,2.5,"x",null,true]}}`},
		{"not json", "POST", "/json", `{"a": `, nil, 400,
			"main.star:12: request.json: body is not JSON: at offset 6, unexpected end of file\n"},
		{"empty json", "POST", "/json", ``, nil, 400,
			"main.star:12: request.json: body is not JSON: at offset 0, unexpected end of file\n"},
		{"dir", "GET", "/attrs", "", nil, 200,
			`["body","headers","json","method","params","path","query"]`},
	} {
		got := do(a, tc.method, tc.target, tc.body, tc.header...)
		if got.status != tc.status || got.body != tc.want {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, got.status, got.body, tc.status, tc.want)
		}
	}
}

// failingBody fails the test that reads it.
type failingBody struct{ t *testing.T }

func (b failingBody) Read([]byte) (int, error) {
	b.t.Error("the body was read")
	return 0, errors.New("read")
}

func TestRequestAttributesAreLazy(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `http.route("POST", "/{id}", lambda req: req.params["id"])`})
	r := httptest.NewRequest("POST", "/7", io.NopCloser(failingBody{t}))
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != "7" {
		t.Errorf("got %d %q, want 200 %q", w.Code, w.Body, "7")
	}
}

func TestBodyTooLarge(t *testing.T) {
	a, log := start(t, map[string]string{"main.star": `
http.route("POST", "/body", lambda req: req.body)
http.route("POST", "/json", lambda req: req.json())
`})
	for _, path := range []string{"/body", "/json"} {
		r := httptest.NewRequest("POST", path, strings.NewReader(`"0123456789"`))
		r.Body = http.MaxBytesReader(nil, r.Body, 4)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		want := "hello: request body is larger than the limit of 4 bytes\n"
		if w.Code != 413 || w.Body.String() != want {
			t.Errorf("%s: got %d %q, want 413 %q", path, w.Code, w.Body, want)
		}
	}
	if !strings.Contains(log.String(), "request body is larger") {
		t.Errorf("log has no line about the body:\n%s", log)
	}
}

func TestReturnForms(t *testing.T) {
	a, _ := start(t, map[string]string{"main.star": `
ROUTES = {
    "/string": lambda req: "hi",
    "/dict": lambda req: {"a": 1, "b": [True, None]},
    "/list": lambda req: [1, "two"],
    "/none": lambda req: None,
    "/created": lambda req: response(201, "made"),
    "/created-json": lambda req: response(201, {"id": 1}),
    "/redirect": lambda req: response(302, headers={"Location": "/string"}),
    "/html": lambda req: response(200, "<p>", headers={"content-type": "text/html"}),
    "/empty": lambda req: response(202),
    "/shared": lambda req: SHARED,
}
SHARED = response(200, "shared", headers={"X-Shared": "yes"})

def bad_int(req):
    return 42

def bad_json(req):
    return {"f": bad_int}

def bad_status(req):
    return response(99)

def bad_body(req):
    return response(200, body=42)

def bad_header(req):
    return response(200, headers={"X-A": 1})

for path, handler in ROUTES.items():
    http.route("GET", path, handler)
http.route("GET", "/bad-int", bad_int)
http.route("GET", "/bad-json", bad_json)
http.route("GET", "/bad-status", bad_status)
http.route("GET", "/bad-body", bad_body)
http.route("GET", "/bad-header", bad_header)
`})
	const text, js = "text/plain; charset=utf-8", "application/json"
	for _, tc := range []struct {
		path, contentType string
		status            int
		body              string
		header            string // name: value
	}{
		{"/string", text, 200, "hi", ""},
		{"/dict", js, 200, `{"a":1,"b":[true,null]}`, ""},
		{"/list", js, 200, `[1,"two"]`, ""},
		{"/none", "", 204, "", ""},
		{"/created", text, 201, "made", ""},
		{"/created-json", js, 201, `{"id":1}`, ""},
		{"/redirect", "", 302, "", "Location: /string"},
		{"/html", "text/html", 200, "<p>", ""},
		{"/empty", "", 202, "", ""},
		{"/shared", text, 200, "shared", "X-Shared: yes"},
		{"/bad-int", text, 500, "main.star:16: handler bad_int returned a value of type int: return a string, a dict or list (sent as JSON), None (204) or response(status, body, headers)\n", ""},
		{"/bad-json", text, 500, "main.star:19: handler bad_json returned a dict that is not JSON: json.encode: in dict key \"f\": cannot encode function as JSON\n", ""},
		{"/bad-status", text, 500, "main.star:23: response: status 99 is not a status a handler answers with: give one from 200 to 599\n", ""},
		{"/bad-body", text, 500, "main.star:26: response: body: got int, want a string, or a dict or list to send as JSON\n", ""},
		{"/bad-header", text, 500, "main.star:29: response: header X-A: got int, want a string\n", ""},
	} {
		got := do(a, "GET", tc.path, "")
		if got.status != tc.status || got.body != tc.body || got.header.Get("Content-Type") != tc.contentType {
			t.Errorf("%s: got %d %q %q, want %d %q %q", tc.path, got.status, got.header.Get("Content-Type"), got.body, tc.status, tc.contentType, tc.body)
		}
		if name, value, ok := strings.Cut(tc.header, ": "); ok && got.header.Get(name) != value {
			t.Errorf("%s: header %s is %q, want %q", tc.path, name, got.header.Get(name), value)
		}
	}
}

func TestHostFunctions(t *testing.T) {
	a, log := start(t, map[string]string{"main.star": `
def hello(req):
    log("hello", 42, {"a": 1})
    print("printed")
    t = time.now()
    return {
        "year_ok": t.year >= 2025,
        "since": str(time.parse_duration("1s") * 2),
        "json": json.decode(json.encode({"x": [1]})),
        "indent": json.indent('{"a":1}', indent=""),
    }
http.route("GET", "/", hello)
`})
	got := do(a, "GET", "/", "")
	want := `{"indent":"{\n\"a\": 1\n}","json":{"x":[1]},"since":"2s","year_ok":true}`
	if got.status != 200 || got.body != want {
		t.Errorf("got %d %s, want 200 %s", got.status, got.body, want)
	}
	for _, line := range []string{
		`level=INFO msg="hello 42 {\"a\": 1}" service=hello version=` + string(a.prog.id.Short()),
		`level=INFO msg=printed service=hello version=` + string(a.prog.id.Short()),
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log has no line %s:\n%s", line, log)
		}
	}
}
