package fiat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJudge checks the auto rollout's rule on the cases it must tell
// apart: too few requests, a candidate that fails, one that fails now and
// then like the current version, one that is slow, and one slower in a way
// nobody sees.
func TestJudge(t *testing.T) {
	plan := DefaultAutoPlan
	ms := time.Millisecond
	for _, c := range []struct {
		name               string
		current, candidate Window
		enough, worse      bool
		why                string
	}{
		{"too few requests", Window{Requests: 5000}, Window{Requests: 99, Errors: 99}, false, false, "99 of the 100"},
		{"fails", Window{Requests: 5000, Errors: 5}, Window{Requests: 100, Errors: 10}, true, true, "errors"},
		{"fails where nothing did", Window{Requests: 5000}, Window{Requests: 100, Errors: 2}, true, true, "errors"},
		{"one error where nothing failed", Window{Requests: 5000}, Window{Requests: 100, Errors: 1}, true, false, ""},
		// 3% of errors at current's 2% is within three standard errors
		// of 100 requests (4.2 points), though above the margin.
		{"as flaky as current", Window{Requests: 5000, Errors: 100}, Window{Requests: 100, Errors: 3}, true, false, ""},
		{"much flakier than current", Window{Requests: 5000, Errors: 100}, Window{Requests: 1000, Errors: 80}, true, true, "errors"},
		{"new service, no current", Window{}, Window{Requests: 100}, true, false, ""},
		{"slow", Window{Requests: 5000, P99: 20 * ms}, Window{Requests: 100, P99: 200 * ms}, true, true, "times slower"},
		{"slower, unseen", Window{Requests: 5000, P99: ms / 10}, Window{Requests: 100, P99: ms}, true, false, ""},
		{"slow, current unmeasured", Window{Requests: 10, P99: ms}, Window{Requests: 100, P99: 200 * ms}, true, false, ""},
	} {
		j := plan.Judge(c.current, c.candidate)
		if j.Enough != c.enough || j.Worse != c.worse || !strings.Contains(j.Why, c.why) {
			t.Errorf("%s: %+v, want enough %v, worse %v, saying %q", c.name, j, c.enough, c.worse, c.why)
		}
	}
}

func TestAutoPlanSteps(t *testing.T) {
	plan := DefaultAutoPlan
	for _, c := range []struct {
		at, next float64
		more     bool
	}{{0, 1, true}, {1, 5, true}, {7, 25, true}, {50, 100, true}, {100, 0, false}} {
		if next, more := plan.Next(c.at); next != c.next || more != c.more {
			t.Errorf("Next(%g) = %g, %v; want %g, %v", c.at, next, more, c.next, c.more)
		}
	}
	data, err := json.Marshal(plan)
	if err != nil || !strings.Contains(string(data), `"interval":"2m0s"`) {
		t.Fatalf("JSON: %s, %v", data, err)
	}
	var back AutoPlan
	if err := json.Unmarshal(data, &back); err != nil || back.Interval != plan.Interval || len(back.Steps) != len(plan.Steps) {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
}

func TestRolloutCheck(t *testing.T) {
	good := Rollout{ID: "r", Candidates: map[string]Hash{"api": "x"}, Percent: 12.5, Users: []string{"ada"}}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for want, r := range map[string]Rollout{
		"no candidate":   {ID: "r"},
		"0 to 100":       {ID: "r", Candidates: good.Candidates, Percent: 100.01},
		"a hundredth":    {ID: "r", Candidates: good.Candidates, Percent: 1.005},
		"listed twice":   {ID: "r", Candidates: good.Candidates, Users: []string{"a", "a"}},
		"spaces":         {ID: "r", Candidates: good.Candidates, Users: []string{" a"}},
		"rollout id":     {Candidates: good.Candidates},
		"service name":   {ID: "r", Candidates: map[string]Hash{"Api": "x"}},
		"at least 100ms": {ID: "r", Candidates: good.Candidates, Auto: &AutoPlan{Steps: []float64{10}, Interval: time.Millisecond, MinRequests: 1, LatencyFactor: 1}},
		"latency factor": {ID: "r", Candidates: good.Candidates, Auto: &AutoPlan{Steps: []float64{10}, Interval: time.Second, MinRequests: 1}},
		"each larger":    {ID: "r", Candidates: good.Candidates, Auto: &AutoPlan{Steps: []float64{10, 10}, Interval: time.Second, MinRequests: 1, LatencyFactor: 1}},
	} {
		if err := r.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%+v) = %v, want an error saying %q", r, err, want)
		}
	}
}

func TestRolloutIDIsTheCandidates(t *testing.T) {
	a := RolloutID(map[string]Hash{"api": "x", "web": "y"})
	if a != RolloutID(map[string]Hash{"web": "y", "api": "x"}) || a == RolloutID(map[string]Hash{"api": "x", "web": "z"}) || len(a) != ShortLen {
		t.Errorf("RolloutID is not a short hash of the candidates: %q", a)
	}
}
