package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/store"
)

func (s *server) flags(r *http.Request) (any, error) {
	env, err := envParameter(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.Flags(env)
}

// FlagRequest changes a flag of Env (production if nil), or makes it: each
// field of the patch given replaces the flag's.
type FlagRequest struct {
	Env *string `json:"env,omitempty"`
	fiat.FlagPatch
}

func (s *server) setFlag(r *http.Request) (any, error) {
	var req FlagRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.SetFlag(r.Context(), env, r.PathValue("name"), req.FlagPatch)
}

func (s *server) deleteFlag(r *http.Request) (any, error) {
	env, err := envParameter(r)
	if err != nil {
		return nil, err
	}
	return nil, s.cfg.Deployer.DeleteFlag(r.Context(), env, r.PathValue("name"))
}

func (s *server) flagLog(r *http.Request) (any, error) {
	env, err := envParameter(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.FlagLog(r.Context(), env, r.PathValue("name"))
}

// EvalRequest evaluates a flag of Env (production if nil) for a request of
// User ("" for a request without a user key) with Headers.
type EvalRequest struct {
	Env     *string           `json:"env,omitempty"`
	User    string            `json:"user"`
	Headers map[string]string `json:"headers,omitempty"`
}

func (s *server) evalFlag(r *http.Request) (any, error) {
	var req EvalRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	header := http.Header{}
	for name, value := range req.Headers {
		header.Add(name, value)
	}
	return s.cfg.Deployer.EvalFlag(env, r.PathValue("name"), req.User, header)
}

// UserKeyRequest sets where requests to Env (production if nil) carry the
// user key: Source is "header:NAME", "cookie:NAME" or "query:NAME".
type UserKeyRequest struct {
	Env    *string `json:"env,omitempty"`
	Source string  `json:"source"`
}

func (s *server) setUserKey(r *http.Request) (any, error) {
	var req UserKeyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	src, err := fiat.ParseUserKeySource(req.Source)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return s.cfg.Deployer.SetUserKey(r.Context(), env, src)
}

// Flags returns the flags of env.
func (c *Client) Flags(ctx context.Context, env string) (deploy.EnvFlags, error) {
	var flags deploy.EnvFlags
	err := c.call(ctx, "GET", "/v1/flags?env="+url.QueryEscape(env), "", nil, &flags)
	return flags, err
}

// SetFlag changes the flag name of env as p says, or makes it.
func (c *Client) SetFlag(ctx context.Context, env, name string, p fiat.FlagPatch) (fiat.Flag, error) {
	var f fiat.Flag
	path, err := flagPath(name, "")
	if err == nil {
		err = c.callJSON(ctx, "POST", path, FlagRequest{Env: &env, FlagPatch: p}, &f)
	}
	return f, err
}

// DeleteFlag deletes the flag name of env.
func (c *Client) DeleteFlag(ctx context.Context, env, name string) error {
	path, err := flagPath(name, "")
	if err != nil {
		return err
	}
	return c.call(ctx, "DELETE", path+"?env="+url.QueryEscape(env), "", nil, nil)
}

// FlagLog returns every change of the flag name of env.
func (c *Client) FlagLog(ctx context.Context, env, name string) ([]store.FlagEntry, error) {
	var log []store.FlagEntry
	path, err := flagPath(name, "/log")
	if err == nil {
		err = c.call(ctx, "GET", path+"?env="+url.QueryEscape(env), "", nil, &log)
	}
	return log, err
}

// EvalFlag evaluates the flag name of env for a request of user with
// headers.
func (c *Client) EvalFlag(ctx context.Context, env, name, user string, headers map[string]string) (deploy.FlagEval, error) {
	var eval deploy.FlagEval
	path, err := flagPath(name, "/eval")
	if err == nil {
		err = c.callJSON(ctx, "POST", path, EvalRequest{Env: &env, User: user, Headers: headers}, &eval)
	}
	return eval, err
}

// SetUserKey sets where requests to env carry the user key.
func (c *Client) SetUserKey(ctx context.Context, env, source string) (deploy.EnvFlags, error) {
	var flags deploy.EnvFlags
	err := c.callJSON(ctx, "POST", "/v1/user-key", UserKeyRequest{Env: &env, Source: source}, &flags)
	return flags, err
}

// flagPath is the path of the flag name's endpoint, which rest ends. A
// name that is no flag's is refused here: an empty one would make the
// path another endpoint's.
func flagPath(name, rest string) (string, error) {
	if err := fiat.CheckFlagName(name); err != nil {
		return "", fmt.Errorf("%w: %v", deploy.ErrInvalid, err)
	}
	return "/v1/flags/" + name + rest, nil
}
