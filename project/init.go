package project

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/fiatdev/fiat"
)

// The files of a new project, each a text/template given the service name.
//
//go:embed template
var templateFiles embed.FS

var projectTemplate = template.Must(template.ParseFS(templateFiles, "template/*"))

// Init writes a small working project into dir, creating dir if needed:
// fiat.toml declaring one script service, its main.star and main_test.star.
// The service is named after dir, or "hello" when dir's name is not a valid
// service name. Init overwrites nothing: it refuses if any of these files
// exists.
func Init(dir string) error {
	templates := projectTemplate.Templates()
	for _, t := range templates {
		if _, err := os.Lstat(filepath.Join(dir, t.Name())); err == nil {
			return fmt.Errorf("%s already exists: fiat init creates a new project and overwrites nothing", filepath.Join(dir, t.Name()))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := serviceNameFor(dir)
	for _, t := range templates {
		if err := writeNew(filepath.Join(dir, t.Name()), t, name); err != nil {
			return err
		}
	}
	return nil
}

// serviceNameFor names the service of a new project in dir.
func serviceNameFor(dir string) string {
	// Without an absolute path there is no name to take, and "hello" will do.
	abs, _ := filepath.Abs(dir)
	name := strings.ToLower(filepath.Base(abs))
	if fiat.CheckServiceName(name) != nil {
		return "hello"
	}
	return name
}

// writeNew writes the file name from t, failing if it exists.
func writeNew(name string, t *template.Template, service string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := t.Execute(f, service); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
