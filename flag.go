package fiat

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Flag is a named rule, evaluated per request, that code reads to turn a
// feature on or off without a deploy: flag("name") in a script, the
// Fiat-Flags header in a process.
//
// A request gets the flag when, in this order:
//
//  1. the flag is off: never;
//  2. its user key is in Users: always;
//  3. one of its headers is as a Match says: always;
//  4. otherwise, when its user key is within Percent of the users
//     (InPercent seeded by the flag's name, so raising Percent only adds
//     users). A request with no user key has nothing to be sticky on: it
//     gets the flag only at 100%.
//
// A flag that is on with no users, no match and 100% is on for everyone.
type Flag struct {
	Name string `json:"name"`
	On   bool   `json:"on"`
	// Percent is the share of the other users who get the flag, 0 to 100.
	Percent float64 `json:"percent"`
	// Users are user keys who always get the flag, sorted (as
	// FlagPatch.Apply leaves them), so that a request finds its own in a
	// long list without allocating.
	Users []string `json:"users,omitempty"`
	// Match gives the flag to requests that carry a header with a value.
	Match []HeaderMatch `json:"match,omitempty"`
}

// HeaderMatch is a request header and the value that matches it.
type HeaderMatch struct {
	// Header is canonical, as http.CanonicalHeaderKey writes it.
	Header string `json:"header"`
	Value  string `json:"value"`
}

func (m HeaderMatch) String() string { return "header:" + m.Header + "=" + m.Value }

// Limits of flags.
const (
	// MaxFlags bounds the flags of one env: every change record carries
	// them, and a request caches what it evaluated in one word.
	MaxFlags       = 64
	MaxFlagNameLen = 64
	MaxFlagMatches = 16
	maxMatchValue  = 256
)

// FlagsHeader is the request header that tells a process service the
// flags evaluated for the request: "name=on, other=off". Only fiat sets
// it: the router removes it from every public request.
const FlagsHeader = "Fiat-Flags"

// Evaluate reports whether the request r, sent by the user userKey ("" for
// none), gets the flag, as Flag describes. r may be nil: no header
// matches. It allocates nothing.
func (f *Flag) Evaluate(r *http.Request, userKey string) bool {
	return f.Decide(r, userKey).On()
}

// Rule is the rule of a flag that decided whether a request gets it.
type Rule uint8

const (
	// RuleOff: the flag is off.
	RuleOff Rule = iota
	// RuleUser: the user is in the flag's Users.
	RuleUser
	// RuleMatch: the request's header is as one of the flag's Match says.
	RuleMatch
	// RuleEveryone: the flag is on for 100% of users.
	RuleEveryone
	// RulePercent: the user is within the flag's Percent.
	RulePercent
	// RuleNotInPercent: the user is not within the flag's Percent.
	RuleNotInPercent
	// RuleNoUserKey: the request has no user key to be within a
	// percentage below 100.
	RuleNoUserKey
)

// On reports whether the request gets the flag.
func (r Rule) On() bool { return r >= RuleUser && r <= RulePercent }

// Decide is the rule that decides whether r, sent by userKey, gets the
// flag, as Evaluate, which it serves, says.
func (f *Flag) Decide(r *http.Request, userKey string) Rule {
	if !f.On {
		return RuleOff
	}
	if userKey != "" {
		if _, listed := slices.BinarySearch(f.Users, userKey); listed {
			return RuleUser
		}
	}
	if r != nil {
		for _, m := range f.Match {
			for _, v := range r.Header[m.Header] {
				if v == m.Value {
					return RuleMatch
				}
			}
		}
	}
	switch {
	case f.Percent >= 100:
		return RuleEveryone
	case userKey == "":
		return RuleNoUserKey
	case InPercent(f.Name, userKey, f.Percent):
		return RulePercent
	}
	return RuleNotInPercent
}

