package script

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fiatdev/fiat"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
)

// response is a response as a value: what response(...) makes for a
// handler to return, and what app.get and friends return to a test.
type response struct {
	status int
	header http.Header
	body   string
}

var responseAttrs = []string{"body", "headers", "json", "status"}

func (r *response) String() string        { return fmt.Sprintf("<response %d>", r.status) }
func (r *response) Type() string          { return "response" }
func (r *response) Freeze()               {}
func (r *response) Truth() starlark.Bool  { return true }
func (r *response) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: response") }
func (r *response) AttrNames() []string   { return responseAttrs }

func (r *response) Attr(name string) (starlark.Value, error) {
	switch name {
	case "status":
		return starlark.MakeInt(r.status), nil
	case "body":
		return starlark.String(r.body), nil
	case "headers":
		return headerDict(r.header), nil
	case "json":
		return starlark.NewBuiltin("response.json", responseJSON).BindReceiver(r), nil
	}
	return nil, nil
}

func responseJSON(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	return decodeJSON(thread, b.Name(), b.Receiver().(*response).body)
}

// responseBuiltin is response(status, body="", headers={}).
func responseBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var status int
	var body starlark.Value = starlark.String("")
	var headers *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "status", &status, "body?", &body, "headers?", &headers); err != nil {
		return nil, err
	}
	if status < 200 || status > 599 {
		return nil, fmt.Errorf("%s: status %d is not a status a handler answers with: give one from 200 to 599", b.Name(), status)
	}
	header, err := headerOf(b.Name(), headers)
	if err != nil {
		return nil, err
	}
	for name := range header {
		if fiat.IsReservedHeader(name) {
			return nil, fmt.Errorf("%s: header %s is fiat's to set, not a handler's: leave it out", b.Name(), name)
		}
	}
	text, isJSON, err := bodyText(thread, b.Name(), body)
	if err != nil {
		return nil, err
	}
	if text != "" && header.Get("Content-Type") == "" {
		header["Content-Type"] = textPlain
		if isJSON {
			header["Content-Type"] = applicationJSON
		}
	}
	return &response{status: status, header: header, body: text}, nil
}

// headerOf converts a dict of header names to values.
func headerOf(fn string, headers *starlark.Dict) (http.Header, error) {
	header := http.Header{}
	if headers == nil {
		return header, nil
	}
	for _, item := range headers.Items() {
		name, ok := starlark.AsString(item[0])
		if !ok {
			return nil, fmt.Errorf("%s: header name %s: got %s, want a string", fn, item[0], item[0].Type())
		}
		value, ok := starlark.AsString(item[1])
		if !ok {
			return nil, fmt.Errorf("%s: header %s: got %s, want a string", fn, name, item[1].Type())
		}
		header.Add(name, value)
	}
	return header, nil
}

// bodyText is a body given as a string, or as a dict or list sent as JSON.
func bodyText(thread *starlark.Thread, fn string, body starlark.Value) (text string, isJSON bool, err error) {
	switch body := body.(type) {
	case starlark.String:
		return string(body), false, nil
	case *starlark.Dict, *starlark.List:
		text, err := encodeJSON(thread, body)
		if err != nil {
			return "", false, fmt.Errorf("%s: %v", fn, err)
		}
		return text, true, nil
	}
	return "", false, fmt.Errorf("%s: body: got %s, want a string, or a dict or list to send as JSON", fn, body.Type())
}

// Content types shared by every response instead of allocated for each.
// Nothing modifies them: http.Header methods replace or append.
var (
	textPlain       = []string{"text/plain; charset=utf-8"}
	applicationJSON = []string{"application/json"}
)

// An answer is the response a handler's result makes, ready to write.
type answer struct {
	status int
	// header is that of a response value; contentType, if set, replaces
	// its Content-Type.
	header      http.Header
	contentType []string
	body        string
}

// render makes the answer to what a handler returned. It runs on the
// handler's thread, under its limits: encoding a result as JSON is work
// the request does.
func (rt *route) render(thread *starlark.Thread, result starlark.Value, ans *answer) error {
	switch result := result.(type) {
	case starlark.String:
		*ans = answer{status: http.StatusOK, contentType: textPlain, body: string(result)}
	case *starlark.Dict, *starlark.List:
		text, err := encodeJSON(thread, result)
		if err != nil {
			return errors.New(atLine(rt.where(), fmt.Sprintf("handler %s returned a %s that is not JSON: %v", rt.handler.Name(), result.Type(), err)))
		}
		*ans = answer{status: http.StatusOK, contentType: applicationJSON, body: text}
	case starlark.NoneType:
		*ans = answer{status: http.StatusNoContent}
	case *response:
		*ans = answer{status: result.status, header: result.header, body: result.body}
	default:
		return errors.New(atLine(rt.where(), fmt.Sprintf("handler %s returned a value of type %s: return a string, a dict or list (sent as JSON), None (204) or response(status, body, headers)", rt.handler.Name(), result.Type())))
	}
	return nil
}

// write writes the answer.
func (ans *answer) write(rw http.ResponseWriter) {
	header := rw.Header()
	for name, values := range ans.header {
		// Full slice expression: an append by a later handler copies
		// rather than writes into a response value other requests share.
		header[name] = values[:len(values):len(values)]
	}
	if ans.contentType != nil {
		header["Content-Type"] = ans.contentType
	}
	if ans.status != http.StatusOK { // 200 goes with the body
		rw.WriteHeader(ans.status)
	}
	io.WriteString(rw, ans.body)
}

var (
	jsonEncode = json.Module.Members["encode"]
	jsonDecode = json.Module.Members["decode"]
)

func encodeJSON(thread *starlark.Thread, v starlark.Value) (string, error) {
	text, err := starlark.Call(thread, jsonEncode, starlark.Tuple{v}, nil)
	if err != nil {
		return "", err
	}
	return string(text.(starlark.String)), nil
}

// decodeJSON decodes the body that fn was asked to parse as JSON.
func decodeJSON(thread *starlark.Thread, fn, body string) (starlark.Value, error) {
	v, err := starlark.Call(thread, jsonDecode, starlark.Tuple{starlark.String(body)}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: body is not JSON: %v", fn, strings.TrimPrefix(err.Error(), "json.decode: "))
	}
	return v, nil
}
