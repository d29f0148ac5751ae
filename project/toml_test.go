package project

import (
	"fmt"
	"strings"
	"testing"
)

// manyKeys is a fiat.toml of n keys, spelled by key(i).
func manyKeys(n int, key func(i int) string) []byte {
	var b strings.Builder
	b.WriteString("[services.hello]\n")
	for i := range n - 2 { // the header has two
		b.WriteString(key(i))
	}
	return []byte(b.String())
}

// go-toml's decoder takes time in the square of the keys of a table, and
// the 800 KB of dotted key parts took 5.4 s: fiat.toml's keys are
// counted, wherever they are, before it runs.
func TestManifestLimitsKeys(t *testing.T) {
	const want = "fiat.toml has more than 2048 keys (each part of a dotted key counts): declare only services and their settings"
	tests := map[string][]byte{
		"dotted parts":              []byte("a" + strings.Repeat(".a", 400_000) + " = 1\n"),
		"keys":                      manyKeys(maxManifestKeys+1, func(i int) string { return fmt.Sprintf("k%d = 1\n", i) }),
		"tables":                    manyKeys(maxManifestKeys+1, func(i int) string { return fmt.Sprintf("[t%d]\n", i) }),
		"in an inline table":        []byte("services = { " + keyList(maxManifestKeys) + " }\n"),
		"in an array":               []byte("a = [{ " + keyList(maxManifestKeys) + " }]\n"),
		"under a key too deep":      []byte("services.hello.dir.x = { " + keyList(maxManifestKeys) + " }\n"),
		"in arrays of inline table": []byte("a = [" + strings.Repeat("{ x = 1 }, ", maxManifestKeys) + "]\n"),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			m, problems := parseManifest(data)
			if m != nil || len(problems) != 1 || !strings.HasSuffix(problems[0].Message, want) || problems[0].Line == 0 {
				t.Errorf("got %v, want one located problem: %s", problems, want)
			}
		})
	}
	// Right at the limit, fiat.toml reads as usual.
	_, problems := parseManifest(manyKeys(maxManifestKeys, func(i int) string { return fmt.Sprintf("k%d = 1\n", i) }))
	if len(problems) != maxManifestKeys-2 || !strings.HasPrefix(problems[0].Message, "unknown key services.hello.k0") {
		t.Errorf("got %d problems, want one for each unknown key", len(problems))
	}
}

func keyList(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d = 1", i)
	}
	return strings.Join(keys, ", ")
}

func TestManifestLimitsKeyLength(t *testing.T) {
	for _, spelling := range []string{"[services.%s]\n", "services.%s.dir = \"x\"\n", "%q = 1\n"} {
		long := strings.Repeat("a", maxKeyLen+1)
		m, problems := parseManifest(fmt.Appendf(nil, spelling, long))
		want := fmt.Sprintf(`key "%s"… is 257 bytes long: keys in fiat.toml are at most 256 bytes`, long[:40])
		if m != nil || len(problems) != 1 || problems[0].Message != want {
			t.Errorf("%s: got %v, want %s", spelling, problems, want)
		}
		_, problems = parseManifest(fmt.Appendf(nil, spelling, long[1:]))
		if len(problems) == 0 || strings.Contains(problems.Error(), "bytes long") {
			t.Errorf("%s: a key of %d bytes: got %v, want it read", spelling, maxKeyLen, problems)
		}
	}
}

// Whatever fiat.toml holds, reading it gives problems, never a panic, and
// every problem is located in fiat.toml.
func FuzzParseManifest(f *testing.F) {
	for _, seed := range []string{
		"[services.hello]\ndir = \"x\"\nmemory = \"64MiB\"\n",
		"services = { hello = { timeout = \"1s\", dir = { x = 1 } } }\n",
		"[[services.a.b.c]]\n[services]\nx.y.z = [{ a = 1 }]\n",
		"a" + strings.Repeat(".a", 10) + " = 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, problems := parseManifest(data)
		for _, p := range problems {
			if p.Path != manifestName {
				t.Errorf("problem %v is not in fiat.toml", p)
			}
		}
	})
}

func TestLineCounterLocatesOffsetsInAnyOrder(t *testing.T) {
	data := []byte("a\nbc\r\n\nd")
	want := []position{{1, 1}, {1, 2}, {2, 1}, {2, 2}, {2, 3}, {2, 4}, {3, 1}, {4, 1}, {4, 2}}
	lines := lineCounter{data: data}
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {8, 3, 2, 7, 0, 5, 5, 1}} {
		for _, offset := range order {
			if got := lines.at(offset); got != want[offset] {
				t.Errorf("offset %d: got %v, want %v", offset, got, want[offset])
			}
		}
	}
}

// Reading fiat.toml takes time in proportion to its size: compare the
// ns/op of the sizes. The dotted keys of the issue (800 KB took 5.4 s) stop
// at the limit on keys.
func BenchmarkParseManifest(b *testing.B) {
	services := func(n int) []byte {
		var s strings.Builder
		for i := range n {
			fmt.Fprintf(&s, "# The service %d, with a comment as long as a user may write.\n[services.s%d]\ndir = \"s%d\"\nmemory = \"64MiB\"\n\n", i, i, i)
		}
		return []byte(s.String())
	}
	for name, data := range map[string][]byte{
		"services=50":                  services(50),
		"services=500":                 services(500), // 2000 keys
		"dotted parts 80 KB":           []byte("a" + strings.Repeat(".a", 40_000) + " = 1\n"),
		"dotted parts 800 KB":          []byte("a" + strings.Repeat(".a", 400_000) + " = 1\n"),
		"keys in a table at the limit": manyKeys(maxManifestKeys, func(i int) string { return fmt.Sprintf("k%d = 1\n", i) }),
		"comment 80 KB":                []byte("[services.hello]\n#" + strings.Repeat("x", 80_000) + "\n"),
		"comment 800 KB":               []byte("[services.hello]\n#" + strings.Repeat("x", 800_000) + "\n"),
	} {
		b.Run(name, func(b *testing.B) {
			if _, problems := parseManifest(data); strings.HasPrefix(name, "services") && problems != nil {
				b.Fatal(problems)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				parseManifest(data)
			}
		})
	}
}
