package router

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/fiatdev/fiat"
)

// flagSet is one env's flags as the router serves them, made once per
// change.
type flagSet struct {
	// flags are sorted by name; at most fiat.MaxFlags, so that a request
	// keeps what it evaluated in one word.
	flags   []fiat.Flag
	index   map[string]int
	names   []string
	userKey fiat.UserKeySource
}

func newFlagSet(env fiat.Env) *flagSet {
	if len(env.Flags) == 0 {
		return nil
	}
	s := &flagSet{flags: env.Flags, index: make(map[string]int, len(env.Flags)), userKey: env.UserKeySource()}
	for i, f := range env.Flags {
		s.index[f.Name] = i
		s.names = append(s.names, f.Name)
	}
	return s
}

// evaluation is the flags of one request: each is evaluated when first
// read and stays as it was for the rest of the request.
type evaluation struct {
	// ctx is the request's context, carrying the evaluation itself.
	ctx fiat.FlagsContext
	set *flagSet
	req *http.Request
	// done has the bit of each flag evaluated, on of each that is on.
	done, on atomic.Uint64
	keyOnce  sync.Once
	key      string
}

func (e *evaluation) Flag(name string) bool {
	i, ok := e.set.index[name]
	if !ok {
		return false
	}
	bit := uint64(1) << i
	if e.done.Load()&bit == 0 {
		e.keyOnce.Do(func() { e.key = e.set.userKey.Of(e.req) })
		if e.set.flags[i].Evaluate(e.req, e.key) {
			e.on.Or(bit)
		}
		e.done.Or(bit)
	}
	return e.on.Load()&bit != 0
}

func (e *evaluation) Header() string {
	return fiat.FlagsHeaderOf(e.set.names, e.Flag)
}

// withFlags is req carrying the flags of env, if it has any, to evaluate
// for it. A Fiat-Flags header req brings is removed: only fiat says what
// flags a request has.
func withFlags(req *http.Request, table *envTable, env string) *http.Request {
	if _, spoofed := req.Header[fiat.FlagsHeader]; spoofed {
		delete(req.Header, fiat.FlagsHeader)
	}
	set := table.flags[env]
	if set == nil {
		return req
	}
	e := &evaluation{set: set, req: req}
	e.ctx = fiat.FlagsContext{Context: req.Context(), Flags: e}
	return req.WithContext(&e.ctx)
}
