package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileScript is a service whose routes each try to hurt the server:
// take its memory, keep a core busy inside one built-in call, or overflow
// the stack with a body.
const hostileScript = `
def spin(req):
    t = tuple(range(100))
    u = tuple(list(range(100)))
    for i in range(6):
        t = (t,) * 100
        u = (u,) * 100
    return str(t == u)

http.route("GET", "/spin", spin)
http.route("GET", "/big", lambda req: "x" * 1000000000)
http.route("GET", "/join", lambda req: ",".join(["x" * 1000000000] * 100))
http.route("POST", "/echo", lambda req: req.json())
http.route("GET", "/ok", lambda req: "ok")
`

// Through the router, hostile requests get the error they earned, and
// the server keeps answering everyone else meanwhile.
func TestHostileScripts(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	for name, data := range map[string]string{
		"fiat.toml": "[services.hostile]\ntimeout = \"1s\"\nmax_steps = 1000000000\n",
		"main.star": hostileScript,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	url := n.deployJSON(dir).Services[0].URL
	attacks := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/spin", "", 504, "hostile: request exceeded its time limit of 1s (timeout in fiat.toml)\n"},
		{"GET", "/big", "", 507, "hostile: request exceeded its memory budget of 64MiB (memory in fiat.toml)\n"},
		{"GET", "/join", "", 507, "hostile: request exceeded its memory budget of 64MiB (memory in fiat.toml)\n"},
		{"POST", "/echo", strings.Repeat("[", 1001), 400, "main.star:13: request.json: body is not JSON: at offset 1000, value nested more than 1000 levels deep\n"},
	}
	var wg sync.WaitGroup
	for _, attack := range attacks {
		for range 4 {
			wg.Go(func() {
				req, _ := http.NewRequest(attack.method, url+attack.path, strings.NewReader(attack.body))
				began := time.Now()
				code, body := n.do(req)
				if code != attack.status || body != attack.want {
					t.Errorf("%s %s: got %d %.200q, want %d %q", attack.method, attack.path, code, body, attack.status, attack.want)
				}
				if took := time.Since(began); took > 5*time.Second {
					t.Errorf("%s %s: answered after %s", attack.method, attack.path, took)
				}
			})
		}
	}
	for range 50 {
		if code, body, _ := n.get(url + "/ok"); code != 200 || body != "ok" {
			t.Errorf("beside the attacks: got %d %q", code, body)
		}
	}
	wg.Wait()
	if code, body, _ := n.get(url + "/ok"); code != 200 || body != "ok" {
		t.Errorf("after the attacks: got %d %q", code, body)
	}
}

// do sends req to the router and reads the answer.
func (n *node) do(req *http.Request) (int, string) {
	resp, err := n.public.Do(req)
	if err != nil {
		n.t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Error(err)
	}
	return resp.StatusCode, string(body)
}
