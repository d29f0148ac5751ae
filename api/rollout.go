package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/deploy"
)

// rolloutPlan reads the rollout a deploy asks for: rollout=PERCENT, and
// optionally users=a,b and auto=true with steps=1,5,25, interval=2m,
// min_requests=N, error_margin=POINTS and latency_factor=X, each of the
// auto plan's defaulting to fiat.DefaultAutoPlan's.
func rolloutPlan(q url.Values) (deploy.RolloutPlan, error) {
	bad := func(param, value, want string) error {
		return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s=%s: give %s", param, value, want)}
	}
	var plan deploy.RolloutPlan
	var err error
	if plan.Percent, err = strconv.ParseFloat(q.Get("rollout"), 64); err != nil {
		return plan, bad("rollout", q.Get("rollout"), "the percentage of users who get the candidates, e.g. 5")
	}
	if q.Has("users") {
		plan.Users = strings.Split(q.Get("users"), ",")
	}
	autoParams := []string{"steps", "interval", "min_requests", "error_margin", "latency_factor"}
	if q.Get("auto") != "true" {
		for _, param := range append(autoParams, "auto") {
			if q.Has(param) {
				return plan, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("%s is given without auto=true: the auto plan's parameters take auto=true", param)}
			}
		}
		return plan, nil
	}
	auto := fiat.DefaultAutoPlan
	auto.Steps = nil
	if q.Has("steps") {
		for _, step := range strings.Split(q.Get("steps"), ",") {
			s, err := strconv.ParseFloat(step, 64)
			if err != nil {
				return plan, bad("steps", q.Get("steps"), "percentages separated by commas, e.g. 1,5,25,50,100")
			}
			auto.Steps = append(auto.Steps, s)
		}
	} else {
		for _, s := range fiat.DefaultAutoPlan.Steps {
			if s > plan.Percent {
				auto.Steps = append(auto.Steps, s)
			}
		}
	}
	if q.Has("interval") {
		if auto.Interval, err = time.ParseDuration(q.Get("interval")); err != nil {
			return plan, bad("interval", q.Get("interval"), "how long each step lasts, e.g. 5m")
		}
	}
	if q.Has("min_requests") {
		if auto.MinRequests, err = strconv.Atoi(q.Get("min_requests")); err != nil {
			return plan, bad("min_requests", q.Get("min_requests"), "how many requests a candidate serves in a step before it is judged, e.g. 100")
		}
	}
	for param, to := range map[string]*float64{"error_margin": &auto.ErrorMargin, "latency_factor": &auto.LatencyFactor} {
		if q.Has(param) {
			if *to, err = strconv.ParseFloat(q.Get(param), 64); err != nil {
				return plan, bad(param, q.Get(param), "a number")
			}
		}
	}
	plan.Auto = &auto
	return plan, nil
}

func (s *server) rolloutStatus(r *http.Request) (any, error) {
	env := fiat.Production
	if r.URL.Query().Has("env") {
		env = r.URL.Query().Get("env")
	}
	return s.cfg.Deployer.RolloutStatus(env, r.PathValue("service"))
}

// RolloutRequest changes the rollout of a service in Env (production if
// nil): its Percent and Users, or Finish or Abort it.
type RolloutRequest struct {
	Env *string `json:"env,omitempty"`
	deploy.RolloutChange
}

func (s *server) changeRollout(r *http.Request) (any, error) {
	var req RolloutRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	env, err := envField("env", req.Env)
	if err != nil {
		return nil, err
	}
	return s.cfg.Deployer.ChangeRollout(r.Context(), env, r.PathValue("service"), req.RolloutChange)
}
