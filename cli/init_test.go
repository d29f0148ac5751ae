package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// fiat init says which name it gave the service, and why when it is not
// the dir's own.
func TestInitSaysWhatItNamedTheService(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Project!")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"init", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "named the service my-project after its directory: ") || !strings.Contains(out, "wrote a project with the service my-project to "+dir+": deploy it with `fiat deploy '"+dir+"'`") {
		t.Errorf("got\n%s", out)
	}

	dir = filepath.Join(t.TempDir(), "123")
	stdout.Reset()
	if code := Main([]string{"init", "--json", dir}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var failed struct{ Error string }
	if err := json.Unmarshal(stdout.Bytes(), &failed); err != nil || !strings.HasSuffix(failed.Error, "name it with --name NAME") {
		t.Errorf("got %s (%v), want an error asking for --name", stdout.String(), err)
	}
	stdout.Reset()
	if code := Main([]string{"init", "--json", "--name", "shop", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stdout.String())
	}
	var created struct{ Dir, Service, Note string }
	if err := json.Unmarshal(stdout.Bytes(), &created); err != nil || created.Service != "shop" || created.Dir != dir || created.Note != "" {
		t.Errorf("got %s (%v), want the service shop in %s", stdout.String(), err, dir)
	}
}
