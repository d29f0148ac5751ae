package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/store"
)

// Client calls the admin API.
type Client struct {
	// Server is the admin API's base URL, e.g. http://127.0.0.1:8081.
	Server string
	Token  string
	HTTP   *http.Client
}

// Deploy sends the project in bundle to env.
func (c *Client) Deploy(ctx context.Context, env string, bundle project.Bundle) (deploy.Result, error) {
	var body bytes.Buffer
	if err := bundle.WriteTar(&body); err != nil {
		return deploy.Result{}, err
	}
	var res deploy.Result
	err := c.call(ctx, "POST", "/v1/deploy?env="+url.QueryEscape(env), "application/x-tar", &body, &res)
	return res, err
}

// DeployRollout sends the project in bundle to env, to roll its changed
// services out as plan says.
func (c *Client) DeployRollout(ctx context.Context, env string, bundle project.Bundle, plan deploy.RolloutPlan) (deploy.Result, error) {
	var body bytes.Buffer
	if err := bundle.WriteTar(&body); err != nil {
		return deploy.Result{}, err
	}
	q := url.Values{"env": {env}, "rollout": {strconv.FormatFloat(plan.Percent, 'f', -1, 64)}}
	if plan.Users != nil {
		q.Set("users", strings.Join(plan.Users, ","))
	}
	if a := plan.Auto; a != nil {
		steps := make([]string, len(a.Steps))
		for i, s := range a.Steps {
			steps[i] = strconv.FormatFloat(s, 'f', -1, 64)
		}
		q.Set("auto", "true")
		q.Set("steps", strings.Join(steps, ","))
		q.Set("interval", a.Interval.String())
		q.Set("min_requests", strconv.Itoa(a.MinRequests))
		q.Set("error_margin", strconv.FormatFloat(a.ErrorMargin, 'f', -1, 64))
		q.Set("latency_factor", strconv.FormatFloat(a.LatencyFactor, 'f', -1, 64))
	}
	var res deploy.Result
	err := c.call(ctx, "POST", "/v1/deploy?"+q.Encode(), "application/x-tar", &body, &res)
	return res, err
}

// Rollout says how the rollout of service in env goes.
func (c *Client) Rollout(ctx context.Context, env, service string) (deploy.RolloutStatus, error) {
	var st deploy.RolloutStatus
	err := c.call(ctx, "GET", "/v1/services/"+url.PathEscape(service)+"/rollout?env="+url.QueryEscape(env), "", nil, &st)
	return st, err
}

// ChangeRollout changes the rollout of service in env.
func (c *Client) ChangeRollout(ctx context.Context, env, service string, change deploy.RolloutChange) (deploy.RolloutStatus, error) {
	var st deploy.RolloutStatus
	err := c.callJSON(ctx, "POST", "/v1/services/"+url.PathEscape(service)+"/rollout", RolloutRequest{Env: &env, RolloutChange: change}, &st)
	return st, err
}

// Versions lists the versions of service, newest first.
func (c *Client) Versions(ctx context.Context, service string) ([]store.VersionInfo, error) {
	var vs []store.VersionInfo
	err := c.call(ctx, "GET", "/v1/services/"+url.PathEscape(service)+"/versions", "", nil, &vs)
	return vs, err
}

// Rollback points service in env back at its previous version (to is
// empty), or at the version whose hash starts with to.
func (c *Client) Rollback(ctx context.Context, env, service, to string) (deploy.Result, error) {
	req := RollbackRequest{Env: &env}
	if to != "" {
		req.To = &to
	}
	var res deploy.Result
	err := c.callJSON(ctx, "POST", "/v1/services/"+url.PathEscape(service)+"/rollback", req, &res)
	return res, err
}

// Config returns the config of service in env, its secrets hidden.
func (c *Client) Config(ctx context.Context, env, service string) (Config, error) {
	var config Config
	err := c.call(ctx, "GET", "/v1/services/"+url.PathEscape(service)+"/config?env="+url.QueryEscape(env), "", nil, &config)
	return config, err
}

