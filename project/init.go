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

// NewProject is what Init wrote.
type NewProject struct {
	Dir     string `json:"dir"`
	Service string `json:"service"`
	// Note says why the service is not called what its dir is, when Init
	// derived its name from the dir's.
	Note string `json:"note,omitempty"`
}

// Init writes a small working project into dir, creating dir if needed:
// fiat.toml declaring one script service, its main.star and main_test.star.
// The service is called service or, when that is "", after dir (see
// serviceNameFor). Init overwrites nothing: it refuses if any of these
// files exists.
func Init(dir, service string) (NewProject, error) {
	created := NewProject{Dir: dir, Service: service}
	var err error
	if service == "" {
		created.Service, created.Note, err = serviceNameFor(dir)
	} else {
		err = fiat.CheckServiceName(service)
	}
	if err != nil {
		return NewProject{}, err
	}
	templates := projectTemplate.Templates()
	for _, t := range templates {
		if _, err := os.Lstat(filepath.Join(dir, t.Name())); err == nil {
			return NewProject{}, fmt.Errorf("%s already exists: fiat init creates a new project and overwrites nothing", filepath.Join(dir, t.Name()))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return NewProject{}, err
	}
	for _, t := range templates {
		if err := writeNew(filepath.Join(dir, t.Name()), t, created.Service); err != nil {
			return NewProject{}, err
		}
	}
	return created, nil
}

// serviceNameFor names the service of a new project in dir after dir's
// name: lowercased, each run of other characters than letters and digits
// made one dash, without the digits and dashes a name cannot start with,
// and cut to fiat.MaxNameLen. A name that is not dir's as it is comes with
// a note saying why. Any other name would be a surprise: "hello", say,
// would replace the example of that name where both are deployed.
func serviceNameFor(dir string) (name, note string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("cannot name the service after %s (%v): name it with --name NAME", dir, err)
	}
	base := filepath.Base(abs)
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(base) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteRune(c)
	}
	name = strings.TrimLeft(b.String(), "0123456789-")
	if len(name) > fiat.MaxNameLen {
		name = strings.TrimRight(name[:fiat.MaxNameLen], "-")
	}
	if name == "" {
		return "", "", fmt.Errorf("cannot name the service after the directory %q, which has no letter: name it with --name NAME", base)
	}
	if err := fiat.CheckServiceName(name); err != nil {
		return "", "", fmt.Errorf("cannot name the service after the directory %q: %v; name it with --name NAME", base, err)
	}
	if name != base {
		note = fmt.Sprintf("named the service %s after its directory: %v; choose another name with --name NAME", name, fiat.CheckServiceName(base))
	}
	return name, note, nil
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
