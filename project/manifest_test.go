package project

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fiatdev/fiat"
)

// bundleOf makes a bundle of a fiat.toml and files holding their own paths.
func bundleOf(manifest string, files ...string) Bundle {
	b := Bundle{Files: []fiat.File{{Path: "fiat.toml", Data: []byte(manifest)}}}
	for _, f := range files {
		b.Files = append(b.Files, fiat.File{Path: f, Data: []byte("# " + f)})
	}
	sortFiles(b.Files)
	return b
}

// problemsOf returns the problems err holds, one string each.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var problems fiat.Problems
	if !errors.As(err, &problems) {
		t.Fatalf("got error %v, want fiat.Problems", err)
	}
	return strings.Split(problems.Error(), "\n")
}

func TestVersionsReportsEveryProblemWhereItIs(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		files    []string // default: main.star
		want     []string
	}{{
		name:     "syntax error",
		manifest: "[services.hello\n",
		want:     []string{"fiat.toml:1:16: expected ']' to close table name"},
	}, {
		name:     "key defined twice",
		manifest: "[services.hello]\ndir = \".\"\ndir = \".\"\n",
		want:     []string{"fiat.toml:3:1: key dir is already defined"},
	}, {
		name:     "unknown key with a close match",
		manifest: "[services.hello]\ndir = \".\"\nkind = \"script\"\ntimout = \"2s\"\n",
		want:     []string{"fiat.toml:4:1: unknown key services.hello.timout: did you mean timeout?"},
	}, {
		name:     "unknown key, differently cased",
		manifest: "[services.hello]\nMaxSteps = 5\n",
		want:     []string{"fiat.toml:2:1: unknown key services.hello.MaxSteps: did you mean max_steps?"},
	}, {
		name:     "unknown key with no close match",
		manifest: "[services.hello]\nport = 8080\n",
		want:     []string{"fiat.toml:2:1: unknown key services.hello.port: a service's keys are build, dir, env, health, instances, kind, max_steps, memory, run, start_timeout, stop_timeout, timeout, uses"},
	}, {
		name:     "unknown top-level table",
		manifest: "[service.hello]\n",
		want: []string{
			"fiat.toml: declares no services: add a [services.NAME] table",
			"fiat.toml:1:2: unknown key service: did you mean services?",
		},
	}, {
		name:     "an unknown table is one problem, not one per key",
		manifest: "[server]\nport = 1\nhost = 2\n\n[services.hello]\n",
		want:     []string{"fiat.toml:1:2: unknown key server: fiat.toml holds only [services.NAME] tables"},
	}, {
		name:     "unknown dotted key",
		manifest: "server.port = 1\nserver.host = 2\n[services.hello]\n",
		want:     []string{"fiat.toml:1:1: unknown key server: fiat.toml holds only [services.NAME] tables"},
	}, {
		name:     "quoted key",
		manifest: "\"a.b\" = 1\n[services.hello]\n",
		want:     []string{`fiat.toml:1:1: unknown key "a.b": fiat.toml holds only [services.NAME] tables`},
	}, {
		name:     "unknown key in an inline table",
		manifest: "services = { hello = { timeout = \"1s\", dri = \"x\" } }\n",
		want:     []string{"fiat.toml:1:40: unknown key services.hello.dri: did you mean dir?"},
	}, {
		name:     "wrong types",
		manifest: "[services.hello]\nmax_steps = \"10\"\ntimeout = 2\ndir = 1\nkind = true\n",
		want: []string{
			`fiat.toml:2:13: services.hello.max_steps must be an integer, like max_steps = 1_000_000, not a string`,
			`fiat.toml:3:11: services.hello.timeout must be a string, like timeout = "2s", not an integer`,
			`fiat.toml:4:7: services.hello.dir must be a string, like dir = "hello", not an integer`,
			`fiat.toml:5:8: services.hello.kind must be a string, like kind = "script", not a boolean`,
		},
	}, {
		name:     "array, located at its key",
		manifest: "[services.hello]\n\ndir = [\"a\"]\n",
		want:     []string{`fiat.toml:3:1: services.hello.dir must be a string, like dir = "hello", not an array`},
	}, {
		name:     "float",
		manifest: "[services.hello]\nmax_steps = 1e6\n",
		want:     []string{`fiat.toml:2:13: services.hello.max_steps must be an integer, like max_steps = 1_000_000, not a float`},
	}, {
		name:     "a key used as a table",
		manifest: "services.hello.dir.x = 1\nservices.hello.dir.y = 1\n",
		want:     []string{`fiat.toml:1:16: services.hello.dir must be a string, like dir = "hello", not a table`},
	}, {
		name:     "a key given a table header",
		manifest: "[services.hello]\n[services.hello.timeout]\nx = 1\n",
		want:     []string{`fiat.toml:2:17: services.hello.timeout must be a string, like timeout = "2s", not a table`},
	}, {
		name:     "services not a table",
		manifest: "services = 1\n",
		want: []string{
			"fiat.toml: declares no services: add a [services.NAME] table",
			"fiat.toml:1:12: services must be a table, like [services.hello], not an integer",
		},
	}, {
		name:     "service not a table",
		manifest: "services.hello = \"x\"\n[services.web]\n",
		want:     []string{"fiat.toml:1:18: services.hello must be a table, like [services.hello], not a string"},
	}, {
		name:     "array of tables",
		manifest: "[[services.hello]]\ndir = \"x\"\n[services.web]\n",
		want:     []string{"fiat.toml:1:12: services.hello must be a table, like [services.hello], not an array of tables"},
	}, {
		name:     "bad service name",
		manifest: "[services.Hello]\n",
		want:     []string{`fiat.toml:1:11: service name "Hello" must start with a lowercase letter: service names use lowercase letters, digits and single dashes, start with a letter and are at most 30 characters`},
	}, {
		name:     "bad service name in a dotted key",
		manifest: "services.web--prod.timeout = \"1s\"\n",
		want:     []string{`fiat.toml:1:10: service name "web--prod" must not contain "--", which addresses use to separate service and env: service names use lowercase letters, digits and single dashes, start with a letter and are at most 30 characters`},
	}, {
		name:     "process without run",
		manifest: "[services.hello]\nkind = \"process\"\n",
		want:     []string{`fiat.toml:2:8: service hello is a process service without run: give the command that serves HTTP on $PORT, like run = "./server", or a Procfile in its dir`},
	}, {
		name:     "process keys without run",
		manifest: "[services.hello]\nhealth = \"/up\"\n",
		want:     []string{`fiat.toml:1:11: service hello is a process service without run: give the command that serves HTTP on $PORT, like run = "./server", or a Procfile in its dir`},
	}, {
		name:     "script keys on a process",
		manifest: "[services.hello]\ntimeout = \"1s\"\nrun = \"./server\"\nmax_steps = 5\n",
		want: []string{
			`fiat.toml:2:11: timeout is a key of script services; service hello is a process (it has run): remove it`,
			`fiat.toml:4:13: max_steps is a key of script services; service hello is a process (it has run): remove it`,
		},
	}, {
		name:     "process keys on a script",
		manifest: "[services.hello]\nkind = \"script\"\nrun = \"./server\"\n",
		want:     []string{`fiat.toml:2:8: service hello says kind = "script" but sets keys of a process service (run, build, health, instances, start_timeout, stop_timeout): remove one or the other`},
	}, {
		name: "bad process values",
		manifest: "[services.hello]\nrun = \" \"\nhealth = \"healthz\"\ninstances = 101\nstart_timeout = \"1h\"\nstop_timeout = \"soon\"\n" +
			"env = { PORT = \"80\", \"1X\" = \"a\", N = 1 }\n",
		want: []string{
			`fiat.toml:2:7: run is empty: give the command, like run = "./server"`,
			`fiat.toml:3:10: health "healthz" is not a path: give the path that answers 2xx once an instance is ready, like "/healthz"`,
			`fiat.toml:4:13: instances must be from 0 to 100, not 101`,
			`fiat.toml:5:17: start_timeout must be from 1s to 10m0s, not "1h"`,
			`fiat.toml:6:16: stop_timeout "soon" is not a duration: write it like "30s" or "2m"`,
			`fiat.toml:7:9: env key PORT is set by fiat for every instance: choose another name`,
			`fiat.toml:7:22: env key "1X": use letters, digits and _, not starting with a digit (an environment variable's name)`,
			`fiat.toml:7:38: services.hello.env.N must be a string, like N = "value", not an integer`,
		},
	}, {
		name:     "unknown kind",
		manifest: "[services.hello]\nkind = \"lambda\"\n",
		want:     []string{`fiat.toml:2:8: kind "lambda" is unknown: a service is a "script" (main.star) or a "process" (with run = "...")`},
	}, {
		name:     "max_steps too small and too large",
		manifest: "[services.a]\ndir = \"a\"\nmax_steps = 0\n[services.b]\ndir = \"b\"\nmax_steps = 10_000_000_001\n",
		files:    []string{"a/main.star", "b/main.star"},
		want: []string{
			"fiat.toml:3:13: max_steps must be from 1 to 10_000_000_000, not 0",
			"fiat.toml:6:13: max_steps must be from 1 to 10_000_000_000, not 10_000_000_001",
		},
	}, {
		name:     "max_steps negative",
		manifest: "[services.a]\nmax_steps = -1\n",
		want:     []string{"fiat.toml:2:13: max_steps must be from 1 to 10_000_000_000, not -1"},
	}, {
		name:     "timeouts",
		manifest: "[services.a]\ndir = \"a\"\ntimeout = \"2\"\n[services.b]\ndir = \"b\"\ntimeout = \"999us\"\n[services.c]\ndir = \"c\"\ntimeout = \"5m1s\"\n",
		files:    []string{"a/main.star", "b/main.star", "c/main.star"},
		want: []string{
			`fiat.toml:3:11: timeout "2" is not a duration: write it like "2s" or "500ms"`,
			`fiat.toml:6:11: timeout must be from 1ms to 5m, not "999us"`,
			`fiat.toml:9:11: timeout must be from 1ms to 5m, not "5m1s"`,
		},
	}, {
		name:     "absolute dir",
		manifest: "[services.hello]\ndir = \"/srv/hello\"\n",
		want:     []string{`fiat.toml:2:7: dir "/srv/hello" is absolute: give it relative to fiat.toml`},
	}, {
		name:     "dir outside the project",
		manifest: "[services.a]\ndir = \"..\"\n[services.b]\ndir = \"b/../../x\"\n",
		want: []string{
			`fiat.toml:2:7: dir ".." is outside the project: a service's dir must be inside the directory of fiat.toml`,
			`fiat.toml:4:7: dir "b/../../x" is outside the project: a service's dir must be inside the directory of fiat.toml`,
		},
	}, {
		name:     "dir with no files",
		manifest: "[services.hello]\ndir = \"hello\"\n",
		files:    []string{"main.star", "hello/.hidden.star"},
		want:     []string{`fiat.toml:2:7: dir "hello" holds no files`},
	}, {
		name:     "dir naming a file",
		manifest: "[services.hello]\ndir = \"main.star\"\n",
		want:     []string{`fiat.toml:2:7: dir "main.star" holds no files`},
	}, {
		name:     "default dir with no files, located at the service",
		manifest: "\n[services.hello]\n",
		files:    []string{".notes.txt"},
		want:     []string{`fiat.toml:2:11: dir "." holds no files`},
	}, {
		name:     "no main.star",
		manifest: "[services.hello]\ndir = \"hello\"\n",
		files:    []string{"hello/lib.star", "hello/main_test.star"},
		want:     []string{"hello/main.star: missing: a script service starts at main.star"},
	}, {
		name:     "no main.star at the root",
		manifest: "[services.hello]\n",
		files:    []string{"lib.star"},
		want:     []string{"main.star: missing: a script service starts at main.star"},
	}, {
		name:     "no services",
		manifest: "# nothing yet\n",
		want:     []string{"fiat.toml: declares no services: add a [services.NAME] table"},
	}, {
		name:     "empty services table",
		manifest: "[services]\n",
		want:     []string{"fiat.toml: declares no services: add a [services.NAME] table"},
	}, {
		name:     "same dir, reported where it is written second",
		manifest: "[services.web]\ndir = \"x\"\n[services.api]\ndir = \"./x/\"\n",
		files:    []string{"x/main.star"},
		want:     []string{`fiat.toml:4:7: services web and api have the same dir "x": give each service a dir of its own`},
	}, {
		name:     "same default dir",
		manifest: "[services.web]\n[services.api]\n",
		want:     []string{`fiat.toml:2:11: services web and api have the same dir ".": give each service a dir of its own`},
	}, {
		name: "everything at once, fiat.toml first",
		manifest: `[services.web]
dir = "web"
timeout = "forever"

[services.api]
dir = "api"
max_steps = 0
colour = "blue"
`,
		files: []string{"api/lib.star"},
		want: []string{
			`fiat.toml:2:7: dir "web" holds no files`,
			`fiat.toml:3:11: timeout "forever" is not a duration: write it like "2s" or "500ms"`,
			"fiat.toml:7:13: max_steps must be from 1 to 10_000_000_000, not 0",
			"fiat.toml:8:1: unknown key services.api.colour: a service's keys are build, dir, env, health, instances, kind, max_steps, memory, run, start_timeout, stop_timeout, timeout, uses",
			"api/main.star: missing: a script service starts at main.star",
		},
	}}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			files := test.files
			if files == nil {
				files = []string{"main.star"}
			}
			_, problems := Versions(bundleOf(test.manifest, files...))
			got := problemsOf(t, problems)
			if !slices.Equal(got, test.want) {
				t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(test.want, "\n"))
			}
		})
	}
}