// CheckFlagName says what is wrong with a flag name, if anything. Flag
// names are lowercase letters, digits, "_" and "-", starting with a
// letter, so that the Fiat-Flags header can list them.
func CheckFlagName(name string) error {
	// Scripts check every name they read: the message is made only for
	// a name that is wrong.
	fix := func() string {
		return fmt.Sprintf("flag names use lowercase letters, digits, _ and -, start with a letter and are at most %d characters, e.g. new_checkout", MaxFlagNameLen)
	}
	switch {
	case name == "":
		return fmt.Errorf("flag name is empty: %s", fix())
	case len(name) > MaxFlagNameLen:
		return fmt.Errorf("flag name %q... is %d characters long: %s", name[:16], len(name), fix())
	case name[0] < 'a' || name[0] > 'z':
		return fmt.Errorf("flag name %q must start with a lowercase letter: %s", name, fix())
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("flag name %q has %q: %s", name, c, fix())
		}
	}
	return nil
}

// CheckFlag says what is wrong with f, if anything, as a user can fix it.
func CheckFlag(f Flag) error {
	if err := CheckFlagName(f.Name); err != nil {
		return err
	}
	if err := CheckPercent(f.Percent); err != nil {
		return fmt.Errorf("flag %s: %w", f.Name, err)
	}
	if err := CheckUsers(f.Users); err != nil {
		return fmt.Errorf("flag %s: %w", f.Name, err)
	}
	if !slices.IsSorted(f.Users) {
		return fmt.Errorf("flag %s: its users are not sorted (FlagPatch.Apply sorts them)", f.Name)
	}
	if len(f.Match) > MaxFlagMatches {
		return fmt.Errorf("flag %s: %d header matches: give at most %d", f.Name, len(f.Match), MaxFlagMatches)
	}
	for i, m := range f.Match {
		if err := m.check(); err != nil {
			return fmt.Errorf("flag %s: %w", f.Name, err)
		}
		if slices.Contains(f.Match[:i], m) {
			return fmt.Errorf("flag %s: %s is given twice", f.Name, m)
		}
	}
	return nil
}

func (m HeaderMatch) check() error {
	const syntax = "write a header match as header:NAME=VALUE, e.g. header:X-Beta=1"
	switch {
	case !isToken(m.Header):
		return fmt.Errorf("header match %q: %q is not a header name: %s", m, m.Header, syntax)
	case m.Header != http.CanonicalHeaderKey(m.Header):
		return fmt.Errorf("header match %q: header %q is not canonical (ParseHeaderMatch makes it so): write %s", m, m.Header, http.CanonicalHeaderKey(m.Header))
	case m.Header == FlagsHeader:
		return fmt.Errorf("header match %q: fiat sets %s itself, and removes it from every request", m, FlagsHeader)
	case m.Value == "" || len(m.Value) > maxMatchValue:
		return fmt.Errorf("header match %q: give a value of 1 to %d bytes: %s", m, maxMatchValue, syntax)
	}
	return nil
}

// isToken reports whether s is a header name: an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// ParseHeaderMatch reads "header:X-Beta=1".
func ParseHeaderMatch(s string) (HeaderMatch, error) {
	rest, ok := strings.CutPrefix(s, "header:")
	name, value, hasValue := strings.Cut(rest, "=")
	if !ok || !hasValue {
		return HeaderMatch{}, fmt.Errorf("header match %q: write it as header:NAME=VALUE, e.g. header:X-Beta=1", s)
	}
	m := HeaderMatch{Header: http.CanonicalHeaderKey(name), Value: value}
	return m, m.check()
}

// FlagPatch changes a flag: each field given replaces the flag's, the
// others are kept.
type FlagPatch struct {
	On      *bool          `json:"on,omitempty"`
	Percent *float64       `json:"percent,omitempty"`
	Users   *[]string      `json:"users,omitempty"`
	Match   *[]HeaderMatch `json:"match,omitempty"`
}

