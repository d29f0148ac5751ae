package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.starlark.net/starlark"
)

// services is the `services` global: one member per service the version
// uses (uses = [...] in fiat.toml), each calling exactly the version of it
// that this version was deployed with.
type services struct {
	members starlark.StringDict
}

// newServices makes `services` of a version that calls the handlers uses,
// by service.
func newServices(uses map[string]http.Handler) *services {
	s := &services{members: starlark.StringDict{}}
	for name, handler := range uses {
		s.members[name] = requestModule("services."+name, func(h *host) (context.Context, http.Handler, error) {
			ctx, err := h.callContext()
			return ctx, handler, err
		})
	}
	s.members.Freeze()
	return s
}

func (s *services) String() string        { return "<services>" }
func (s *services) Type() string          { return "services" }
func (s *services) Freeze()               {}
func (s *services) Truth() starlark.Bool  { return true }
func (s *services) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: services") }
func (s *services) AttrNames() []string   { return s.members.Keys() }

func (s *services) Attr(name string) (starlark.Value, error) {
	if member, ok := s.members[name]; ok {
		return member, nil
	}
	uses := "uses no service"
	if len(s.members) > 0 {
		uses = "uses only " + strings.Join(s.members.Keys(), ", ")
	}
	return nil, starlark.NoSuchAttrError(fmt.Sprintf("services.%s: this service %s: add %q to uses in fiat.toml to call it", name, uses, name))
}

// callContext is the context of a call to a used service: it ends with
// the running request or test.
func (h *host) callContext() (context.Context, error) {
	ctx := h.ctx
	if h.req != nil {
		ctx = h.req.Context()
	}
	if ctx == nil || h.routes != nil {
		return nil, errors.New("services are called by handlers and tests, not at the top level of a module")
	}
	return ctx, nil
}

// send makes a request to handler to, in process, and returns its response
// as a value. The request ends at the run's time limit; its response is
// charged to the thread's memory budget, and may not be larger.
func (h *host) send(ctx context.Context, fn string, to http.Handler, method, path string, body starlark.Value, headers *starlark.Dict) (starlark.Value, error) {
	if !h.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, h.deadline)
		defer cancel()
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%s: path %q must start with \"/\"", fn, path)
	}
	header, err := headerOf(fn, headers)
	if err != nil {
		return nil, err
	}
	text, isJSON, err := bodyText(&h.thread, fn, body)
	if err != nil {
		return nil, err
	}
	if isJSON && header.Get("Content-Type") == "" {
		header["Content-Type"] = applicationJSON
	}
	req, err := http.NewRequestWithContext(ctx, method, path, strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", fn, err)
	}
	req.Header = header
	// The body is recorded, then copied to a string: it may take half of
	// what the thread has left.
	left := h.app.prog.memory() - min(h.thread.Allocs, h.app.prog.memory())
	rec := &recorder{header: http.Header{}, limit: left / 2}
	to.ServeHTTP(rec, req)
	if rec.overLimit {
		h.stop(memoryLimit)
		return nil, fmt.Errorf("%s %s: the response is larger than what is left of the memory budget", fn, path)
	}
	if err := h.thread.AddAllocs(2 * uint64(rec.body.Len())); err != nil {
		return nil, err
	}
	answer := rec.body.String()
	if rec.status() >= http.StatusInternalServerError {
		h.noteFailure(method, path, rec.status(), answer)
	}
	if err := ctx.Err(); err != nil && errors.Is(err, context.DeadlineExceeded) && h.timer != nil {
		h.stop(timeLimit)
		return nil, fmt.Errorf("%s %s: %w", fn, path, err)
	}
	return &response{status: rec.status(), header: rec.header, body: answer}, nil
}

// recorder records a response in memory, up to limit bytes of body.
type recorder struct {
	header    http.Header
	code      int
	body      bytes.Buffer
	limit     uint64
	overLimit bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if uint64(r.body.Len())+uint64(len(b)) > r.limit {
		r.overLimit = true
		return 0, errors.New("the response is larger than the caller's memory budget allows")
	}
	return r.body.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