// Configure changes the config of service in env, deploying a new version.
func (c *Client) Configure(ctx context.Context, env, service string, change deploy.ConfigChange) (deploy.Result, error) {
	var res deploy.Result
	err := c.callJSON(ctx, "POST", "/v1/services/"+url.PathEscape(service)+"/config", ConfigRequest{Env: &env, Set: change.Set, Unset: change.Unset, Secret: change.Secret}, &res)
	return res, err
}

// Scale sets how many instances of each process service in instances
// env runs.
func (c *Client) Scale(ctx context.Context, env string, instances map[string]int) (deploy.Result, error) {
	var res deploy.Result
	err := c.callJSON(ctx, "POST", "/v1/scale", ScaleRequest{Env: &env, Services: instances}, &res)
	return res, err
}

// Envs lists every env.
func (c *Client) Envs(ctx context.Context) ([]fiat.Env, error) {
	var envs []fiat.Env
	err := c.call(ctx, "GET", "/v1/envs", "", nil, &envs)
	return envs, err
}

// Graph returns who uses whom in env.
func (c *Client) Graph(ctx context.Context, env string) (deploy.Graph, error) {
	var g deploy.Graph
	err := c.call(ctx, "GET", "/v1/graph?env="+url.QueryEscape(env), "", nil, &g)
	return g, err
}

// Fork creates env name with the versions of env from.
func (c *Client) Fork(ctx context.Context, name, from string) (deploy.Result, error) {
	var res deploy.Result
	err := c.callJSON(ctx, "POST", "/v1/envs", ForkRequest{Name: name, From: &from}, &res)
	return res, err
}

// DeleteEnv removes env name.
func (c *Client) DeleteEnv(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/v1/envs/"+url.PathEscape(name), "", nil, nil)
}

// Promote points every service of env to at its version in env from.
func (c *Client) Promote(ctx context.Context, from, to string) (deploy.Result, error) {
	var res deploy.Result
	err := c.callJSON(ctx, "POST", "/v1/promote", PromoteRequest{From: from, To: &to}, &res)
	return res, err
}

func (c *Client) callJSON(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.call(ctx, method, path, "application/json", bytes.NewReader(body), out)
}

func (c *Client) call(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	resp, err := c.do(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// do sends a request and returns its response if it succeeded, and the
// API's error otherwise.
func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the fiat server at %s: %w (start it with `fiat serve`, or point --server / FIAT_SERVER at it)", c.Server, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	apiErr := &Error{Status: resp.StatusCode}
	if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
		apiErr.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return nil, apiErr
}

// Processes lists the process services running on the server's node.
func (c *Client) Processes(ctx context.Context) ([]deploy.Process, error) {
	var ps []deploy.Process
	err := c.call(ctx, "GET", "/v1/ps", "", nil, &ps)
	return ps, err
}

// Restart restarts the instances of service in env, one after the other.
func (c *Client) Restart(ctx context.Context, env, service string) (deploy.Process, error) {
	var p deploy.Process
	err := c.callJSON(ctx, "POST", "/v1/services/"+url.PathEscape(service)+"/restart", RestartRequest{Env: &env}, &p)
	return p, err
}

// Logs calls each with the last lines that service's instances wrote, as
// the request says, and then, if it follows, every new line until ctx
// ends.
func (c *Client) Logs(ctx context.Context, service string, req LogsRequest, each func(fiat.LogLine) error) error {
	q := url.Values{"env": {req.Env}, "n": {strconv.Itoa(req.N)}}
	if req.Version != "" {
		q.Set("version", req.Version)
	}
	if req.Follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, "GET", "/v1/services/"+url.PathEscape(service)+"/logs?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var line fiat.LogLine
		if err := dec.Decode(&line); err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := each(line); err != nil {
			return err
		}
	}
}
