package script

import (
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// TestConfig reads the service's config with config(key, default), also
// from a program the cache gave back.
func TestConfig(t *testing.T) {
	files := map[string]string{"main.star": `
def handle(req):
    return "%s %s %s" % (config("GREETING"), config("MISSING"), config("MISSING", "fallback"))

http.route("GET", "/", handle)
`}
	cfg := fiat.Config{Kind: fiat.Script, MaxSteps: 1_000_000, Timeout: 5 * time.Second, Env: map[string]string{"GREETING": "bonjour"}}
	a, _ := start(t, files, cfg)
	if got := do(a, "GET", "/", "").body; got != "bonjour None fallback" {
		t.Errorf("config read %q, want the value, None, and the default", got)
	}

	b := fromCache(t, a)
	if got := do(b, "GET", "/", "").body; got != "bonjour None fallback" {
		t.Errorf("config read from a cached program %q, want it as compiled", got)
	}
}
