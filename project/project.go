// Package project reads a fiat project: fiat.toml and the files of the
// services it declares, from disk (Load) or from the wire (ReadTar), and
// turns it into the versions a deploy stores (Versions).
package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
)

// Bundle is a project as the CLI sends it to the server: fiat.toml and the
// files of every service, paths relative to the project root,
// slash-separated, sorted.
type Bundle struct {
	Files []fiat.File
}

// Load reads the project in dir: fiat.toml and, for each service it
// declares, the .star files under the service's dir (recursively; skipping
// hidden files and directories, symlinks, and the dirs of other services
// nested inside it). It fails only when it cannot tell which files those
// are: a fiat.toml that is not valid TOML gives its problem as
// fiat.Problems. Versions reports every other problem, those of fiat.toml
// included, so that the server reports them with those of the scripts.
func Load(dir string) (Bundle, error) {
	project := os.DirFS(dir)
	manifestData, err := fs.ReadFile(project, manifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return Bundle{}, fmt.Errorf("no fiat.toml in %s: run `fiat init %s` to create a project, or pass the project's directory", dir, dir)
	}
	if err != nil {
		return Bundle{}, err
	}
	m, problems := parseManifest(manifestData)
	if m == nil {
		return Bundle{}, problems
	}
	b := Bundle{Files: []fiat.File{{Path: manifestName, Data: manifestData}}}
	// .fiatignore goes in the bundle, so that the server leaves out the
	// same files.
	switch ignore, err := fs.ReadFile(project, ignoreName); {
	case err == nil:
		m.ignore = parseIgnore(ignore)
		b.Files = append(b.Files, fiat.File{Path: ignoreName, Data: ignore})
	case !errors.Is(err, fs.ErrNotExist):
		return Bundle{}, err
	}
	files, total := len(b.Files), int64(0)
	err = fs.WalkDir(project, ".", func(file string, entry fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case entry.IsDir():
			if !m.mayHoldFiles(file) {
				return fs.SkipDir
			}
		// Symlinks are not regular files: a version holds the files
		// themselves, never pointers out of the project.
		case entry.Type().IsRegular() && m.serviceOf(file) != nil:
			info, err := entry.Info()
			if err != nil {
				return err
			}
			// Counted before it is read: a sparse file of terabytes, or a
			// million files, stop here rather than fill the memory.
			if files++; files > maxFiles {
				return fmt.Errorf("%s: the project has more than %d files: leave the others out with .fiatignore", file, maxFiles)
			}
			if total += info.Size(); total > maxLoadBytes {
				return fmt.Errorf("%s: the project's files pass %d bytes: leave large files out with .fiatignore", file, int64(maxLoadBytes))
			}
			data, err := fs.ReadFile(project, file)
			if err != nil {
				return err
			}
			b.Files = append(b.Files, fiat.File{Path: file, Data: data, Executable: info.Mode()&0o111 != 0})
		}
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	sortFiles(b.Files)
	return b, nil
}

// maxLoadBytes bounds what Load reads; the server's --max-bundle is
// usually far lower, and says so when the bundle reaches it.
const maxLoadBytes = 1 << 30

// Versions parses the bundle's fiat.toml and returns a version for every
// service it declares well enough to build, sorted by service name, with
// Files (relative to the service's dir), Config (defaults applied, also in
// place of a setting that is wrong) and ID filled in; Created is left zero.
// It also returns every problem it finds, so that a deploy reports them
// with those of the versions' scripts, all at once. A service gets no
// version when it has no files to build: its dir is not allowed, holds no
// .star files or no main.star. Only a fiat.toml that is not valid TOML, or
// is missing, gives no versions at all.
func Versions(b Bundle) ([]*fiat.Version, fiat.Problems) {
	m, problems := b.manifest()
	if m == nil {
		return nil, problems
	}
	files := map[*service][]fiat.File{}
	for _, f := range b.Files {
		if svc := m.serviceOf(f.Path); svc != nil {
			files[svc] = append(files[svc], fiat.File{Path: relativeTo(f.Path, svc.dir), Data: f.Data, Executable: f.Executable})
		}
	}
	var versions []*fiat.Version
	for _, svc := range m.services {
		if svc.dir == "" {
			continue // its dir is a problem already
		}
		v := &fiat.Version{Service: svc.name, Config: svc.config, Files: files[svc]}
		if len(svc.uses) > 0 {
			v.Uses = map[string]fiat.Hash{}
			for _, used := range svc.uses {
				v.Uses[used.name] = ""
			}
		}
		sortFiles(v.Files)
		if found := svc.procfile(v); len(found) > 0 {
			problems = append(problems, found...)
			continue
		}
		switch {
		case svc.config.Kind == fiat.Process:
			versions = append(versions, v)
		case len(v.Files) == 0:
			problems = append(problems, svc.dirAt.problem("dir %q holds no files", svc.dir))
		case !slices.ContainsFunc(v.Files, func(f fiat.File) bool { return f.Path == "main.star" }):
			problems = append(problems, fiat.Problem{Path: path.Join(svc.dir, "main.star"), Message: "missing: a script service starts at main.star"})
		default:
			versions = append(versions, v)
		}
	}
	fiat.HashSet(versions)
	if len(problems) == 0 {
		return versions, nil
	}
	sortProblems(problems)
	return versions, problems
}

// procfile makes v, the version of svc, run as its Procfile says, if it
// has one; and reports a process service with neither run nor a Procfile.
// A script service with a Procfile and no main.star is a process service.
func (svc *service) procfile(v *fiat.Version) fiat.Problems {
	i := slices.IndexFunc(v.Files, func(f fiat.File) bool { return f.Path == procfileName })
	hasMain := slices.ContainsFunc(v.Files, func(f fiat.File) bool { return f.Path == "main.star" })
	path := path.Join(svc.dir, procfileName)
	switch {
	case svc.config.Kind == fiat.Process && svc.config.Process.Run != "" && i >= 0:
		return fiat.Problems{{Path: path, Message: "the service has both run in fiat.toml and a Procfile: keep one"}}
	case svc.config.Kind == fiat.Process && svc.config.Process.Run != "":
		return nil
	case svc.config.Kind == fiat.Script && (i < 0 || hasMain || svc.kind == fiat.Script):
		return nil
	case i < 0:
		at := svc.dirAt
		if svc.kindAt != nil {
			at = *svc.kindAt
		}
		return fiat.Problems{at.problem(`service %s is a process service without run: give the command that serves HTTP on $PORT, like run = "./server", or a Procfile in its dir`, svc.name)}
	}
	for _, key := range scriptKeys {
		if at, ok := svc.set[key]; ok {
			return fiat.Problems{at.problem("%s is a key of script services; service %s is a process (it has a Procfile): remove it", key, svc.name)}
		}
	}
	config := v.Config
	p := *svc.process()
	config.Kind, config.MaxSteps, config.Timeout, config.Memory, config.Process = fiat.Process, 0, 0, svc.config.Memory, &p
	if problems := applyProcfile(&p, path, v.Files[i].Data); len(problems) > 0 {
		return problems
	}
	v.Config = config
	return nil
}

// Problems returns every problem of a deploy of b, in the order a user
// reads them: those Versions found, and those found in the versions of
// services, given by service name with paths relative to the service's
// dir. Their paths are made relative to the project root, so that they
// point at the files the user edits. (A version does not know its dir:
// moving a service's dir does not change its versions.) A problem with no
// path, or of a service fiat.toml gives no dir, keeps its path. fiat.toml
// is parsed once, however many problems there are.
func (b Bundle) Problems(found fiat.Problems, byService map[string]fiat.Problems) fiat.Problems {
	m, _ := b.manifest()
	located := slices.Clone(found)
	for name, problems := range byService {
		dir := ""
		if m != nil {
			if i := slices.IndexFunc(m.services, func(svc *service) bool { return svc.name == name }); i >= 0 {
				dir = m.services[i].dir
			}
		}
		for _, p := range problems {
			if dir != "" && p.Path != "" {
				p.Path = path.Join(dir, p.Path)
			}
			located = append(located, p)
		}
	}
	sortProblems(located)
	return located
}

// manifest parses the bundle's fiat.toml; see parseManifest.
func (b Bundle) manifest() (*manifest, fiat.Problems) {
	i := slices.IndexFunc(b.Files, func(f fiat.File) bool { return f.Path == manifestName })
	if i < 0 {
		return nil, fiat.Problems{{Path: manifestName, Message: "missing: a project starts at fiat.toml"}}
	}
	m, problems := parseManifest(b.Files[i].Data)
	if j := slices.IndexFunc(b.Files, func(f fiat.File) bool { return f.Path == ignoreName }); m != nil && j >= 0 {
		m.ignore = parseIgnore(b.Files[j].Data)
	}
	return m, problems
}

func sortFiles(files []fiat.File) {
	slices.SortFunc(files, func(a, b fiat.File) int { return strings.Compare(a.Path, b.Path) })
}
