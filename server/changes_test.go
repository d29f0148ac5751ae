package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/project"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestRefusedDeploysChangeNothing(t *testing.T) {
	n := start(t, t.TempDir())
	dir := writeProject(t, t.TempDir(), "app", "good")
	good := n.deployJSON(dir).Services[0]
	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"syntax error": {
			files: map[string]string{"main.star": "def handle(req):\n    return (\n"},
			want:  []string{"main.star:3:1:"},
		},
		"undefined name": {
			files: map[string]string{"main.star": "def handle(req):\n    return nope\n\nhttp.route(\"GET\", \"/\", handle)\n"},
			want:  []string{"main.star:2:12: undefined: nope"},
		},
		"failing test": {
			files: map[string]string{"main_test.star": "def test_root():\n    assert.eq(app.get(\"/\").body, \"something else\")\n"},
			want:  []string{"main_test.star:2:", "test_root"},
		},
		"unknown fiat.toml key": {
			files: map[string]string{"fiat.toml": "[services.app]\ntimout = \"2s\"\n"},
			want:  []string{"fiat.toml:2:1:", "timout"},
		},
		"fiat.toml and script problems together": {
			files: map[string]string{
				"fiat.toml": "[services.app]\ntimeout = \"forever\"\n",
				"main.star": "def handle(req):\n    return nope\n\nhttp.route(\"GET\", \"/\", handle)\n",
			},
			want: []string{"fiat.toml:2:", "main.star:2:12: undefined: nope", "2 problems"},
		},
		"two problems": {
			files: map[string]string{"fiat.toml": "[services.app]\nmax_steps = 0\ntimeout = \"forever\"\n"},
			want:  []string{"fiat.toml:2:", "fiat.toml:3:", "2 problems"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bad := t.TempDir()
			writeProject(t, bad, "app", "bad")
			for file, data := range tc.files {
				os.WriteFile(filepath.Join(bad, file), []byte(data), 0o644)
			}
			code, out, errOut := n.fiat("deploy", bad)
			if code == 0 {
				t.Fatalf("refused deploy exited 0:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			code, out, _ = n.fiat("deploy", bad, "--json")
			var refusal struct {
				Error    string
				Problems []fiat.Problem
			}
			if code == 0 || json.Unmarshal([]byte(out), &refusal) != nil || refusal.Error == "" {
				t.Errorf("--json refusal: exit %d, %q", code, out)
			}
			if _, body, _ := n.get(good.URL); body != "good" {
				t.Errorf("after a refused deploy production answers %q, want good", body)
			}
			versions, err := n.admin.Versions(t.Context(), "app")
			if err != nil || len(versions) != 1 {
				t.Errorf("after a refused deploy: %d versions (%v), want 1", len(versions), err)
			}
		})
	}
}

// TestDeploysUnderLoad deploys 200 versions while clients keep requesting:
// every response must be a 200 and come wholly from one version, its body
// and its Fiat-Version header agreeing.
func TestDeploysUnderLoad(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	bodyOf := map[string]string{} // short hash → body that version answers
	var mu sync.Mutex
	deployBody := func(i int) {
		body := fmt.Sprintf("version %d", i)
		bundle := mustLoad(t, writeProject(t, dir, "app", body))
		versions, problems := project.Versions(bundle)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		// Known before the deploy, since clients may see it the moment it switches.
		mu.Lock()
		bodyOf[versions[0].ID.Short()] = body
		mu.Unlock()
		if _, err := n.srv.Deployer.Deploy(t.Context(), fiat.Production, bundle); err != nil {
			t.Fatal(err)
		}
	}
	deployBody(0)
	url := n.srv.Addresses.Service("app", fiat.Production)
	stop := make(chan struct{})
	served := hammer(t, 4, stop, func() error {
		resp, err := n.public.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		version := resp.Header.Get("Fiat-Version")
		mu.Lock()
		want, known := bodyOf[version]
		mu.Unlock()
		if resp.StatusCode != 200 || !known || string(body) != want {
			return fmt.Errorf("during deploys: %d %q from version %q (known %v, which answers %q)", resp.StatusCode, body, version, known, want)
		}
		return nil
	})
	for i := 1; i <= 200; i++ {
		deployBody(i)
	}
	close(stop)
	if n := served(); n < 200 {
		t.Errorf("only %d requests were served during 200 deploys", n)
	}
	if _, body, _ := n.get(url); body != "version 200" {
		t.Errorf("after the deploys production answers %q, want version 200", body)
	}
}

func mustLoad(t *testing.T, dir string) project.Bundle {
	t.Helper()
	b, err := project.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
