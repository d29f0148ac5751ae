package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/metrics"
)

// route is where an env sends the requests to one of its services: the
// version it is at and, during a rollout, a candidate that the rollout's
// users get instead.
type route struct {
	// current is nil for a service that only a rollout has.
	current   *version
	candidate *version
	// split, shared by every route of one rollout, says who is in it; nil
	// without a candidate.
	split *split
}

// split is one rollout's rule, made once per change so that a request
// evaluates it with no allocation.
type split struct {
	seed    string
	percent float64
	users   map[string]struct{}
	userKey fiat.UserKeySource
}

// pick is the version that serves req, or nil if the route has none for
// its user.
func (rt *route) pick(req *http.Request) *version {
	if rt.split != nil && rt.split.in(req) {
		return rt.candidate
	}
	return rt.current
}

// in reports whether req's user is in the rollout. A request without a
// user key has nothing to be sticky on: it is in with the rollout's
// probability, independently of the requests before it, as Cloudflare's
// gradual deployments do, so that the share of traffic the candidate
// serves stays the rollout's percentage, anonymous traffic included.
func (s *split) in(req *http.Request) bool {
	key := s.userKey.Of(req)
	if key == "" {
		return rand.Float64()*100 < s.percent
	}
	if _, ok := s.users[key]; ok {
		return true
	}
	return fiat.InPercent(s.seed, key, s.percent)
}

// addRoutes adds env's routes to routes. r.mu is held.
func (r *Router) addRoutes(routes map[envKey]*route, env fiat.Env) error {
	lookup := func(service string, id fiat.Hash) (*version, error) {
		v := r.versions[id]
		if v == nil {
			return nil, fmt.Errorf("router: env %s uses version %s of %s, which was never added", env.Name, id, service)
		}
		return v, nil
	}
	for service, id := range env.Services {
		v, err := lookup(service, id)
		if err != nil {
			return err
		}
		routes[envKey{env.Name, service}] = &route{current: v}
	}
	for _, ro := range env.Rollouts {
		s := &split{seed: ro.ID, percent: ro.Percent, users: make(map[string]struct{}, len(ro.Users)), userKey: env.UserKeySource()}
		for _, u := range ro.Users {
			s.users[u] = struct{}{}
		}
		for service, id := range ro.Candidates {
			v, err := lookup(service, id)
			if err != nil {
				return err
			}
			key := envKey{env.Name, service}
			rt := &route{candidate: v, split: s}
			if current := routes[key]; current != nil {
				rt.current = current.current
			}
			routes[key] = rt
		}
	}
	return nil
}

// Stats is what the version id has served on this node so far.
func (r *Router) Stats(id fiat.Hash) metrics.Stats {
	r.mu.Lock()
	v := r.versions[id]
	r.mu.Unlock()
	if v == nil {
		return metrics.Stats{}
	}
	return v.metricsOf(r.cfg.Metrics).Stats()
}
