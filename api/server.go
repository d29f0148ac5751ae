// Package api is fiat's admin API, JSON over HTTP on the admin port, and the
// client the CLI uses to call it. docs/api.md is its reference.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/store"
)

// ServerConfig is what the admin API serves from.
type ServerConfig struct {
	Deployer *deploy.Deployer
	Store    store.Store
	// Token is the admin token every /v1 request must present as
	// "Authorization: Bearer <token>".
	Token string
	// MaxBundle is the largest project bundle a deploy accepts, in bytes.
	MaxBundle int64
	// Metrics serves /metrics.
	Metrics http.Handler
	Logger  *slog.Logger
	// Git serves `git push` under /git/, to clients that present the
	// token as a password.
	Git http.Handler
}

// NewServer returns the admin API's handler.
func NewServer(cfg ServerConfig) http.Handler {
	s := &server{cfg}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", cfg.Metrics)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("POST /v1/deploy", s.auth(s.deploy))
	mux.Handle("GET /v1/envs", s.auth(s.envs))
	mux.Handle("POST /v1/envs", s.auth(s.fork))
	mux.Handle("DELETE /v1/envs/{name}", s.auth(s.deleteEnv))
	mux.Handle("POST /v1/promote", s.auth(s.promote))
	mux.Handle("POST /v1/scale", s.auth(s.scale))
	mux.Handle("GET /v1/ps", s.auth(s.processes))
	mux.Handle("GET /v1/graph", s.auth(s.graph))
	if cfg.Git != nil {
		mux.Handle("/git/", s.gitAuthorized(cfg.Git))
	}
	mux.Handle("GET /v1/services/{service}/logs", s.authorizedOnly(http.HandlerFunc(s.logs)))
	mux.Handle("POST /v1/services/{service}/restart", s.auth(s.restart))
	mux.Handle("GET /v1/services/{service}/versions", s.auth(s.versions))
	mux.Handle("POST /v1/services/{service}/rollback", s.auth(s.rollback))
	mux.Handle("GET /v1/services/{service}/config", s.auth(s.config))
	mux.Handle("POST /v1/services/{service}/config", s.auth(s.configure))
	mux.Handle("GET /v1/services/{service}/rollout", s.auth(s.rolloutStatus))
	mux.Handle("POST /v1/services/{service}/rollout", s.auth(s.changeRollout))
	mux.Handle("GET /v1/flags", s.auth(s.flags))
	mux.Handle("POST /v1/flags/{name}", s.auth(s.setFlag))
	mux.Handle("DELETE /v1/flags/{name}", s.auth(s.deleteFlag))
	mux.Handle("GET /v1/flags/{name}/log", s.auth(s.flagLog))
	mux.Handle("POST /v1/flags/{name}/eval", s.auth(s.evalFlag))
	mux.Handle("POST /v1/user-key", s.auth(s.setUserKey))
	mux.Handle("/", s.auth(func(r *http.Request) (any, error) {
		return nil, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no such API endpoint: %s %s (see docs/api.md)", r.Method, r.URL.Path)}
	}))
	return mux
}

type server struct{ cfg ServerConfig }

// healthz says where the node is in the store's history: 200 when it
// follows it, 503 while it cannot read it (it serves what it has).
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	h := s.cfg.Deployer.Health()
	w.Header().Set("Content-Type", "application/json")
	if !h.CaughtUp {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

// endpoint answers one API call with a value to encode as JSON or an error.
type endpoint func(r *http.Request) (any, error)

func (s *server) auth(e endpoint) http.Handler {
	return s.authorizedOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := e(r)
		s.reply(w, r, v, err)
	}))
}

