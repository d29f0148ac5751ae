package fiat

import (
	"fmt"
	"net/http"
	"strings"
)

// UserKeySource says where a request carries the key of the user who sent
// it, which sticky percentages of flags and rollouts bucket by: a header,
// a cookie or a query parameter.
type UserKeySource struct {
	// From is "header", "cookie" or "query".
	From string `json:"from"`
	Name string `json:"name"`
}

// DefaultUserKey is where requests carry the user key unless an env says
// otherwise.
var DefaultUserKey = UserKeySource{From: "header", Name: "X-User-Id"}

// ParseUserKeySource reads "header:X-User-Id", "cookie:uid" or
// "query:user".
func ParseUserKeySource(s string) (UserKeySource, error) {
	from, name, ok := strings.Cut(s, ":")
	src := UserKeySource{From: from, Name: name}
	if !ok || name == "" {
		return UserKeySource{}, fmt.Errorf("user key source %q: write where requests carry the user key as header:NAME, cookie:NAME or query:NAME", s)
	}
	switch from {
	case "header":
		src.Name = http.CanonicalHeaderKey(name)
	case "cookie", "query":
	default:
		return UserKeySource{}, fmt.Errorf("user key source %q: %q is not header, cookie or query", s, from)
	}
	return src, nil
}

func (s UserKeySource) String() string {
	return s.From + ":" + s.Name
}

// Of returns the user key r carries, or "" if it carries none.
func (s UserKeySource) Of(r *http.Request) string {
	switch s.From {
	case "header":
		return r.Header.Get(s.Name)
	case "cookie":
		if c, err := r.Cookie(s.Name); err == nil {
			return c.Value
		}
	case "query":
		return r.URL.Query().Get(s.Name)
	}
	return ""
}
