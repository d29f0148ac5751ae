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
	"reflect"
	"strings"
	"sync"
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
	v := version(cachedFiles, fiat.Config{Kind: fiat.Script, MaxSteps: 5000, Timeout: time.Minute, Memory: 3 << 20})
	compiled, err := Compile(v)
	if err != nil {
		t.Fatal(err)
	}
	// The pack's directory is created too.
	c := openCache(t, filepath.Join(t.TempDir(), "cache", "programs.pack"))
	if err := c.Put(compiled); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(compiled); err != nil {
		t.Fatalf("Put again: %v", err)
	}
	cached, err := c.Get(v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cached.ID() != v.ID || cached.service != v.Service || !reflect.DeepEqual(cached.config, v.Config) {
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
	good, err := p.appendEncoding(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := version(map[string]string{"main.star": okMain})
	otherProgram, err := Compile(other)
	if err != nil {
		t.Fatal(err)
	}
	otherData, err := otherProgram.appendEncoding(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each pack starts with a good record of another version, so the
	// offset that errors name is not 0.
	first := record(other.ID, otherData)
	for _, tc := range []struct {
		name string
		data []byte // nil: no record of v
		why  string
	}{
		{"missing", nil, "holds no record of version " + string(v.ID)},
		{"empty", []byte{}, "checksum mismatch"},
		{"truncated", good[:len(good)/2], "checksum mismatch"},
		{"corrupt", flipByte(good, len(good)/2), "checksum mismatch"},
		{"older fiat", withChecksum(bytes.Replace(good, []byte(cacheFormat), []byte("fiat script cache 1\n"), 1)), "written by another version of fiat"},
		{"other starlark", withChecksum(withCompilerVersion(good, starlark.CompilerVersion-1)), fmt.Sprintf("version mismatch: read %d, want %d", starlark.CompilerVersion-1, starlark.CompilerVersion)},
		{"other version", otherData, "it holds version " + string(other.ID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "programs.pack")
			pack, where := first, path+" holds"
			if tc.data != nil {
				pack = append(bytes.Clone(first), record(v.ID, tc.data)...)
				where = fmt.Sprintf("record at offset %d of %s is unusable", len(first), path)
			}
			if err := os.WriteFile(path, pack, 0o644); err != nil {
				t.Fatal(err)
			}
			c := openCache(t, path)
			_, err := c.Get(v.ID)
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), where) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("got %v, want an error wrapping fs.ErrNotExist that says %q and %q", err, where, tc.why)
			}
			if _, err := c.Get(other.ID); err != nil {
				t.Errorf("the record before: %v", err)
			}
			// A miss is repaired by compiling and putting again, also for
			// the next start.
			if err := c.Put(p); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(v.ID); err != nil {
				t.Errorf("after Put: %v", err)
			}
			if _, err := reopen(t, c).Get(v.ID); err != nil {
				t.Errorf("after Put and reopen: %v", err)
			}
		})
	}
}

func TestCacheRefusesNonHashes(t *testing.T) {
	c := openCache(t, filepath.Join(t.TempDir(), "programs.pack"))
	for _, id := range []fiat.Hash{"", "../../etc/passwd", fiat.Hash(strings.Repeat("a", fiat.HashLen-1) + "/")} {
		if _, err := c.Get(id); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q): got %v, want an error that is not a miss", id, err)
		}
	}
}

func TestCacheReopenFindsEveryRecord(t *testing.T) {
	ps := programs(t, 5)
	c := openCache(t, filepath.Join(t.TempDir(), "programs.pack"))
	for _, p := range ps {
		if err := c.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	c = reopen(t, c)
	for _, p := range ps {
		if got, err := c.Get(p.id); err != nil || got.id != p.id {
			t.Errorf("after reopen, Get(%s) = %v, %v", p.id, got, err)
		}
	}
}

func TestCacheTornTail(t *testing.T) {
	ps := programs(t, 3)
	for _, tc := range []struct {
		name string
		// tear changes a pack whose last record is last bytes long, and
		// says whether that record is lost.
		tear func(pack []byte, last int) (torn []byte, lost bool)
	}{
		{"payload cut", func(pack []byte, last int) ([]byte, bool) { return pack[:len(pack)-last/2], true }},
		{"header cut", func(pack []byte, last int) ([]byte, bool) { return pack[:len(pack)-last+10], true }},
		{"short garbage", func(pack []byte, last int) ([]byte, bool) { return append(pack, "junk"...), false }},
		{"zeros", func(pack []byte, last int) ([]byte, bool) { return append(pack, make([]byte, 200)...), false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "programs.pack")
			c := openCache(t, path)
			var sizes []int
			for _, p := range ps[:2] {
				if err := c.Put(p); err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, fileSize(t, path))
			}
			c.Close()
			pack, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			torn, lost := tc.tear(pack, sizes[1]-sizes[0])
			if err := os.WriteFile(path, torn, 0o644); err != nil {
				t.Fatal(err)
			}
			c = openCache(t, path)
			want := sizes[1]
			if lost {
				want = sizes[0]
			}
			if got := fileSize(t, path); got != want {
				t.Errorf("after reopen the pack is %d bytes, want %d", got, want)
			}
			if _, err := c.Get(ps[0].id); err != nil {
				t.Errorf("the record before the torn one: %v", err)
			}
			if _, err := c.Get(ps[1].id); lost != errors.Is(err, fs.ErrNotExist) || !lost && err != nil {
				t.Errorf("the torn record (lost: %v): %v", lost, err)
			}
			if err := c.Put(ps[2]); err != nil {
				t.Fatal(err)
			}
			c = reopen(t, c)
			for _, p := range ps {
				if p == ps[1] && lost {
					continue
				}
				if _, err := c.Get(p.id); err != nil {
					t.Errorf("after a Put and another reopen: %v", err)
				}
			}
		})
	}
}

func TestCacheConcurrentPutGet(t *testing.T) {
	ps := programs(t, 4)
	c := openCache(t, filepath.Join(t.TempDir(), "programs.pack"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				p := ps[(g+i)%len(ps)]
				if err := c.Put(p); err != nil {
					t.Error(err)
					return
				}
				if got, err := c.Get(p.id); err != nil || got.id != p.id {
					t.Errorf("Get(%s) right after its Put = %v, %v", p.id, got, err)
					return
				}
				// Possibly not put yet: a miss is fine, anything else is not.
				if _, err := c.Get(ps[(g+i+1)%len(ps)].id); err != nil && !strings.Contains(err.Error(), "holds no record") {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	c = reopen(t, c)
	for _, p := range ps {
		if _, err := c.Get(p.id); err != nil {
			t.Errorf("after reopen: %v", err)
		}
	}
}

// openCache opens the pack at path, closing it when the test ends.
func openCache(t *testing.T, path string) *Cache {
	t.Helper()
	c, err := OpenCache(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reopen closes c and opens its pack again, as a restart does.
func reopen(t *testing.T, c *Cache) *Cache {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return openCache(t, c.path)
}

// programs compiles n versions that differ.
func programs(t *testing.T, n int) []*Program {
	t.Helper()
	var ps []*Program
	for i := range n {
		p, err := Compile(version(map[string]string{"main.star": okMain + fmt.Sprintf("n = %d\n", i)}))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// record is how a pack holds payload as the record of version id.
func record(id fiat.Hash, payload []byte) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte(id), uint32(len(payload))), payload...)
}

func fileSize(t *testing.T, path string) int {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.Size())
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
