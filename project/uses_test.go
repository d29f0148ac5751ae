package project

import (
	"slices"
	"strings"
	"testing"

	"github.com/fiatdev/fiat"
)

func TestUsesRefusesWhatCannotBeCalled(t *testing.T) {
	for name, test := range map[string]struct {
		manifest string
		want     []string
	}{
		"unknown service": {
			manifest: "[services.web]\ndir = \"web\"\nuses = [\"apl\"]\n[services.api]\ndir = \"api\"\n",
			want:     []string{"fiat.toml:3:9: uses apl, which this project does not have: did you mean api?"},
		},
		"itself": {
			manifest: "[services.web]\ndir = \"web\"\nuses = [\"web\"]\n",
			want:     []string{"fiat.toml:3:9: service web uses itself: a service calls its own code directly, not through uses"},
		},
		"not a name": {
			manifest: "[services.web]\ndir = \"web\"\nuses = [1]\n",
			want:     []string{`fiat.toml:3:9: uses holds service names, like uses = ["api"], not an integer`},
		},
		"a cycle through three": {
			manifest: "[services.web]\ndir = \"web\"\nuses = [\"api\"]\n[services.api]\ndir = \"api\"\nuses = [\"db\"]\n[services.db]\ndir = \"db\"\nuses = [\"web\"]\n",
			want:     []string{"fiat.toml:3:9: uses form a cycle: api → db → web → api: a service cannot use, even through others, a service that uses it; move what both need into a service of its own"},
		},
		"a reference to a service not used": {
			manifest: "[services.web]\ndir = \"web\"\nenv = { API_URL = \"${api.version_url}\" }\n[services.api]\ndir = \"api\"\n",
			want:     []string{`fiat.toml:3:19: env API_URL names ${api.version_url}, but service web does not use api: add uses = ["api"]`},
		},
		"a reference fiat cannot fill": {
			manifest: "[services.web]\ndir = \"web\"\nuses = [\"api\"]\nenv = { API_URL = \"${api.url}\" }\n[services.api]\ndir = \"api\"\n",
			want:     []string{"fiat.toml:4:19: env API_URL: ${api.url}: a used service has only ${api.version_url}"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, problems := Versions(bundleOf(test.manifest, "web/main.star", "api/main.star", "db/main.star"))
			if got := problemsOf(t, problems); !slices.Equal(got, test.want) {
				t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(test.want, "\n"))
			}
		})
	}
}

// A version's hash holds the hashes of the versions it uses: a change to
// api makes a new web, and a change to web leaves api alone.
func TestUsesMakeVersionsOfTheirUsers(t *testing.T) {
	const manifest = "[services.web]\ndir = \"web\"\nuses = [\"api\"]\n[services.api]\ndir = \"api\"\n"
	ids := func(files map[string]string) map[string]*fiat.Version {
		b := Bundle{Files: []fiat.File{{Path: manifestName, Data: []byte(manifest)}}}
		for path, data := range files {
			b.Files = append(b.Files, fiat.File{Path: path, Data: []byte(data)})
		}
		versions, problems := Versions(b)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		of := map[string]*fiat.Version{}
		for _, v := range versions {
			of[v.Service] = v
		}
		return of
	}
	before := ids(map[string]string{"web/main.star": "w = 1", "api/main.star": "a = 1"})
	if before["web"].Uses["api"] != before["api"].ID {
		t.Fatalf("web uses %v, want api at %s", before["web"].Uses, before["api"].ID)
	}
	apiChanged := ids(map[string]string{"web/main.star": "w = 1", "api/main.star": "a = 2"})
	if apiChanged["api"].ID == before["api"].ID || apiChanged["web"].ID == before["web"].ID {
		t.Error("a change to api did not make new versions of api and web")
	}
	webChanged := ids(map[string]string{"web/main.star": "w = 2", "api/main.star": "a = 1"})
	if webChanged["api"].ID != before["api"].ID || webChanged["web"].ID == before["web"].ID {
		t.Error("a change to web did not leave api alone")
	}
}
