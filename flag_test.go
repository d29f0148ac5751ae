package fiat

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func newFlag(t *testing.T, name string, p FlagPatch) Flag {
	t.Helper()
	f, err := p.Apply(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func request(header ...string) *http.Request {
	r, _ := http.NewRequest("GET", "/", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

// Raising a flag's percentage only adds users, and the share of users who
// get it is its percentage, within a tolerance.
func TestFlagPercentIsSticky(t *testing.T) {
	const users = 20000
	in := map[string]bool{}
	for _, percent := range []float64{10, 20, 50} {
		f := newFlag(t, "new_checkout", FlagPatch{Percent: &percent})
		n := 0
		for i := range users {
			key := fmt.Sprintf("user-%d", i)
			switch on := f.Evaluate(request(), key); {
			case on:
				n++
				in[key] = true
			case in[key]:
				t.Fatalf("%s got the flag at a lower percentage and not at %v%%", key, percent)
			}
		}
		if share := float64(n) * 100 / users; share < percent-1.5 || share > percent+1.5 {
			t.Errorf("%v%%: %.2f%% of users got the flag", percent, share)
		}
	}
}

func TestFlagRulesInOrder(t *testing.T) {
	f := newFlag(t, "beta", FlagPatch{Users: &[]string{"zoe", "ada", "grace"}, Match: &[]HeaderMatch{{"X-Beta", "1"}}})
	for _, c := range []struct {
		why  string
		r    *http.Request
		user string
		want bool
	}{
		{"a listed user", request(), "grace", true},
		{"a listed user, first", request(), "ada", true},
		{"a listed user, last", request(), "zoe", true},
		{"a user not listed, 0%", request(), "bob", false},
		{"the header matches", request("X-Beta", "1"), "bob", true},
		{"one of the header's values matches", request("X-Beta", "0", "X-Beta", "1"), "", true},
		{"the header's value differs", request("X-Beta", "2"), "bob", false},
		{"the header's value has a space more", request("X-Beta", "1 "), "bob", false},
		{"no request", nil, "bob", false},
	} {
		if got := f.Evaluate(c.r, c.user); got != c.want {
			t.Errorf("%s: got %v, want %v", c.why, got, c.want)
		}
	}
	f.On = false
	if f.Evaluate(request("X-Beta", "1"), "ada") {
		t.Error("a flag that is off is on for a listed user")
	}
	everyone := newFlag(t, "everyone", FlagPatch{})
	if !everyone.Evaluate(request(), "") || !everyone.Evaluate(nil, "bob") {
		t.Error("a flag on with no rule is off for someone")
	}
	half := newFlag(t, "half", FlagPatch{Percent: new(50.0)})
	if half.Evaluate(request(), "") {
		t.Error("a request with no user key got a flag at 50%")
	}
}

func TestFlagPatch(t *testing.T) {
	f := newFlag(t, "beta", FlagPatch{Users: &[]string{"b", "a"}})
	if !f.On || f.Percent != 0 || strings.Join(f.Users, ",") != "a,b" {
		t.Fatalf("new flag with users: %+v", f)
	}
	f, err := FlagPatch{Percent: new(20.0)}.Apply("beta", &f)
	if err != nil || f.Percent != 20 || len(f.Users) != 2 || !f.On {
		t.Fatalf("percent set: %+v, %v", f, err)
	}
	f, err = FlagPatch{On: new(false), Users: &[]string{}}.Apply("beta", &f)
	if err != nil || f.On || f.Users != nil || f.Percent != 20 {
		t.Fatalf("off, users emptied: %+v, %v", f, err)
	}
	if off := newFlag(t, "off", FlagPatch{On: new(false)}); off.On || off.Percent != 100 {
		t.Fatalf("new flag off: %+v", off)
	}
}

func TestFlagRefusesBadInput(t *testing.T) {
	long := strings.Repeat("u", MaxUserKeyLen+1)
	many := make([]string, MaxRolloutUsers+1)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	matches := make([]HeaderMatch, MaxFlagMatches+1)
	for i := range matches {
		matches[i] = HeaderMatch{"X-A", fmt.Sprint(i)}
	}
	for _, c := range []struct {
		name string
		p    FlagPatch
		want string
	}{
		{"", FlagPatch{}, "flag name is empty"},
		{"New", FlagPatch{}, "must start with a lowercase letter"},
		{"a b", FlagPatch{}, `has ' '`},
		{"a,b", FlagPatch{}, `has ','`},
		{"a=b", FlagPatch{}, `has '='`},
		{strings.Repeat("a", MaxFlagNameLen+1), FlagPatch{}, "characters long"},
		{"p", FlagPatch{Percent: new(101.0)}, "give a share of users from 0 to 100"},
		{"p", FlagPatch{Percent: new(-1.0)}, "give a share of users from 0 to 100"},
		{"p", FlagPatch{Percent: new(0.001)}, "to a hundredth"},
		{"u", FlagPatch{Users: &[]string{"a", "a"}}, "listed twice"},
		{"u", FlagPatch{Users: &[]string{" a"}}, "without surrounding spaces"},
		{"u", FlagPatch{Users: &[]string{""}}, "without surrounding spaces"},
		{"u", FlagPatch{Users: &[]string{long}}, "at most 256 bytes"},
		{"u", FlagPatch{Users: &many}, "list at most 1000"},
		{"m", FlagPatch{Match: &matches}, "at most 16"},
		{"m", FlagPatch{Match: &[]HeaderMatch{{"X-A", "1"}, {"X-A", "1"}}}, "given twice"},
		{"m", FlagPatch{Match: &[]HeaderMatch{{"X A", "1"}}}, "is not a header name"},
		{"m", FlagPatch{Match: &[]HeaderMatch{{"x-a", "1"}}}, "not canonical"},
		{"m", FlagPatch{Match: &[]HeaderMatch{{"X-A", ""}}}, "give a value"},
		{"m", FlagPatch{Match: &[]HeaderMatch{{FlagsHeader, "x"}}}, "fiat sets Fiat-Flags itself"},
	} {
		_, err := c.p.Apply(c.name, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: got %v, want an error saying %q", c.name, c.p, err, c.want)
		}
	}
	for _, bad := range []string{"X-Beta=1", "header:X-Beta", "header:=1", "header:X-Beta=", "cookie:a=1", "header:X Beta=1"} {
		if _, err := ParseHeaderMatch(bad); err == nil {
			t.Errorf("ParseHeaderMatch(%q) was accepted", bad)
		}
	}
	if m, err := ParseHeaderMatch("header:x-beta=a=b"); err != nil || m != (HeaderMatch{"X-Beta", "a=b"}) {
		t.Errorf("header:x-beta=a=b = %+v, %v", m, err)
	}
}

// A request evaluates a flag with no allocation, whatever rule decides.
func TestFlagEvaluateAllocatesNothing(t *testing.T) {
	f := newFlag(t, "beta", FlagPatch{Percent: new(30.0), Users: &[]string{"ada", "grace"}, Match: &[]HeaderMatch{{"X-Beta", "1"}}})
	r := request("X-Beta", "0")
	if n := testing.AllocsPerRun(100, func() {
		f.Evaluate(r, "grace")
		f.Evaluate(r, "bob")
		f.Evaluate(r, "")
	}); n != 0 {
		t.Errorf("Evaluate allocates %v times", n)
	}
}

func TestFlagsFromContext(t *testing.T) {
	if f := FlagsFrom(context.Background()); f.Flag("x") || f.Header() != "" {
		t.Error("a context without flags has a flag on")
	}
	on := map[string]bool{"b": true}
	got := FlagsHeaderOf([]string{"a", "b"}, func(name string) bool { return on[name] })
	if got != "a=off, b=on" {
		t.Errorf("header = %q", got)
	}
}

func TestEnvFlagOf(t *testing.T) {
	env := Env{Flags: []Flag{{Name: "a"}, {Name: "b", On: true}, {Name: "c"}}}
	if f, ok := env.FlagOf("b"); !ok || !f.On {
		t.Errorf("FlagOf(b) = %+v, %v", f, ok)
	}
	if _, ok := env.FlagOf("bb"); ok {
		t.Error("FlagOf found a flag the env does not have")
	}
	if env.UserKeySource() != DefaultUserKey {
		t.Error("an env without a user key source does not use the default")
	}
}