// Apply returns the flag name as p leaves old, or, if old is nil, the new
// flag p makes: on unless p says off; for 100% of users if p gives no
// users, match or percent, else for those it gives. The result is
// checked.
func (p FlagPatch) Apply(name string, old *Flag) (Flag, error) {
	f := Flag{Name: name, On: true, Percent: 100}
	if old != nil {
		f = *old
	} else if p.Users != nil || p.Match != nil {
		f.Percent = 0
	}
	if p.On != nil {
		f.On = *p.On
	}
	if p.Percent != nil {
		f.Percent = *p.Percent
	}
	if p.Users != nil {
		f.Users = slices.Sorted(slices.Values(*p.Users))
	}
	if p.Match != nil {
		f.Match = slices.Clone(*p.Match)
	}
	if len(f.Users) == 0 {
		f.Users = nil
	}
	if len(f.Match) == 0 {
		f.Match = nil
	}
	return f, CheckFlag(f)
}

// FlagOf returns env's flag name.
func (e Env) FlagOf(name string) (Flag, bool) {
	i, found := slices.BinarySearchFunc(e.Flags, name, func(f Flag, name string) int { return strings.Compare(f.Name, name) })
	if !found {
		return Flag{}, false
	}
	return e.Flags[i], true
}

// UserKeySource is where requests to env carry the user key: its own
// source if set, else DefaultUserKey.
func (e Env) UserKeySource() UserKeySource {
	if e.UserKey != nil {
		return *e.UserKey
	}
	return DefaultUserKey
}

// Flags are the flags evaluated for one request, each when it is first
// read and then the same for the rest of the request. Safe for concurrent
// use.
type Flags interface {
	// Flag reports whether the request gets the flag name; false for a
	// flag the env does not have.
	Flag(name string) bool
	// Header is every flag of the env as the Fiat-Flags header gives it:
	// "name=on, other=off", sorted by name; "" for an env with none.
	Header() string
}

type flagsKey struct{}

// WithFlags returns ctx carrying flags, which FlagsFrom returns.
func WithFlags(ctx context.Context, flags Flags) context.Context {
	return &FlagsContext{ctx, flags}
}

// FlagsContext is a context carrying Flags, as WithFlags makes one. The
// router embeds one in the flags it evaluates for a request, which saves
// the request an allocation.
type FlagsContext struct {
	context.Context
	Flags Flags
}

func (c *FlagsContext) Value(key any) any {
	if key == (flagsKey{}) {
		return c.Flags
	}
	return c.Context.Value(key)
}

// FlagsFrom returns the flags ctx carries: a request's, as the router
// evaluates them, or, in tests, forced. With none, every flag is off.
func FlagsFrom(ctx context.Context) Flags {
	if flags, ok := ctx.Value(flagsKey{}).(Flags); ok {
		return flags
	}
	return noFlags{}
}

type noFlags struct{}

func (noFlags) Flag(string) bool { return false }
func (noFlags) Header() string   { return "" }

// FlagsHeaderOf writes the Fiat-Flags header of the flags named names, in
// that order, each as on reports it.
func FlagsHeaderOf(names []string, on func(name string) bool) string {
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		if on(name) {
			b.WriteString("=on")
		} else {
			b.WriteString("=off")
		}
	}
	return b.String()
}

// ParseFlagsHeader reads a Fiat-Flags header, "name=on, other=off", as the
// flags it lists: a process passes the flags of its request on to the
// services it calls by sending the header it was given. Parts that are not
// name=on or name=off are ignored: every flag they would name is off.
func ParseFlagsHeader(header string) Flags {
	var f listedFlags
	for part := range strings.SplitSeq(header, ",") {
		name, state, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && CheckFlagName(name) == nil && (state == "on" || state == "off") && !slices.Contains(f.names, name) {
			f.names = append(f.names, name)
			f.on = append(f.on, state == "on")
		}
	}
	return f
}

// listedFlags are flags as a Fiat-Flags header lists them.
type listedFlags struct {
	names []string
	on    []bool
}

func (f listedFlags) Flag(name string) bool {
	i := slices.Index(f.names, name)
	return i >= 0 && f.on[i]
}

func (f listedFlags) Header() string {
	names := slices.Sorted(slices.Values(f.names))
	return FlagsHeaderOf(names, f.Flag)
}
