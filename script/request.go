package script

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.starlark.net/starlark"
)

// request is the value a handler is called with. Its attributes are built
// on first use, so a handler pays only for what it reads.
type request struct {
	http  *http.Request
	route *route
	// thread runs the handler, and is charged for the body.
	thread *starlark.Thread

	params, query, headers *starlark.Dict
	bodyRead               bool
	body                   string
	bodyErr                error
}

var requestAttrs = []string{"body", "headers", "json", "method", "params", "path", "query"}

func (r *request) String() string        { return "<request " + r.http.Method + " " + r.http.URL.Path + ">" }
func (r *request) Type() string          { return "request" }
func (r *request) Freeze()               {}
func (r *request) Truth() starlark.Bool  { return true }
func (r *request) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: request") }
func (r *request) AttrNames() []string   { return requestAttrs }

func (r *request) Attr(name string) (starlark.Value, error) {
	switch name {
	case "method":
		return starlark.String(r.http.Method), nil
	case "path":
		return starlark.String(r.http.URL.Path), nil
	case "params":
		if r.params == nil {
			r.params = starlark.NewDict(len(r.route.params))
			for _, name := range r.route.params {
				r.params.SetKey(starlark.String(name), starlark.String(r.http.PathValue(name)))
			}
		}
		return r.params, nil
	case "query":
		if r.query == nil {
			r.query = queryDict(r.http.URL.Query())
		}
		return r.query, nil
	case "headers":
		if r.headers == nil {
			r.headers = headerDict(r.http.Header)
		}
		return r.headers, nil
	case "body":
		body, err := r.readBody()
		if err != nil {
			return nil, err
		}
		return starlark.String(body), nil
	case "json":
		return starlark.NewBuiltin("request.json", requestJSON).BindReceiver(r), nil
	}
	return nil, nil
}

// readBody reads the body once, charging the thread for it. It fails with an
// *http.MaxBytesError when the body is larger than the router allows.
func (r *request) readBody() (string, error) {
	if !r.bodyRead && r.http.Body != nil {
		data, err := io.ReadAll(r.http.Body)
		if err == nil {
			err = r.thread.AddAllocs(2 * uint64(len(data))) // read, then copied to a string
		}
		r.body, r.bodyErr = string(data), err
	}
	r.bodyRead = true
	if r.bodyErr != nil {
		return "", fmt.Errorf("request.body: %w", r.bodyErr)
	}
	return r.body, nil
}

func requestJSON(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	body, err := b.Receiver().(*request).readBody()
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(thread, b.Name(), body)
	if err != nil {
		return nil, badRequest{err}
	}
	return v, nil
}

// badRequest is a handler's error that the request caused: its body is
// not what the handler asked for. It answers 400.
type badRequest struct{ error }

func (e badRequest) Unwrap() error { return e.error }

// queryDict maps each query parameter to its first value, in sorted order
// so that the same request always gives the same dict.
func queryDict(query url.Values) *starlark.Dict {
	d := starlark.NewDict(len(query))
	for _, name := range slices.Sorted(maps.Keys(query)) {
		d.SetKey(starlark.String(name), starlark.String(query[name][0]))
	}
	return d
}

// headerDict maps each header to its values, joined as HTTP defines
// equivalent. Names are lowercase, as HTTP/2 writes them.
func headerDict(header http.Header) *starlark.Dict {
	d := starlark.NewDict(len(header))
	for _, name := range slices.Sorted(maps.Keys(header)) {
		d.SetKey(starlark.String(strings.ToLower(name)), starlark.String(strings.Join(header[name], ", ")))
	}
	return d
}
