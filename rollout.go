package fiat

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Rollout splits an env's traffic between the versions some of its
// services are at and candidate versions of them. The services deployed
// together roll out together: a user is in the rollout or not, and gets
// every candidate or none. A user is in when the user's key is in Users or
// within Percent of the rollout's users (Bucket seeded by ID), so raising
// Percent only adds users.
type Rollout struct {
	// ID names the rollout and seeds the bucketing of its users.
	ID string `json:"id"`
	// Candidates maps each service rolling out to its candidate version. A
	// service the env does not have yet is served to the rollout's users
	// only.
	Candidates map[string]Hash `json:"candidates"`
	// Percent is the share of users in the rollout, 0 to 100.
	Percent float64 `json:"percent"`
	// Users are user keys always in the rollout.
	Users []string `json:"users,omitempty"`
	// Auto, if set, advances the rollout in steps, or aborts it, by itself.
	Auto *AutoPlan `json:"auto,omitempty"`
	// Started is when the rollout started; Changed when its Percent, Users
	// or Auto last changed, which starts an auto rollout's step.
	Started time.Time `json:"started"`
	Changed time.Time `json:"changed"`
	// Revision counts the changes made to the rollout since it started. A
	// change decided on one revision is refused once another came first,
	// so that two nodes advancing an auto rollout at once make one step.
	Revision int `json:"revision"`
	// Verdict says why an auto rollout last advanced, held or ended.
	Verdict string `json:"verdict,omitempty"`
}

// RolloutID is the id of a rollout of candidates: the same candidates have
// the same id, so rolling them out again after an abort puts the same
// users in at each percentage.
func RolloutID(candidates map[string]Hash) string {
	h := sha256.New()
	for _, service := range slices.Sorted(maps.Keys(candidates)) {
		fmt.Fprintf(h, "%s=%s\n", service, candidates[service])
	}
	return hashEncoding.EncodeToString(h.Sum(nil))[:ShortLen]
}

// Limits of a rollout.
const (
	MaxRolloutUsers  = 1000
	MaxUserKeyLen    = 256
	MaxRolloutSteps  = 20
	MinRolloutStep   = 100 * time.Millisecond
	maxRolloutIDLen  = 64
	percentPrecision = 100 // a percentage is kept to 1/percentPrecision
)

// Check says what is wrong with r, if anything, as a user can fix it.
func (r Rollout) Check() error {
	if r.ID == "" || len(r.ID) > maxRolloutIDLen {
		return fmt.Errorf("rollout id %q: give 1 to %d characters", r.ID, maxRolloutIDLen)
	}
	if len(r.Candidates) == 0 {
		return fmt.Errorf("rollout %s has no candidate versions: deploy with --rollout to start one", r.ID)
	}
	for service := range r.Candidates {
		if err := CheckServiceName(service); err != nil {
			return err
		}
	}
	if err := CheckPercent(r.Percent); err != nil {
		return err
	}
	if err := CheckUsers(r.Users); err != nil {
		return err
	}
	if r.Auto != nil {
		return r.Auto.Check()
	}
	return nil
}

// CheckPercent says what is wrong with a rollout's percentage.
func CheckPercent(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return fmt.Errorf("percent %v: give a share of users from 0 to 100, e.g. 5 or 0.5", p)
	}
	if scaled := p * percentPrecision; math.Abs(scaled-math.Round(scaled)) > 1e-6 {
		return fmt.Errorf("percent %v: give it to a hundredth at most, e.g. 0.25", p)
	}
	return nil
}

// CheckUsers says what is wrong with the user list of a rollout or flag.
func CheckUsers(users []string) error {
	if len(users) > MaxRolloutUsers {
		return fmt.Errorf("%d users: list at most %d (use a percentage for more)", len(users), MaxRolloutUsers)
	}
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u == "" || strings.TrimSpace(u) != u:
			return fmt.Errorf("user key %q: give user keys without surrounding spaces, as requests send them", u)
		case len(u) > MaxUserKeyLen:
			return fmt.Errorf("user key %q...: at most %d bytes", u[:16], MaxUserKeyLen)
		case seen[u]:
			return fmt.Errorf("user key %q is listed twice", u)
		}
		seen[u] = true
	}
	return nil
}

// RolloutOf returns the rollout that service is rolling out in, or nil.
func (e Env) RolloutOf(service string) *Rollout {
	for i, r := range e.Rollouts {
		if _, ok := r.Candidates[service]; ok {
			return &e.Rollouts[i]
		}
	}
	return nil
}

// Routed is every version the env sends requests to: its services' and
// its rollouts' candidates. Each runs while the env routes to it.
func (e Env) Routed() iter.Seq[Hash] {
	return func(yield func(Hash) bool) {
		for _, id := range e.Services {
			if !yield(id) {
				return
			}
		}
		for _, r := range e.Rollouts {
			for _, id := range r.Candidates {
				if !yield(id) {
					return
				}
			}
		}
	}
}

// AutoPlan is how an auto rollout advances: at each step, once Interval
// has passed since the step began, it goes on to the next step if every
// candidate is no worse than the version it replaces, and aborts as soon as
// one is clearly worse (see Judge). After the last step it finishes.
type AutoPlan struct {
	// Steps are the percentages the rollout goes through, ascending.
	Steps    []float64     `json:"steps"`
	Interval time.Duration `json:"-"`
	// MinRequests is how many requests a candidate must have served in a
	// step, on one node, to be judged.
	MinRequests int `json:"min_requests"`
	// ErrorMargin is by how many percentage points a candidate's error
	// rate may exceed the current version's before it is worse.
	ErrorMargin float64 `json:"error_margin"`
	// LatencyFactor is how many times the current version's p99 latency a
	// candidate's may be before it is worse.
	LatencyFactor float64 `json:"latency_factor"`
}

