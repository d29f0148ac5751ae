package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestDisconnectedDeployStops checks that a deploy whose client goes away
// is cancelled, its endless test included, and that a rollback meanwhile
// takes effect at once rather than wait for it.
func TestDisconnectedDeployStops(t *testing.T) {
	n := start(t, t.TempDir())
	dir := writeProject(t, t.TempDir(), "app", "one")
	n.deployJSON(dir)
	writeProject(t, dir, "app", "two")
	n.deployJSON(dir)

	writeProject(t, dir, "app", "three")
	os.WriteFile(filepath.Join(dir, "fiat.toml"), []byte("[services.app]\ntimeout = \"5m\"\nmax_steps = 10_000_000_000\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main_test.star"), []byte("def test_forever():\n    while True:\n        pass\n"), 0o644)
	ctx, cancel := context.WithCancel(t.Context())
	deployed := make(chan error, 1)
	go func() {
		_, err := n.admin.Deploy(ctx, "production", mustLoad(t, dir))
		deployed <- err
	}()
	// The rollback does not wait for the deploy's test.
	time.Sleep(100 * time.Millisecond)
	if _, err := n.admin.Rollback(t.Context(), "production", "app", ""); err != nil {
		t.Fatalf("rollback during a deploy: %v", err)
	}
	if code, body, _ := n.get(n.srv.Addresses.Service("app", "production")); code != 200 || body != "one" {
		t.Errorf("after the rollback production answers %d %q, want one", code, body)
	}
	cancel()
	if err := <-deployed; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client's deploy returned %v, want its cancellation", err)
	}
	// The server notices the client went away and stops the deploy.
	refused := regexp.MustCompile(`fiat_changes_total\{kind="deploy",outcome="refused"\} (\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + n.srv.Admin.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(data)
		if m := refused.FindStringSubmatch(body); m != nil {
			if count, _ := strconv.Atoi(m[1]); count == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the server went on running the deploy of a client that went away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, _ := n.get(n.srv.Addresses.Service("app", "production")); code != 200 || body != "one" {
		t.Errorf("after the cancelled deploy production answers %d %q, want one", code, body)
	}
}
