package server_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
)

// TestShopExample deploys examples/shop, a Go frontend that calls a
// script backend at ${backend.version_url}, changes the backend, deploys
// it 50 times under load with no failed request and no frontend calling a
// backend it was not deployed with, and rolls the backend back.
func TestShopExample(t *testing.T) {
	root := publicDir(t)
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "shop")
	if err := os.CopyFS(dir, os.DirFS("../examples/shop")); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(root, "data"))
	cfg.MaxBundle = 32 << 20
	n := startConfig(t, cfg)
	first := servicesOf(n.deployJSON(dir))
	apple := n.srv.Addresses.Service("frontend", fiat.Production) + "/price/apple"
	code, body, header := n.get(apple)
	if code != 200 || body != "apple costs 3\n" || header.Get("Backend-Version") != first["backend"].Version.Short() {
		t.Fatalf("the example answers %d %q from backend %q, want apple costs 3 from %s", code, body, header.Get("Backend-Version"), first["backend"].Version.Short())
	}

	prices := filepath.Join(dir, "backend", "main.star")
	original, err := os.ReadFile(prices)
	if err != nil {
		t.Fatal(err)
	}
	withApple := func(price int) []byte {
		changed := strings.Replace(string(original), `"apple": 3`, fmt.Sprintf(`"apple": %d`, price), 1)
		if changed == string(original) {
			t.Fatal("the example's prices moved: update this test")
		}
		return []byte(changed)
	}
	if err := os.WriteFile(prices, withApple(5), 0o644); err != nil {
		t.Fatal(err)
	}
	second := servicesOf(n.deployJSON(dir))
	if s := second["backend"]; !s.Changed || s.Why != "files" {
		t.Errorf("backend after its change: %+v", s)
	}
	if s := second["frontend"]; !s.Changed || s.Why != "uses backend" {
		t.Errorf("frontend after the backend's change: %+v, want changed because it uses backend", s)
	}
	if _, body, _ := n.get(apple); body != "apple costs 5\n" {
		t.Errorf("after the change: %q", body)
	}

	// 50 deploys of the backend, each with the frontend it makes, under load.
	var mu sync.Mutex
	backendOf := map[string]string{} // frontend short → backend short
	deployPrice := func(price int) {
		if err := os.WriteFile(prices, withApple(price), 0o644); err != nil {
			t.Fatal(err)
		}
		bundle := mustLoad(t, dir)
		versions, problems := project.Versions(bundle)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		mu.Lock()
		for _, v := range versions {
			if v.Service == "frontend" {
				backendOf[v.ID.Short()] = v.Uses["backend"].Short()
			}
		}
		mu.Unlock()
		if _, err := n.srv.Deployer.Deploy(t.Context(), fiat.Production, bundle); err != nil {
			t.Fatal(err)
		}
	}
	deployPrice(5)
	stop := make(chan struct{})
	served := hammer(t, 4, stop, func() error {
		resp, err := n.public.Get(apple)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		frontend := resp.Header.Get(fiat.VersionHeader)
		mu.Lock()
		want := backendOf[frontend]
		mu.Unlock()
		if resp.StatusCode != 200 || want == "" || resp.Header.Get("Backend-Version") != want {
			return fmt.Errorf("frontend %s answered %d %q from backend %q, want backend %q", frontend, resp.StatusCode, body, resp.Header.Get("Backend-Version"), want)
		}
		return nil
	})
	for i := range 50 {
		deployPrice(10 + i)
	}
	close(stop)
	if n := served(); n < 50 {
		t.Errorf("only %d requests were served during 50 deploys", n)
	}

	if code, out, errOut := n.fiat("rollback", "backend"); code != 0 {
		t.Fatalf("rollback: %s%s", out, errOut)
	}
	if _, body, _ := n.get(apple); body != "apple costs 58\n" {
		t.Errorf("after rolling the backend back: %q, want the price before the last deploy", body)
	}
	code, out, errOut := n.fiat("graph")
	if code != 0 || !strings.Contains(out, "frontend") || !strings.Contains(out, "uses backend") {
		t.Errorf("fiat graph: %d %s%s", code, out, errOut)
	}
	if code, out, _ := n.fiat("versions", "frontend"); code != 0 || !strings.Contains(out, "backend "+first["backend"].Version.Short()) {
		t.Errorf("fiat versions frontend does not say which backend each uses: %s", out)
	}
	if code, out, _ := n.fiat("graph", "--dot"); code != 0 || !strings.Contains(out, "->") {
		t.Errorf("fiat graph --dot: %d %s", code, out)
	}
}

func servicesOf(res deploy.Result) map[string]deploy.ServiceResult {
	of := map[string]deploy.ServiceResult{}
	for _, s := range res.Services {
		of[s.Name] = s
	}
	return of
}