func TestVersionsAppliesDefaults(t *testing.T) {
	versions, problems := Versions(bundleOf("[services.hello]\n", "main.star", "lib/util.star"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(versions) != 1 {
		t.Fatalf("got %d versions, want 1", len(versions))
	}
	v := versions[0]
	want := fiat.Config{Kind: fiat.Script, MaxSteps: 1_000_000, Timeout: 2 * time.Second, Memory: 64 << 20}
	if v.Service != "hello" || !reflect.DeepEqual(v.Config, want) {
		t.Errorf("got service %q with %+v, want hello with %+v", v.Service, v.Config, want)
	}
	if got := filePaths(v.Files); !slices.Equal(got, []string{"lib/util.star", "main.star"}) {
		t.Errorf("got files %q", got)
	}
	if v.ID != fiat.HashVersion(v) || !v.Created.IsZero() {
		t.Errorf("got id %q and created %v, want the version's hash and no time", v.ID, v.Created)
	}
}

func TestVersionsAcceptsTheLimits(t *testing.T) {
	versions, problems := Versions(bundleOf(`
[services.low]
dir = "low"
max_steps = 1
timeout = "1ms"
kind = "script"
memory = "1MiB"

[services.high]
dir = "high"
max_steps = 10_000_000_000
timeout = "5m"
memory = 67108864

[services.process]
dir = "process"
run = "./server"
memory = 4294967296
`, "low/main.star", "high/main.star", "process/server"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(versions) != 3 {
		t.Fatalf("got %d versions, want 3", len(versions))
	}
	want := []fiat.Config{
		{Kind: fiat.Script, MaxSteps: 10_000_000_000, Timeout: 5 * time.Minute, Memory: 64 << 20},
		{Kind: fiat.Script, MaxSteps: 1, Timeout: time.Millisecond, Memory: 1 << 20},
		{Kind: fiat.Process, Memory: 4 << 30, Process: &fiat.ProcessConfig{Run: "./server", Instances: 1, StartTimeout: fiat.DefaultStartTimeout, StopTimeout: fiat.DefaultStopTimeout}},
	}
	for i, v := range versions {
		if !reflect.DeepEqual(v.Config, want[i]) {
			t.Errorf("%s: got %+v, want %+v", v.Service, v.Config, want[i])
		}
	}
}

// The same settings give the same versions however fiat.toml spells them.
func TestVersionsReadsAnyTOMLSpelling(t *testing.T) {
	spellings := []string{
		"[services.hello]\ntimeout = \"1s\"\nmax_steps = 0x10\n",
		"services.hello.timeout = \"1s\"\nservices.hello.max_steps = 16\n",
		"[services]\nhello = { timeout = '1s', max_steps = 1_6 }\n",
		"services = { hello = { timeout = \"\"\"1s\"\"\", max_steps = 0o20 } }\n",
	}
	var want fiat.Hash
	for _, manifest := range spellings {
		versions, problems := Versions(bundleOf(manifest, "main.star"))
		if len(problems) > 0 {
			t.Fatalf("%s: %v", manifest, problems)
		}
		if want == "" {
			want = versions[0].ID
		}
		if versions[0].ID != want {
			t.Errorf("%s: got id %s, want %s", manifest, versions[0].ID, want)
		}
	}
}

func TestVersionsGivesEachServiceItsOwnFiles(t *testing.T) {
	b := bundleOf(`
[services.web]

[services.api]
dir = "api"

[services.jobs]
dir = "api/jobs"
`,
		"main.star", "web/page.star", "notes.md", ".hidden.star", ".git/hooks/x.star",
		"api/main.star", "api/.cache/old.star", "api/util/strings.star", "api/util/strings_test.star",
		"api/jobs/main.star",
	)
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := map[string][]string{
		"api":  {"main.star", "util/strings.star", "util/strings_test.star"},
		"jobs": {"main.star"},
		"web":  {"main.star", "notes.md", "web/page.star"},
	}
	var names []string
	for _, v := range versions {
		names = append(names, v.Service)
		if got := filePaths(v.Files); !slices.Equal(got, want[v.Service]) {
			t.Errorf("%s: got files %q, want %q", v.Service, got, want[v.Service])
		}
	}
	if !slices.Equal(names, []string{"api", "jobs", "web"}) {
		t.Errorf("got services %q, want them sorted", names)
	}
}

// A .star file no service owns is ignored, and is in no version's hash.
func TestVersionsIgnoresFilesOfNoService(t *testing.T) {
	manifest := "[services.web]\ndir = \"web\"\n"
	before, problems := Versions(bundleOf(manifest, "web/main.star"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	after, problems := Versions(bundleOf(manifest, "web/main.star", "scripts/deploy.star", "webhooks/main.star"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if before[0].ID != after[0].ID {
		t.Errorf("a file outside web changed its id")
	}
}

func TestVersionsNeedsAManifest(t *testing.T) {
	versions, problems := Versions(Bundle{Files: []fiat.File{{Path: "main.star"}}})
	if versions != nil {
		t.Errorf("got versions without a fiat.toml")
	}
	got := problemsOf(t, problems)
	if want := []string{"fiat.toml: missing: a project starts at fiat.toml"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestProblemsLocateServiceFiles(t *testing.T) {
	b := bundleOf("[services.web]\n[services.api]\ndir = \"./api/\"\n[services.bad]\ndir = \"/x\"\n")
	tests := []struct{ service, file, want string }{
		{"api", "main.star", "api/main.star"},
		{"api", "util/x.star", "api/util/x.star"},
		{"web", "main.star", "main.star"},
		{"api", "", ""},
		{"bad", "main.star", "main.star"},
		{"gone", "main.star", "main.star"},
	}
	for _, test := range tests {
		got := b.Problems(nil, map[string]fiat.Problems{test.service: {{Path: test.file, Line: 3, Message: "m"}}})
		if want := (fiat.Problems{{Path: test.want, Line: 3, Message: "m"}}); !slices.Equal(got, want) {
			t.Errorf("Problems(%q: %q) = %v, want %v", test.service, test.file, got, want)
		}
	}
	// fiat.toml first, then the files, each in line order.
	got := b.Problems(fiat.Problems{{Path: "fiat.toml", Line: 9, Message: "t"}}, map[string]fiat.Problems{
		"api": {{Path: "main.star", Line: 2, Message: "b"}, {Path: "main.star", Line: 1, Message: "a"}},
		"web": {{Path: "a.star", Line: 5, Message: "w"}},
	})
	var paths []string
	for _, p := range got {
		paths = append(paths, p.String())
	}
	if want := []string{"fiat.toml:9: t", "a.star:5: w", "api/main.star:1: a", "api/main.star:2: b"}; !slices.Equal(paths, want) {
		t.Errorf("Problems = %q, want %q", paths, want)
	}
}

func filePaths(files []fiat.File) []string {
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	return paths
}

// A bundle built by hand may be in any order; versions are not.
func TestVersionsSortsFiles(t *testing.T) {
	b := bundleOf("[services.hello]\n", "main.star", "b.star", "a/z.star")
	slices.Reverse(b.Files)
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got, want := filePaths(versions[0].Files), []string{"a/z.star", "b.star", "main.star"}; !slices.Equal(got, want) {
		t.Errorf("got files %q, want %q", got, want)
	}
}

func TestVersionsReadsMemory(t *testing.T) {
	for value, want := range map[string]uint64{
		`1048576`:   1 << 20,
		`0x100000`:  1 << 20,
		`"1MiB"`:    1 << 20,
		`"1024KiB"`: 1 << 20,
		`"64MiB"`:   64 << 20,
		`"64 MiB"`:  64 << 20,
		`"2MB"`:     2_000_000,
		`"1100KB"`:  1_100_000,
		`"1GB"`:     1_000_000_000,
		`"4GiB"`:    4 << 30,
		`"4096MiB"`: 4 << 30,
	} {
		// A process, which may have all the memory fiat.toml allows.
		versions, problems := Versions(bundleOf("[services.hello]\nrun = \"./server\"\nmemory = "+value+"\n", "server"))
		if len(problems) > 0 {
			t.Errorf("memory = %s: %v", value, problems)
			continue
		}
		if got := versions[0].Config.Memory; got != want {
			t.Errorf("memory = %s: got %d bytes, want %d", value, got, want)
		}
	}
}

func TestVersionsRefusesBadMemory(t *testing.T) {
	for value, want := range map[string]string{
		`0`:                         `memory must be from 1MiB to 4GiB (1048576 to 4294967296 bytes), not 0`,
		`-1`:                        `memory must be from 1MiB to 4GiB (1048576 to 4294967296 bytes), not -1`,
		`1048575`:                   `memory must be from 1MiB to 4GiB (1048576 to 4294967296 bytes), not 1048575`,
		`4294967297`:                `memory must be from 1MiB to 4GiB (1048576 to 4294967296 bytes), not 4294967297`,
		`"1023KiB"`:                 `memory must be from 1MiB to 4GiB, not "1023KiB"`,
		`"5GB"`:                     `memory must be from 1MiB to 4GiB, not "5GB"`,
		`"0MiB"`:                    `memory must be from 1MiB to 4GiB, not "0MiB"`,
		`"99999999999999999999GiB"`: `memory must be from 1MiB to 4GiB, not "99999999999999999999GiB"`,
		`"18014398509481984GiB"`:    `memory must be from 1MiB to 4GiB, not "18014398509481984GiB"`,
		`"64"`:                      `memory "64" has no unit: write it like "64MiB", or as an integer of bytes, memory = 64`,
		`"64mib"`:                   `memory "64mib": units are case-sensitive, did you mean "64MiB"?`,
		`"64Mb"`:                    `memory "64Mb": units are case-sensitive, did you mean "64MB"?`,
		`"64M"`:                     `memory "64M" has an unknown unit "M": units are KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000)`,
		`"64 megs"`:                 `memory "64 megs" has an unknown unit "megs": units are KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000)`,
		`"1.5GiB"`:                  `memory "1.5GiB" is not a size: write a whole number and a unit of KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000), like "64MiB", or an integer of bytes`,
		`"MiB"`:                     `memory "MiB" is not a size: write a whole number and a unit of KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000), like "64MiB", or an integer of bytes`,
		`""`:                        `memory "" is not a size: write a whole number and a unit of KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000), like "64MiB", or an integer of bytes`,
		`"-64MiB"`:                  `memory "-64MiB" is not a size: write a whole number and a unit of KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000), like "64MiB", or an integer of bytes`,
		`6.4e7`:                     `services.hello.memory must be a string or an integer, like memory = "64MiB", not a float`,
		`true`:                      `services.hello.memory must be a string or an integer, like memory = "64MiB", not a boolean`,
	} {
		versions, problems := Versions(bundleOf("[services.hello]\nmemory = "+value+"\n", "main.star"))
		got := problemsOf(t, problems)
		if want := "fiat.toml:2:10: " + want; !slices.Equal(got, []string{want}) {
			t.Errorf("memory = %s: got %q, want %q", value, got, want)
		}
		// The version still builds, with the default, so that the deploy
		// reports the problems of its scripts too.
		if len(versions) != 1 || versions[0].Config.Memory != fiat.DefaultMemory {
			t.Errorf("memory = %s: got versions %+v, want one with the default memory", value, versions)
		}
	}
}

// A problem in fiat.toml must not hide the others: every service that has
// files gets a version (a wrong setting takes its default) for the deploy
// to compile and test, and every problem comes back with them.
func TestVersionsBuildsEveryServiceItCan(t *testing.T) {
	b := bundleOf(`
[services.web]
dir = "web"
timeout = "forever"
colour = "blue"

[services.Admin]
dir = "admin"

[services.api]
dir = "/srv/api"

[services.jobs]
dir = "jobs"
`, "admin/main.star", "jobs/lib.star")
	b.Files = append(b.Files, fiat.File{Path: "web/main.star", Data: []byte("def broken(:\n")})
	sortFiles(b.Files)
	versions, problems := Versions(b)
	var services []string
	for _, v := range versions {
		services = append(services, v.Service)
	}
	if want := []string{"Admin", "web"}; !slices.Equal(services, want) {
		t.Fatalf("got versions of %q, want %q", services, want)
	}
	web := versions[1]
	if web.Config.Timeout != 2*time.Second || string(web.Files[0].Data) != "def broken(:\n" || web.ID != fiat.HashVersion(web) {
		t.Errorf("got web %+v, want its main.star, the default timeout and its hash", web)
	}
	want := []string{
		`fiat.toml:4:11: timeout "forever" is not a duration: write it like "2s" or "500ms"`,
		"fiat.toml:5:1: unknown key services.web.colour: a service's keys are build, dir, env, health, instances, kind, max_steps, memory, run, start_timeout, stop_timeout, timeout, uses",
		`fiat.toml:7:11: service name "Admin" must start with a lowercase letter: service names use lowercase letters, digits and single dashes, start with a letter and are at most 30 characters`,
		`fiat.toml:11:7: dir "/srv/api" is absolute: give it relative to fiat.toml`,
		"jobs/main.star: missing: a script service starts at main.star",
	}
	if got := problemsOf(t, problems); !slices.Equal(got, want) {
		t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestVersionsOfInvalidTOMLAreNone(t *testing.T) {
	versions, problems := Versions(bundleOf("[services.hello]\ntimeout = \n", "main.star"))
	if versions != nil || len(problems) != 1 {
		t.Errorf("got versions %v and problems %v, want no versions and one problem", versions, problems)
	}
}

// TestProcessService reads a process service's settings, with their
// defaults, its env, and every file of its dir, executables marked.
func TestProcessService(t *testing.T) {
	b := Bundle{Files: []fiat.File{
		{Path: "fiat.toml", Data: []byte(`[services.web]
dir = "web"
run = "./server --port $PORT"
build = "make"
health = "/healthz"
env = { GREETING = "hi" }

[services.worker]
dir = "worker"
run = "./work"
instances = 3
memory = "1GiB"
start_timeout = "2m"
stop_timeout = "10s"
[services.worker.env]
QUEUE = "jobs"
`)},
		{Path: "web/server", Data: []byte("binary"), Executable: true},
		{Path: "web/static/app.css", Data: []byte("css")},
		{Path: "worker/work", Data: []byte("binary"), Executable: true},
	}}
	var tarred bytes.Buffer
	if err := b.WriteTar(&tarred); err != nil {
		t.Fatal(err)
	}
	b, err := ReadTar(&tarred, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	web, worker := versions[0], versions[1]
	wantWeb := fiat.Config{Kind: fiat.Process, Memory: 512 << 20, Env: map[string]string{"GREETING": "hi"}, Process: &fiat.ProcessConfig{
		Run: "./server --port $PORT", Build: "make", Health: "/healthz", Instances: 1, StartTimeout: fiat.DefaultStartTimeout, StopTimeout: fiat.DefaultStopTimeout}}
	if !reflect.DeepEqual(web.Config, wantWeb) {
		t.Errorf("web: %+v %+v\nwant %+v %+v", web.Config, web.Config.Process, wantWeb, wantWeb.Process)
	}
	wantWorker := fiat.Config{Kind: fiat.Process, Memory: 1 << 30, Env: map[string]string{"QUEUE": "jobs"}, Process: &fiat.ProcessConfig{
		Run: "./work", Instances: 3, StartTimeout: 2 * time.Minute, StopTimeout: 10 * time.Second}}
	if !reflect.DeepEqual(worker.Config, wantWorker) {
		t.Errorf("worker: %+v %+v\nwant %+v %+v", worker.Config, worker.Config.Process, wantWorker, wantWorker.Process)
	}
	want := []fiat.File{{Path: "server", Data: []byte("binary"), Executable: true}, {Path: "static/app.css", Data: []byte("css")}}
	if !reflect.DeepEqual(web.Files, want) {
		t.Errorf("web's files: %+v, want %+v", web.Files, want)
	}
}

// TestScriptMemoryIsBounded refuses a script budget over 64MiB, which a
// process may have.
func TestScriptMemoryIsBounded(t *testing.T) {
	_, problems := Versions(bundleOf("[services.hello]\nmemory = \"1GiB\"\n", "main.star"))
	if len(problems) != 1 || !strings.Contains(problems[0].String(), "fiat.toml:2:10: memory of a script service is at most 64MiB, not 1GiB") {
		t.Errorf("a script with 1GiB: %v", problems)
	}
	if _, problems := Versions(bundleOf("[services.hello]\nmemory = \"64MiB\"\n", "main.star")); len(problems) > 0 {
		t.Errorf("a script with 64MiB: %v", problems)
	}
}

// TestProcfile makes a service with a Procfile a process service: web
// serves, release runs before the switch, other types are workers; a bad
// Procfile is located.
func TestProcfile(t *testing.T) {
	b := Bundle{Files: []fiat.File{
		{Path: "fiat.toml", Data: []byte("[services.app]\ndir = \"app\"\nhealth = \"/up\"\n\n[services.bad]\ndir = \"bad\"\n\n[services.both]\ndir = \"both\"\nrun = \"./x\"\n")},
		{Path: "app/Procfile", Data: []byte("# processes\nweb: ./server --port $PORT\nrelease: ./migrate\nworker: ./server --jobs\n")},
		{Path: "app/server", Data: []byte("binary"), Executable: true},
		{Path: "bad/Procfile", Data: []byte("web ./server\nweb: ./a\nweb: ./b\njobs:\n")},
		{Path: "both/Procfile", Data: []byte("web: ./y\n")},
	}}
	versions, problems := Versions(b)
	want := []string{
		`bad/Procfile:1: "web ./server" is not TYPE: COMMAND, like web: ./server`,
		`bad/Procfile:3: web is declared twice: keep one`,
		`bad/Procfile:4: jobs has no command: write it after jobs:`,
		`both/Procfile: the service has both run in fiat.toml and a Procfile: keep one`,
	}
	if got := strings.Split(problems.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant\n%s", problems, strings.Join(want, "\n"))
	}
	if len(versions) != 1 || versions[0].Service != "app" {
		t.Fatalf("versions: %+v", versions)
	}
	want2 := &fiat.ProcessConfig{Run: "./server --port $PORT", Release: "./migrate", Workers: map[string]string{"worker": "./server --jobs"}, Health: "/up",
		Instances: 1, StartTimeout: fiat.DefaultStartTimeout, StopTimeout: fiat.DefaultStopTimeout}
	if c := versions[0].Config; c.Kind != fiat.Process || !reflect.DeepEqual(c.Process, want2) || c.Memory != 512<<20 {
		t.Errorf("app: %+v %+v", c, c.Process)
	}
}

func TestProcfileLimits(t *testing.T) {
	many := "web: ./a\n"
	for i := range maxProcfileTypes + 5 {
		many += fmt.Sprintf("w%d: ./w\n", i)
	}
	for name, tc := range map[string]struct{ procfile, want string }{
		"too big":        {strings.Repeat("#", maxProcfileBytes+1), "app/Procfile: is 65537 bytes: a Procfile is at most 65536"},
		"too many types": {many, "more than 100 process types"},
	} {
		_, problems := Versions(Bundle{Files: []fiat.File{
			{Path: "fiat.toml", Data: []byte("[services.app]\ndir = \"app\"\n")},
			{Path: "app/Procfile", Data: []byte(tc.procfile)},
		}})
		if len(problems) != 1 || !strings.Contains(problems.Error(), tc.want) {
			t.Errorf("%s: %v, want one problem saying %q", name, problems, tc.want)
		}
	}
}