// DefaultAutoPlan is the plan of `fiat deploy --auto`.
var DefaultAutoPlan = AutoPlan{
	Steps:         []float64{1, 5, 25, 50, 100},
	Interval:      2 * time.Minute,
	MinRequests:   100,
	ErrorMargin:   1,
	LatencyFactor: 2,
}

// minLatencyGap is how much slower than the current version a candidate's
// p99 must be, besides LatencyFactor times, to be worse: a script that
// answers in 0.3 ms instead of 0.1 ms is not a regression anyone sees.
const minLatencyGap = 10 * time.Millisecond

type autoPlanJSON struct {
	autoPlanAlias
	Interval string `json:"interval"`
}

type autoPlanAlias AutoPlan

func (p AutoPlan) MarshalJSON() ([]byte, error) {
	return json.Marshal(autoPlanJSON{autoPlanAlias(p), p.Interval.String()})
}

func (p *AutoPlan) UnmarshalJSON(data []byte) error {
	var raw autoPlanJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*p = AutoPlan(raw.autoPlanAlias)
	d, err := time.ParseDuration(raw.Interval)
	if err != nil {
		return fmt.Errorf("auto rollout: interval: %w", err)
	}
	p.Interval = d
	return nil
}

// Check says what is wrong with the plan, if anything.
func (p AutoPlan) Check() error {
	if len(p.Steps) == 0 || len(p.Steps) > MaxRolloutSteps {
		return fmt.Errorf("auto rollout: %d steps: give 1 to %d percentages, e.g. 1,5,25,50,100", len(p.Steps), MaxRolloutSteps)
	}
	for i, s := range p.Steps {
		if err := CheckPercent(s); err != nil {
			return fmt.Errorf("auto rollout: step %w", err)
		}
		if s == 0 || i > 0 && s <= p.Steps[i-1] {
			return fmt.Errorf("auto rollout: steps %v: give percentages above 0, each larger than the one before", p.Steps)
		}
	}
	switch {
	case p.Interval < MinRolloutStep:
		return fmt.Errorf("auto rollout: interval %s: give at least %s, e.g. 5m", p.Interval, MinRolloutStep)
	case p.MinRequests < 1:
		return fmt.Errorf("auto rollout: min requests %d: give at least 1 (the requests a candidate serves in a step before it is judged)", p.MinRequests)
	case math.IsNaN(p.ErrorMargin) || p.ErrorMargin < 0 || p.ErrorMargin > 100:
		return fmt.Errorf("auto rollout: error margin %v: give 0 to 100 percentage points", p.ErrorMargin)
	case math.IsNaN(p.LatencyFactor) || p.LatencyFactor < 1:
		return fmt.Errorf("auto rollout: latency factor %v: give 1 or more (how many times slower a candidate's p99 may be)", p.LatencyFactor)
	}
	return nil
}

// Next is the step after percent, or ok false if percent is at or past
// the last step: the rollout finishes.
func (p AutoPlan) Next(percent float64) (next float64, ok bool) {
	for _, s := range p.Steps {
		if s > percent {
			return s, true
		}
	}
	return 0, false
}

// Window is what one version served over one step of a rollout, on one
// node.
type Window struct {
	Requests uint64 `json:"requests"`
	// Errors are the requests answered 5xx, a handler's failure included.
	Errors uint64 `json:"errors"`
	// P99 is the 99th percentile of the time to answer, 0 with no request.
	P99 time.Duration `json:"p99"`
}

// ErrorRate is the share of requests that failed, 0 with none.
func (w Window) ErrorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Judgement is what Judge says of a candidate.
type Judgement struct {
	// Enough is whether the candidate served enough requests to judge.
	Enough bool
	// Worse is whether it is clearly worse than the current version.
	Worse bool
	Why   string
}

// Judge compares a candidate with the version it replaces over the same
// window. The candidate is judged once it has MinRequests requests, and
// is worse when either
//
//   - its error rate exceeds the current version's by more than
//     ErrorMargin points and by more than three standard errors of the
//     candidate's rate, were it the current's (so a few unlucky requests
//     of a service that fails now and then do not abort it), or
//   - the current version served MinRequests requests too and the
//     candidate's p99 latency is more than LatencyFactor times the
//     current's and more than 10 ms above it.
//
// A candidate with no current version (a new service) is compared with a
// version that never fails, and its latency is not judged.
func (p AutoPlan) Judge(current, candidate Window) Judgement {
	if candidate.Requests < uint64(p.MinRequests) {
		return Judgement{Why: fmt.Sprintf("%d of the %d requests needed to judge", candidate.Requests, p.MinRequests)}
	}
	cur, cand := current.ErrorRate(), candidate.ErrorRate()
	margin := max(p.ErrorMargin/100, 3*math.Sqrt(cur*(1-cur)/float64(candidate.Requests)))
	errors := fmt.Sprintf("%.2f%% errors over %d requests vs %.2f%% over %d", 100*cand, candidate.Requests, 100*cur, current.Requests)
	if cand > cur+margin {
		return Judgement{Enough: true, Worse: true, Why: errors + fmt.Sprintf(" (more than %.2f points worse)", 100*margin)}
	}
	latency := fmt.Sprintf("p99 %s vs %s", candidate.P99.Round(time.Microsecond), current.P99.Round(time.Microsecond))
	if current.Requests >= uint64(p.MinRequests) && float64(candidate.P99) > p.LatencyFactor*float64(current.P99) && candidate.P99-current.P99 > minLatencyGap {
		return Judgement{Enough: true, Worse: true, Why: latency + fmt.Sprintf(" (more than %g times slower)", p.LatencyFactor)}
	}
	return Judgement{Enough: true, Why: errors + ", " + latency}
}