// authorizedOnly serves h to requests that present the admin token.
func (s *server) authorizedOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			s.reply(w, r, nil, &Error{Status: http.StatusUnauthorized, Message: "missing or wrong admin token: send \"Authorization: Bearer <token>\" with the token in the server's <data>/admin-token file"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// gitAuthorized serves h to requests that present the admin token as the
// password of HTTP basic authentication, with any user name, as git sends
// what a remote's URL or a credential helper gives it; or as a bearer
// token.
func (s *server) gitAuthorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, password, basic := r.BasicAuth()
		if !(basic && subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Token)) == 1) && !s.authorized(r.Header.Get("Authorization")) {
			// Basic makes git ask its credential helper, then the user.
			w.Header().Set("WWW-Authenticate", `Basic realm="fiat", charset="UTF-8"`)
			http.Error(w, "missing or wrong admin token: give it as the password of the remote's URL (http://fiat:TOKEN@host:8081/git/NAME) or through a git credential helper; it is in the server's <data>/admin-token file", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorized reports whether header is "Bearer <the admin token>". The
// scheme's name is case-insensitive (RFC 9110); a bare token is refused.
func (s *server) authorized(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) == 1
}

func (s *server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		apiErr := ErrorOf(err)
		if apiErr.Status >= 500 {
			s.cfg.Logger.Error("admin API", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		w.WriteHeader(apiErr.Status)
		v = apiErr
	}
	if v == nil {
		v = struct{}{}
	}
	json.NewEncoder(w).Encode(v)
}

// ErrorOf gives every error its status: the user's mistakes are 4xx with a
// message that says what to do; anything else is a 500.
func ErrorOf(err error) *Error {
	var apiErr *Error
	var problems fiat.Problems
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &problems):
		return &Error{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf("deploy refused: %s; nothing changed", plural(len(problems), "problem")), Problems: problems}
	case errors.Is(err, project.ErrTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: err.Error()}
	case errors.Is(err, deploy.ErrInvalid), errors.Is(err, store.ErrAmbiguous):
		return &Error{Status: http.StatusBadRequest, Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrNoPrevious), errors.Is(err, store.ErrEnvExists), errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrRollingOut):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, store.ErrStoreGone), errors.Is(err, store.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &Error{Status: 499, Message: "request canceled"}
	}
	return &Error{Status: http.StatusInternalServerError, Message: err.Error()}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// envParameter is the env the request's query names, production if none.
func envParameter(r *http.Request) (string, error) {
	var env *string
	if query := r.URL.Query(); query.Has("env") {
		env = new(query.Get("env"))
	}
	return envField("env", env)
}

func (s *server) graph(r *http.Request) (any, error) {
	env, err := envParameter(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Graph(env)
}

func (s *server) deploy(r *http.Request) (any, error) {
	name, err := envParameter(r)
	if err != nil {
		return nil, err
	}
	bundle, err := project.ReadTar(r.Body, s.cfg.MaxBundle)
	if errors.Is(err, project.ErrTooLarge) {
		return nil, fmt.Errorf("%w: the project is over the server's limit of %d bytes: leave large files out of service dirs, or start the server with a larger --max-bundle", project.ErrTooLarge, s.cfg.MaxBundle)
	}
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	if query := r.URL.Query(); query.Has("rollout") {
		plan, err := rolloutPlan(query)
		if err != nil {
			return nil, err
		}
		return s.cfg.Deployer.DeployRollout(r.Context(), name, bundle, plan)
	}
	return s.cfg.Deployer.Deploy(r.Context(), name, bundle)
}

// envField is the env that an optional field or parameter names:
// production when it is absent. An empty one is refused: it is what a
// script sends when the variable meant to fill it is unset, and reading it
// as production would change production.
func envField(field string, env *string) (string, error) {
	switch {
	case env == nil:
		return fiat.Production, nil
	case *env == "":
		return "", &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s is empty: give an env name, or leave %s out for %s", field, field, fiat.Production)}
	}
	return *env, nil
}

func (s *server) envs(r *http.Request) (any, error) {
	return s.cfg.Deployer.Envs(), nil
}

// ForkRequest creates env Name from env From (production if nil).
type ForkRequest struct {
	Name string  `json:"name"`
	From *string `json:"from,omitempty"`
}

func (s *server) fork(r *http.Request) (any, error) {
	var req ForkRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	from, err := envField("from", req.From)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Fork(r.Context(), req.Name, from)
}

func (s *server) deleteEnv(r *http.Request) (any, error) {
	return nil, s.cfg.Deployer.DeleteEnv(r.Context(), r.PathValue("name"))
}

// PromoteRequest points every service of env To (production if nil) at
// its version in env From.
type PromoteRequest struct {
	From string  `json:"from"`
	To   *string `json:"to,omitempty"`
}

func (s *server) promote(r *http.Request) (any, error) {
	var req PromoteRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.From == "" {
		return nil, &Error{Status: http.StatusBadRequest, Message: "from is empty: give the env whose versions to promote"}
	}
	to, err := envField("to", req.To)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Promote(r.Context(), req.From, to)
}

func (s *server) versions(r *http.Request) (any, error) {
	service := r.PathValue("service")
	versions, err := s.cfg.Store.Versions(r.Context(), service)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no versions of service %q: deploy a project that declares [services.%s] with `fiat deploy`", service, service)}
	}
	for i := range versions {
		if versions[i].Envs == nil {
			// A list, never null, for clients that iterate it without checking.
			versions[i].Envs = []string{}
		}
		versions[i].Config = versions[i].Config.Redacted()
	}
	return versions, nil
}

