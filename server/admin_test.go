package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

// adminCall sends one request to the admin API with the Authorization
// header given, and returns its status and body.
func (n *node) adminCall(method, path, authorization, body string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.srv.Admin.String()+path, strings.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestAdminTakesOnlyBearerTokens(t *testing.T) {
	n := start(t, t.TempDir())
	token := n.srv.Token
	for authorization, want := range map[string]int{
		"Bearer " + token:                  200,
		"bearer " + token:                  200, // RFC 9110: the scheme is case-insensitive
		token:                              401,
		"Token " + token:                   401,
		"Basic " + token:                   401,
		"Bearer":                           401,
		"Bearer " + token + "x":            401,
		"Bearer  " + token:                 401,
		" " + token:                        401,
		"Bearer" + token:                   401,
		"X" + "Bearer " + token:            401,
		"Bearer " + token[:8]:              401,
		"Bearer " + strings.ToUpper(token): 401,
	} {
		if code, body := n.adminCall("GET", "/v1/envs", authorization, ""); code != want {
			t.Errorf("Authorization: %q answered %d %s, want %d", authorization, code, body, want)
		}
	}
}

// TestAdminRefusesEmptyEnvs sends every change with an env or hash field
// that is present but empty, as a script does whose variable is unset:
// each must be refused with a 400 that names the field, and production
// must not change.
func TestAdminRefusesEmptyEnvs(t *testing.T) {
	n := start(t, t.TempDir())
	dir := t.TempDir()
	first := n.deployJSON(writeProject(t, dir, "app", "first")).Services[0]
	second := n.deployJSON(writeProject(t, dir, "app", "second")).Services[0]
	n.fiat("env", "fork", "staging")
	bearer := "Bearer " + n.srv.Token
	for _, call := range []struct{ method, path, body, field string }{
		{"POST", "/v1/deploy?env=", "", "env"},
		{"POST", "/v1/services/app/rollback", `{"to": ""}`, "to"},
		{"POST", "/v1/services/app/rollback", `{"env": ""}`, "env"},
		{"POST", "/v1/services/app/rollback", `{"env": "", "to": "` + string(first.Version[:8]) + `"}`, "env"},
		{"POST", "/v1/envs", `{"name": "copy", "from": ""}`, "from"},
		{"POST", "/v1/promote", `{"from": "", "to": "production"}`, "from"},
		{"POST", "/v1/promote", `{"from": "staging", "to": ""}`, "to"},
	} {
		code, body := n.adminCall(call.method, call.path, bearer, call.body)
		var refusal struct{ Error string }
		json.Unmarshal([]byte(body), &refusal)
		if code != 400 || !strings.HasPrefix(refusal.Error, call.field+" is empty") {
			t.Errorf("%s %s %s: %d %s, want 400 saying %s is empty", call.method, call.path, call.body, code, body, call.field)
		}
	}
	if env, _ := n.admin.Envs(t.Context()); len(env) != 2 || env[0].Services["app"] != second.Version {
		t.Errorf("after refused calls the envs are %v, want production still at %s and no new env", env, second.Version.Short())
	}
	// Absent, they keep their defaults: production, and back one version.
	if code, body := n.adminCall("POST", "/v1/services/app/rollback", bearer, `{}`); code != 200 {
		t.Fatalf("rollback with no env and no to: %d %s", code, body)
	}
	if env, _ := n.admin.Envs(t.Context()); env[0].Name != fiat.Production || env[0].Services["app"] != first.Version {
		t.Errorf("rollback with no env and no to left %v, want production back at %s", env, first.Version.Short())
	}
}
