// Package examples holds the projects a new user deploys first. Its test
// deploys each of them, and a project fresh from `fiat init`, as far as a
// test can: every script compiles, starts and passes its own tests.
package examples

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fiatdev/fiat/project"
	"github.com/fiatdev/fiat/script"
)

func TestExamplesPassTheirTests(t *testing.T) {
	initialized := filepath.Join(t.TempDir(), "shop")
	if _, err := project.Init(initialized, ""); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"hello", initialized} {
		b, err := project.Load(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		versions, problems := project.Versions(b)
		if len(problems) > 0 {
			t.Fatalf("%s: %v", dir, problems)
		}
		for _, v := range versions {
			program, err := script.Compile(v)
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			app, err := program.Start(script.Options{})
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			if err := app.Test(context.Background()); err != nil {
				t.Errorf("%s: %v", dir, err)
			}
		}
	}
}
