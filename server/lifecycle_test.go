package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/server"
	"github.com/fiatdev/fiat/store"
)

func TestRestartKeepsEveryVersionAndEnv(t *testing.T) {
	data := t.TempDir()
	n := start(t, data)
	dir := t.TempDir()
	// labels maps host labels to what they must answer, before and after restarts.
	labels := map[string]string{}
	for i := range 5 {
		s := n.deployJSON(writeProject(t, dir, "app", fmt.Sprint("v", i))).Services[0]
		labels[fiat.VersionLabel("app", s.Version)] = fmt.Sprint("v", i)
	}
	if code, out, errOut := n.fiat("env", "fork", "staging", "--from", "production"); code != 0 {
		t.Fatalf("env fork: %s%s", out, errOut)
	}
	s := n.deployJSON(writeProject(t, dir, "app", "staged"), "--env", "staging").Services[0]
	labels[fiat.VersionLabel("app", s.Version)] = "staged"
	labels[fiat.ServiceLabel("app", "staging")] = "staged"
	labels[fiat.ServiceLabel("app", fiat.Production)] = "v4"
	before, _ := n.admin.Envs(t.Context())
	n.stop()

	for _, dropCache := range []bool{false, true} {
		if dropCache {
			// Compiled programs are a cache: without them versions compile again from the store.
			os.Remove(filepath.Join(data, "programs.pack"))
		}
		n = start(t, data)
		after, err := n.admin.Envs(t.Context())
		if err != nil || fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("envs after restart = %v (%v), want %v", after, err, before)
		}
		for label, want := range labels {
			url := "http://" + label + ".localhost:" + n.srv.Addresses.Port
			if code, body, _ := n.get(url); code != 200 || body != want {
				t.Errorf("after restart (cache dropped: %v) %s = %d %q, want %q", dropCache, url, code, body, want)
			}
		}
		n.stop()
	}
}

// TestOneServerPerDataDir checks that a second fiat serve on a data dir in
// use is refused, saying why, and starts once the first has stopped.
func TestOneServerPerDataDir(t *testing.T) {
	data := t.TempDir()
	first := start(t, data)
	cfg := server.Defaults
	cfg.Listen, cfg.Admin, cfg.Data, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", data, quietLogger()
	if second, err := server.Start(t.Context(), cfg); err == nil {
		second.Shutdown(t.Context())
		t.Fatal("a second server started on a data dir in use")
	} else if !strings.Contains(err.Error(), "in use by another fiat serve") {
		t.Errorf("second server: %v, want it to say the data dir is in use", err)
	}
	first.stop()
	start(t, data)
}

