package script

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"go.starlark.net/starlark"
)

// staticBuiltin is http.static(prefix, dir): serve the version's files
// under dir at prefix, as they were deployed.
func staticBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := hostOf(thread)
	if h.routes == nil {
		return nil, fmt.Errorf("%s: routes are declared at the top level of a module, while the version starts; not in a handler or a test", b.Name())
	}
	var prefix, dir string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "prefix", &prefix, "dir", &dir); err != nil {
		return nil, err
	}
	declared := thread.CallFrame(1).Pos
	s, err := newStatic(h.app.prog.assets, prefix, dir)
	if err == nil {
		err = register(h.routes.mux, &route{app: h.app, method: "GET", path: s.pattern(), declared: declared}, s)
	}
	if err != nil {
		h.routes.problems = append(h.routes.problems, problemAt(declared, fmt.Sprintf("%s: %v", b.Name(), err)))
	}
	h.routes.static = true
	return starlark.None, nil
}

// static serves the files under one dir of a version.
type static struct {
	prefix, dir string
	files       map[string][]byte
	// etags are the files' entity tags: their content never changes.
	etags map[string]string
}

func newStatic(assets map[string][]byte, prefix, dir string) (*static, error) {
	if !strings.HasPrefix(prefix, "/") || (prefix != "/" && strings.HasSuffix(prefix, "/")) || strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("prefix %q: give a path that starts with \"/\" and does not end with one, like \"/assets\"", prefix)
	}
	clean := path.Clean(dir)
	if dir == "" || path.IsAbs(dir) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("dir %q: give a directory of the service, relative to its dir, like \"public\"", dir)
	}
	s := &static{prefix: strings.TrimSuffix(prefix, "/"), dir: clean, files: map[string][]byte{}, etags: map[string]string{}}
	for name, data := range assets {
		rel, ok := strings.CutPrefix(name, clean+"/")
		if clean == "." {
			rel, ok = name, true
		}
		if !ok || name == "fiat.toml" {
			continue
		}
		sum := sha256.Sum256(data)
		s.files[rel] = data
		s.etags[rel] = `"` + hex.EncodeToString(sum[:12]) + `"`
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("dir %q has no files in this version: add some, or check its path, relative to the service's dir", dir)
	}
	return s, nil
}

func (s *static) pattern() string { return s.prefix + "/{path...}" }

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	data, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", s.etags[name])
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
