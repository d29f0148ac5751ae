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
	created, err := Init(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := (NewProject{Dir: dir, Service: "shop"}); created != want {
		t.Errorf("got %+v, want %+v", created, want)
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

// A project is named after its dir, whatever the dir is called: a fixed
// name would replace the service of that name where both are deployed.
func TestInitNamesTheServiceAfterItsDir(t *testing.T) {
	for dir, want := range map[string]string{
		"shop":                               "shop",
		"web-2":                              "web-2",
		"Shop":                               "shop",
		"My Project!":                        "my-project",
		"my_app":                             "my-app",
		"--a--b__c  d--":                     "a-b-c-d",
		"2fast":                              "fast",
		"42 - the answer":                    "the-answer",
		"web--prod":                          "web-prod",
		"café":                               "caf",
		"a-rather-long-project-name-over-30": "a-rather-long-project-name-ove",
		"a-rather-long-project-name-ov-x":    "a-rather-long-project-name-ov",
	} {
		parent := t.TempDir()
		created, err := Init(filepath.Join(parent, dir), "")
		if err != nil {
			t.Errorf("%q: %v", dir, err)
			continue
		}
		if created.Service != want {
			t.Errorf("%q: named %q, want %q", dir, created.Service, want)
		}
		if (created.Note == "") != (dir == want) {
			t.Errorf("%q: got note %q", dir, created.Note)
		}
		_, versions := load(t, filepath.Join(parent, dir))
		if len(versions) != 1 || versions[0].Service != want {
			t.Errorf("%q: the project does not deploy as %s", dir, want)
		}
	}
	created, err := Init(filepath.Join(t.TempDir(), "My Project!"), "")
	want := `named the service my-project after its directory: service name "My Project!" must start with a lowercase letter: service names use lowercase letters, digits and single dashes, start with a letter and are at most 30 characters; choose another name with --name NAME`
	if err != nil || created.Note != want {
		t.Errorf("got %q, %v, want the note %q", created.Note, err, want)
	}
}

func TestInitRefusesADirWithNoName(t *testing.T) {
	for dir, want := range map[string]string{
		"123":              `cannot name the service after the directory "123", which has no letter: name it with --name NAME`,
		"...":              `cannot name the service after the directory "...", which has no letter: name it with --name NAME`,
		"pay-nkd6hs5f6kay": `cannot name the service after the directory "pay-nkd6hs5f6kay": service name "pay-nkd6hs5f6kay" ends in "-nkd6hs5f6kay", which reads as version nkd6hs5f6kay of service "pay"`,
	} {
		dir := filepath.Join(t.TempDir(), dir)
		_, err := Init(dir, "")
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("got %v, want %s", err, want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s was created", dir)
		}
		// A name given is used as it is.
		created, err := Init(dir, "shop")
		if err != nil || created.Service != "shop" || created.Note != "" {
			t.Errorf("--name shop in %s: got %+v, %v", dir, created, err)
		}
	}
}

func TestInitRefusesABadName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	_, err := Init(dir, "Shop")
	if want := `service name "Shop" must start with a lowercase letter`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s was created", dir)
	}
}

func TestInitOverwritesNothing(t *testing.T) {
	for _, existing := range []string{"fiat.toml", "main.star", "main_test.star"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, existing), "mine")
			_, err := Init(dir, "shop")
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
