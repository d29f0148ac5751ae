package project

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInitWritesAProjectThatDeploys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	if err := Init(dir); err != nil {
		t.Fatal(err)
	}
	b, versions := load(t, dir)
	if len(versions) != 1 || versions[0].Service != "shop" {
		t.Fatalf("got %d versions, want one of service shop", len(versions))
	}
	if got := filePaths(versions[0].Files); !slices.Equal(got, []string{"main.star", "main_test.star"}) {
		t.Errorf("got files %q", got)
	}
	for _, f := range b.Files {
		if strings.Contains(string(f.Data), "{{") {
			t.Errorf("%s holds an unexpanded template:\n%s", f.Path, f.Data)
		}
	}
}

func TestInitNamesTheServiceAfterItsDir(t *testing.T) {
	for dir, want := range map[string]string{
		"Shop":                               "shop",
		"web-2":                              "web-2",
		"my_app":                             "hello",
		"2fast":                              "hello",
		"web--prod":                          "hello",
		"a-rather-long-project-name-over-30": "hello",
	} {
		if got := serviceNameFor(filepath.Join(t.TempDir(), dir)); got != want {
			t.Errorf("serviceNameFor(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestInitOverwritesNothing(t *testing.T) {
	for _, existing := range []string{"fiat.toml", "main.star", "main_test.star"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, existing), "mine")
			err := Init(dir)
			want := filepath.Join(dir, existing) + " already exists: fiat init creates a new project and overwrites nothing"
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %s", err, want)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("Init wrote files before refusing: %v", entries)
			}
			if data, _ := os.ReadFile(filepath.Join(dir, existing)); string(data) != "mine" {
				t.Errorf("%s was overwritten", existing)
			}
		})
	}
}

func TestExampleHelloLoads(t *testing.T) {
	b, err := Load("../examples/hello")
	if err != nil {
		t.Fatal(err)
	}
	versions, problems := Versions(b)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(versions) != 1 || versions[0].Service != "hello" {
		t.Fatalf("got %d versions, want one of service hello", len(versions))
	}
	want := []string{"lib.star", "main.star", "main_test.star"}
	if got := filePaths(versions[0].Files); !slices.Equal(got, want) {
		t.Errorf("got files %q, want %q", got, want)
	}
}
