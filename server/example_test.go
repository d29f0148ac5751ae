package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

// TestGreeterExample deploys examples/greeter, a Go web service that fiat
// builds, then configures it, changes its code and rolls it back, as the
// README has a new user do.
func TestGreeterExample(t *testing.T) {
	root := publicDir(t)
	// As from a clone of fiat, the data dir inside a git checkout (which
	// go finds by its .git).
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "greeter")
	if err := os.CopyFS(dir, os.DirFS("../examples/greeter")); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(root, "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	n.deployJSON(dir)
	hello := n.srv.Addresses.Service("greeter", fiat.Production) + "/hello/ada"
	if code, body, _ := n.get(hello); code != 200 || body != "Hello, ada!\n" {
		t.Fatalf("the example answers %d %q", code, body)
	}
	if code, out, errOut := n.fiat("config", "set", "greeter", "GREETING=Bonjour"); code != 0 {
		t.Fatalf("config set: %s%s", out, errOut)
	}
	if _, body, _ := n.get(hello); body != "Bonjour, ada!\n" {
		t.Errorf("after config set: %q", body)
	}
	main := filepath.Join(dir, "main.go")
	code, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(code), `"%s, %s!\n"`, `"%s, dear %s!\n"`, 1)
	if changed == string(code) {
		t.Fatal("the example's greeting format moved: update this test")
	}
	if err := os.WriteFile(main, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	n.deployJSON(dir)
	if _, body, _ := n.get(hello); body != "Bonjour, dear ada!\n" {
		t.Errorf("after changing the code: %q, want the new code with the config kept", body)
	}
	if code, out, errOut := n.fiat("rollback", "greeter"); code != 0 {
		t.Fatalf("rollback: %s%s", out, errOut)
	}
	if _, body, _ := n.get(hello); body != "Bonjour, ada!\n" {
		t.Errorf("after rollback: %q", body)
	}
}
