package project

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

// writeProject writes files (path: content) under a new directory.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	return dir
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSelectsServiceFiles(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"fiat.toml":             "[services.web]\n[services.api]\ndir = \"api\"\n",
		"main.star":             "web",
		"lib/util.star":         "web",
		"README.md":             "not .star",
		".hidden.star":          "hidden",
		".git/objects/x.star":   "hidden dir",
		"api/main.star":         "api",
		"api/.cache/old.star":   "hidden in api",
		"api/jobs/job.star":     "api",
		"outside/other.star.go": "not .star",
	})
	if err := os.Symlink("main.star", filepath.Join(dir, "link.star")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib", filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Every file of a service's dir, not only its scripts; not hidden ones,
	// nor symlinks.
	want := []string{"README.md", "api/jobs/job.star", "api/main.star", "fiat.toml", "lib/util.star", "main.star", "outside/other.star.go"}
	if got := filePaths(b.Files); !slices.Equal(got, want) {
		t.Errorf("got files %q, want %q", got, want)
	}
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got := filePaths(versions[0].Files); versions[0].Service != "api" || !slices.Equal(got, []string{"jobs/job.star", "main.star"}) {
		t.Errorf("got %s with %q, want api with jobs/job.star and main.star", versions[0].Service, got)
	}
}

// Load reads a service whose dir is hidden when fiat.toml names it.
func TestLoadReadsAHiddenDirNamedInFiatToml(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"fiat.toml":             "[services.tools]\ndir = \".fiat/tools\"\n",
		".fiat/tools/main.star": "tools",
		".fiat/other.star":      "no service's",
	})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filePaths(b.Files), []string{".fiat/tools/main.star", "fiat.toml"}; !slices.Equal(got, want) {
		t.Errorf("got files %q, want %q", got, want)
	}
}

func TestLoadExplainsAMissingFiatToml(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	want := "no fiat.toml in " + dir + ": run `fiat init " + dir + "` to create a project, or pass the project's directory"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// Load sends a project whose fiat.toml has problems, so that the server
// reports them together with those of the scripts: it fails only when it
// cannot tell which files to send.
func TestLoadWorksAroundFiatTomlProblems(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"fiat.toml":     "[services.hello]\ntimout = \"2s\"\n[services.Bad]\ndir = \"bad\"\n[services.out]\ndir = \"..\"\n",
		"main.star":     "",
		"bad/main.star": "",
	})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filePaths(b.Files), []string{"bad/main.star", "fiat.toml", "main.star"}; !slices.Equal(got, want) {
		t.Errorf("got files %q, want %q", got, want)
	}
	_, problems := Versions(b)
	if got := problemsOf(t, problems); len(got) != 3 || got[0] != "fiat.toml:2:1: unknown key services.hello.timout: did you mean timeout?" {
		t.Errorf("got problems %q", got)
	}
}