func TestRollbackPromoteAndEnvs(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	var versions []fiat.Hash
	for i := range 3 {
		versions = append(versions, n.deployJSON(writeProject(t, dir, "app", fmt.Sprint("v", i))).Services[0].Version)
	}
	prod := n.srv.Addresses.Service("app", fiat.Production)
	expect := func(url, want string) {
		t.Helper()
		if _, body, _ := n.get(url); body != want {
			t.Errorf("GET %s = %q, want %q", url, body, want)
		}
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := n.fiat(args...)
		if code != 0 {
			t.Fatalf("fiat %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	mustRun("rollback", "app")
	expect(prod, "v1")
	mustRun("rollback", "app")
	expect(prod, "v0")
	if code, _, errOut := n.fiat("rollback", "app"); code == 0 || !strings.Contains(errOut, "previous") {
		t.Errorf("rollback past the first version: exit %d, %q", code, errOut)
	}
	mustRun("rollback", "app", "--to", string(versions[2][:8]))
	expect(prod, "v2")
	if code, _, errOut := n.fiat("rollback", "app", "--to", "zz"); code == 0 || !strings.Contains(errOut, "8") {
		t.Errorf("rollback --to a short prefix: exit %d, %q", code, errOut)
	}

	out := mustRun("versions", "app")
	for _, v := range versions {
		if !strings.Contains(out, v.Short()) {
			t.Errorf("fiat versions lacks %s:\n%s", v.Short(), out)
		}
	}
	var infos []store.VersionInfo
	json.Unmarshal([]byte(mustRun("versions", "app", "--json")), &infos)
	if len(infos) != 3 || infos[0].ID != versions[2] || fmt.Sprint(infos[0].Envs) != "[production]" {
		t.Errorf("fiat versions --json = %+v", infos)
	}

	mustRun("env", "fork", "staging", "--from", "production")
	staging := n.srv.Addresses.Service("app", "staging")
	expect(staging, "v2")
	n.deployJSON(writeProject(t, dir, "app", "next"), "--env", "staging")
	expect(staging, "next")
	expect(prod, "v2")
	began := time.Now()
	mustRun("promote", "--from", "staging", "--to", "production")
	t.Logf("promote took %v end to end", time.Since(began))
	expect(prod, "next")
	if code, _, errOut := n.fiat("env", "fork", "staging", "--from", "production"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("forking onto an existing env: exit %d, %q", code, errOut)
	}
	var envs []fiat.Env
	json.Unmarshal([]byte(mustRun("env", "list", "--json")), &envs)
	if len(envs) != 2 || envs[0].Name != "production" || envs[1].Name != "staging" {
		t.Errorf("env list --json = %+v", envs)
	}
	mustRun("env", "delete", "staging")
	if code, _, _ := n.get(staging); code != 404 {
		t.Errorf("deleted env still answers: %d", code)
	}
	if code, _, errOut := n.fiat("env", "delete", "production"); code == 0 || !strings.Contains(errOut, "cannot be deleted") {
		t.Errorf("deleting production: exit %d, %q", code, errOut)
	}
	if code, _, errOut := n.fiat("deploy", dir, "--env", "Bad_Name"); code == 0 || !strings.Contains(errOut, "env name") {
		t.Errorf("deploy to a bad env name: exit %d, %q", code, errOut)
	}
}

func TestLimitsAndAuth(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	writeProject(t, dir, "app", "ok")
	os.WriteFile(filepath.Join(dir, "main.star"), []byte("def handle(req):\n    return str(len(req.body))\n\nhttp.route(\"POST\", \"/\", handle)\n"), 0o644)
	s := n.deployJSON(dir).Services[0]

	resp, err := n.public.Post(s.URL, "text/plain", strings.NewReader(strings.Repeat("x", 1000)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST within the body limit: %v %v", resp, err)
	}
	resp, _ = n.public.Post(s.URL, "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST over the body limit: %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.URL, nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8<<10))
	resp, _ = n.public.Do(req)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("header over the limit: %d, want 431", resp.StatusCode)
	}

	big := t.TempDir()
	writeProject(t, big, "app", strings.Repeat("x", 100<<10))
	if code, _, errOut := n.fiat("deploy", big); code == 0 || !strings.Contains(errOut, "limit") {
		t.Errorf("deploying a bundle over the limit: exit %d, %q", code, errOut)
	}

	for _, token := range []string{"", "wrong"} {
		req, _ := http.NewRequest("POST", "http://"+n.srv.Admin.String()+"/v1/envs", bytes.NewReader([]byte(`{"name":"x","from":"production"}`)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Errorf("token %q: %v %v, want 401", token, resp, err)
		}
	}
	envs, _ := n.admin.Envs(t.Context())
	if len(envs) != 1 {
		t.Errorf("unauthorized calls changed the envs: %v", envs)
	}
	resp, err = http.Get("http://" + n.srv.Admin.String() + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	for _, want := range []string{`fiat_requests_total{class="2xx",service="app",version="` + s.Version.Short() + `"}`, "fiat_request_duration_seconds", `fiat_changes_total{kind="deploy",outcome="ok"} 1`, "fiat_change_duration_seconds"} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