// ScaleRequest sets how many instances of each process service of
// Services Env (production if nil) runs.
type ScaleRequest struct {
	Env      *string        `json:"env,omitempty"`
	Services map[string]int `json:"services"`
}

func (s *server) scale(r *http.Request) (any, error) {
	var req ScaleRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Scale(r.Context(), env, req.Services)
}

// Config is a service's config in an env, its secrets' values hidden.
type Config struct {
	Service string            `json:"service"`
	Env     string            `json:"env"`
	Version fiat.Hash         `json:"version"`
	Config  map[string]string `json:"config"`
	Secrets []string          `json:"secrets"`
}

func (s *server) config(r *http.Request) (any, error) {
	env := fiat.Production
	if r.URL.Query().Has("env") {
		env = r.URL.Query().Get("env")
	}
	v, err := s.cfg.Deployer.Serving(r.Context(), env, r.PathValue("service"))
	if err != nil {
		return nil, err
	}
	shown := v.Config.Redacted()
	c := Config{Service: v.Service, Env: env, Version: v.ID, Config: shown.Environ(), Secrets: shown.Secrets}
	if c.Config == nil {
		c.Config = map[string]string{}
	}
	if c.Secrets == nil {
		c.Secrets = []string{}
	}
	return c, nil
}

// ConfigRequest sets and unsets keys of a service's config in Env
// (production if nil); Secret marks the keys it sets as secrets.
type ConfigRequest struct {
	Env    *string           `json:"env,omitempty"`
	Set    map[string]string `json:"set,omitempty"`
	Unset  []string          `json:"unset,omitempty"`
	Secret bool              `json:"secret,omitempty"`
}

func (s *server) configure(r *http.Request) (any, error) {
	var req ConfigRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Configure(r.Context(), env, r.PathValue("service"), deploy.ConfigChange{Set: req.Set, Unset: req.Unset, Secret: req.Secret})
}

// RollbackRequest points a service of Env (production if nil) back at its
// previous version if To is nil, or at the version whose hash starts with
// To.
type RollbackRequest struct {
	Env *string `json:"env,omitempty"`
	To  *string `json:"to,omitempty"`
}

func (s *server) rollback(r *http.Request) (any, error) {
	var req RollbackRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	var to string
	if req.To != nil {
		if to = *req.To; to == "" {
			// Undo would be the wrong thing to do for a hash that a script forgot to set.
			return nil, &Error{Status: http.StatusBadRequest, Message: "to is empty: give 8 or more characters of the hash of the version to go to, or leave to out to go back one version"}
		}
	}
	return s.cfg.Deployer.Rollback(r.Context(), env, r.PathValue("service"), to)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("request body is not the JSON this endpoint takes (see docs/api.md): %v", err)}
	}
	return nil
}