func TestLoadRefusesInvalidTOML(t *testing.T) {
	dir := writeProject(t, map[string]string{"fiat.toml": "[services.hello\n", "main.star": ""})
	_, err := Load(dir)
	got := problemsOf(t, err)
	if want := []string{"fiat.toml:1:16: expected ']' to close table name"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// load loads the project in dir and its versions.
func load(t *testing.T, dir string) (Bundle, []*fiat.Version) {
	t.Helper()
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return b, versions
}

// idsOf loads the project in dir and returns its version ids by service.
func idsOf(t *testing.T, dir string) map[string]fiat.Hash {
	t.Helper()
	_, versions := load(t, dir)
	ids := map[string]fiat.Hash{}
	for _, v := range versions {
		ids[v.Service] = v.ID
	}
	return ids
}

func TestVersionIDs(t *testing.T) {
	manifest := "# the shop\n[services.web]\ndir = \"web\"\n\n[services.api]\ndir = \"api\"\ntimeout = \"1s\"\n"
	files := map[string]string{
		"fiat.toml":     manifest,
		"web/main.star": "web",
		"api/main.star": "api",
		"api/lib.star":  "lib",
	}
	original := idsOf(t, writeProject(t, files))

	changed := func(name string, edit func(files map[string]string)) {
		t.Helper()
		edited := maps.Clone(files)
		edit(edited)
		ids := idsOf(t, writeProject(t, edited))
		if ids["web"] != original["web"] {
			t.Errorf("%s: the id of web changed", name)
		}
		if ids["api"] == original["api"] {
			t.Errorf("%s: the id of api did not change", name)
		}
	}
	unchanged := func(name string, edit func(files map[string]string)) {
		t.Helper()
		edited := maps.Clone(files)
		edit(edited)
		ids := idsOf(t, writeProject(t, edited))
		if ids["web"] != original["web"] || ids["api"] != original["api"] {
			t.Errorf("%s: ids changed from %v to %v", name, original, ids)
		}
	}

	unchanged("loaded again", func(map[string]string) {})
	unchanged("comment edited", func(f map[string]string) {
		f["fiat.toml"] = strings.Replace(manifest, "# the shop", "# our shop, with a longer comment", 1)
	})
	unchanged("defaults written out", func(f map[string]string) {
		f["fiat.toml"] = manifest + "kind = \"script\"\nmax_steps = 1_000_000\nmemory = \"64MiB\"\n"
	})
	unchanged("memory spelled in bytes", func(f map[string]string) { f["fiat.toml"] = manifest + "memory = 67_108_864\n" })
	unchanged("dir moved", func(f map[string]string) {
		f["fiat.toml"] = strings.Replace(manifest, `dir = "api"`, `dir = "services/api"`, 1)
		f["services/api/main.star"], f["services/api/lib.star"] = f["api/main.star"], f["api/lib.star"]
		delete(f, "api/main.star")
		delete(f, "api/lib.star")
	})
	unchanged("a file of no service added", func(f map[string]string) { f["tools/x.star"] = "x" })
	unchanged("a hidden file added", func(f map[string]string) { f["api/.notes.md"] = "notes" })
	changed("a non-.star file added: assets are part of a version", func(f map[string]string) { f["api/README.md"] = "docs" })
	changed("file edited", func(f map[string]string) { f["api/lib.star"] = "lib v2" })
	changed("file added", func(f map[string]string) { f["api/more.star"] = "more" })
	changed("file renamed", func(f map[string]string) {
		f["api/lib2.star"] = f["api/lib.star"]
		delete(f, "api/lib.star")
	})
	changed("max_steps changed", func(f map[string]string) { f["fiat.toml"] = manifest + "max_steps = 5\n" })
	changed("memory changed", func(f map[string]string) { f["fiat.toml"] = manifest + "memory = \"64MB\"\n" })
	changed("timeout changed", func(f map[string]string) {
		f["fiat.toml"] = strings.Replace(manifest, `timeout = "1s"`, `timeout = "1.5s"`, 1)
	})
}

func TestLoadWalksOnlyDirsThatMayHoldServiceFiles(t *testing.T) {
	m, problems := parseManifest([]byte("[services.api]\ndir = \"services/api\"\n[services.tools]\ndir = \".fiat/tools\"\n"))
	if problems != nil {
		t.Fatal(problems)
	}
	for dir, want := range map[string]bool{
		".":                     true,
		"services":              true,
		"services/api":          true,
		"services/api/lib":      true,
		"services/api/.cache":   false,
		"services/web":          false,
		"node_modules":          false,
		".fiat":                 true,
		".fiat/tools":           true,
		".fiat/tools/.git":      false,
		".git":                  false,
		"servicesx":             false,
		"services/api-old":      false,
		"services/api-old/more": false,
	} {
		if got := m.mayHoldFiles(dir); got != want {
			t.Errorf("mayHoldFiles(%q) = %v, want %v", dir, got, want)
		}
	}
}

// TestFiatignore leaves out what .fiatignore says, from the bundle the
// CLI sends and from the versions the server builds of any bundle.
func TestFiatignore(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"fiat.toml":               "[services.web]\n",
		".fiatignore":             "# dependencies and outputs\nnode_modules/\n*.log\n!keep.log\n/build\n",
		"main.star":               "web",
		"src/app.js":              "app",
		"node_modules/x/index.js": "dependency",
		"app.log":                 "log",
		"keep.log":                "kept",
		"build/out.bin":           "output",
		"src/build/kept.js":       "only /build at the root is left out",
	})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".fiatignore", "fiat.toml", "keep.log", "main.star", "src/app.js", "src/build/kept.js"}
	if got := filePaths(b.Files); !slices.Equal(got, want) {
		t.Errorf("bundle: %q, want %q", got, want)
	}
	// A bundle that holds ignored files anyway builds the same version.
	b.Files = append(b.Files, fiat.File{Path: "node_modules/x/index.js", Data: []byte("dependency")}, fiat.File{Path: "app.log", Data: []byte("log")})
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want = []string{"keep.log", "main.star", "src/app.js", "src/build/kept.js"}
	if got := filePaths(versions[0].Files); !slices.Equal(got, want) {
		t.Errorf("version: %q, want %q", got, want)
	}
}

// TestLoadStopsAtTheLimits refuses, before reading it, a file that takes
// the project past what Load reads (a sparse file, nothing on disk), and
// a project of more files than a bundle holds.
func TestLoadStopsAtTheLimits(t *testing.T) {
	dir := writeProject(t, map[string]string{"fiat.toml": "[services.web]\n", "main.star": "web"})
	f, err := os.Create(filepath.Join(dir, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxLoadBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "huge.bin: the project's files pass") {
		t.Errorf("a 1 GiB sparse file: %v", err)
	}
	os.Remove(filepath.Join(dir, "huge.bin"))
	for i := range maxFiles {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.txt", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d files", maxFiles)) {
		t.Errorf("%d files and more: %v", maxFiles, err)
	}
}
