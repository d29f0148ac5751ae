package script

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
)

var cachedFiles = map[string]string{
	"main.star": `
load("lib/greet.star", "greet")
def spin(req):
    while True:
        pass
http.route("GET", "/hello/{name}", lambda req: greet(req.params["name"]))
http.route("POST", "/echo", lambda req: req.json())
http.route("GET", "/spin", spin)
`,
	"lib/greet.star": `
def greet(name):
    return {"greeting": "hello " + name}
`,
	"main_test.star": `
def test_hello():
    assert.eq(app.get("/hello/x").json(), {"greeting": "hello y"})
`,
}

func TestCacheRoundTrip(t *testing.T) {
	v := version(cachedFiles, fiat.Config{Kind: fiat.Script, MaxSteps: 5000, Timeout: time.Minute})
	compiled, err := Compile(v)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	if err := c.Put(compiled); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(compiled); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) != 1 || entries[0].Name() != string(v.ID)+".starc" {
		t.Errorf("cache dir holds %v, want only %s.starc", entries, v.ID)
	}
	cached, err := c.Get(v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cached.ID() != v.ID || cached.service != v.Service || cached.config != v.Config {
		t.Errorf("cached program is %s %s %+v, want %s %s %+v", cached.ID(), cached.service, cached.config, v.ID, v.Service, v.Config)
	}
	var apps []*App
	var tests []string
	for _, p := range []*Program{compiled, cached} {
		a, err := p.Start(Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, a)
		tests = append(tests, a.Test(context.Background()).Error())
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/hello/ann", ""},
		{"POST", "/echo", `[1, {"a": null}]`},
		{"POST", "/echo", `nope`},
		{"GET", "/spin", ""},
		{"GET", "/nope", ""},
	} {
		want, got := do(apps[0], req.method, req.path, req.body), do(apps[1], req.method, req.path, req.body)
		if got.status != want.status || got.body != want.body {
			t.Errorf("%s %s: cached program answers %d %q, compiled one %d %q", req.method, req.path, got.status, got.body, want.status, want.body)
		}
	}
	if tests[0] != tests[1] || !strings.HasPrefix(tests[1], "main_test.star:3:14: test_hello: assert.eq:") {
		t.Errorf("tests of the cached program: %q, of the compiled one: %q", tests[1], tests[0])
	}
}

func TestCacheMisses(t *testing.T) {
	v := version(cachedFiles)
	p, err := Compile(v)
	if err != nil {
		t.Fatal(err)
	}
	good, err := p.encode()
	if err != nil {
		t.Fatal(err)
	}
	other := version(map[string]string{"main.star": okMain})
	otherProgram, err := Compile(other)
	if err != nil {
		t.Fatal(err)
	}
	otherData, err := otherProgram.encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte // nil: no file
		why  string
	}{
		{"missing", nil, "no such file"},
		{"empty", []byte{}, "checksum mismatch"},
		{"truncated", good[:len(good)/2], "checksum mismatch"},
		{"corrupt", flipByte(good, len(good)/2), "checksum mismatch"},
		{"older fiat", withChecksum(bytes.Replace(good, []byte("cache 1\n"), []byte("cache 0\n"), 1)), "written by another version of fiat"},
		{"other starlark", withChecksum(withCompilerVersion(good, starlark.CompilerVersion-1)), fmt.Sprintf("version mismatch: read %d, want %d", starlark.CompilerVersion-1, starlark.CompilerVersion)},
		{"other version", otherData, "it holds version " + string(other.ID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cache{Dir: t.TempDir()}
			if tc.data != nil {
				if err := os.WriteFile(filepath.Join(c.Dir, string(v.ID)+".starc"), tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Get(v.ID)
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("got %v, want an error wrapping fs.ErrNotExist that says %q", err, tc.why)
			}
			// A miss is repaired by compiling and putting again.
			if err := c.Put(p); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(v.ID); err != nil {
				t.Errorf("after Put: %v", err)
			}
		})
	}
}

func TestCacheRefusesNonHashes(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	for _, id := range []fiat.Hash{"", "../../etc/passwd", fiat.Hash(strings.Repeat("a", fiat.HashLen-1) + "/")} {
		if _, err := c.Get(id); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q): got %v, want an error that is not a miss", id, err)
		}
	}
}

func flipByte(data []byte, i int) []byte {
	data = bytes.Clone(data)
	data[i] ^= 0xff
	return data
}

// withCompilerVersion rewrites the Starlark compiler version of the first
// module: a one-byte zigzag varint after its magic number and string offset.
func withCompilerVersion(data []byte, version byte) []byte {
	data = bytes.Clone(data)
	data[bytes.Index(data, []byte("!sky"))+8] = version << 1
	return data
}

func withChecksum(data []byte) []byte {
	body := data[:len(data)-4]
	return binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}
