package script

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// mainModule is the module a version starts from.
const mainModule = "main.star"

// fileOptions is the Starlark dialect of script services. Top-level loops
// and reassignment let a module declare routes from a table. Recursion stays
// off: a recursive request could grow a goroutine stack by hundreds of MB
// before its step limit stops it.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
}

// Program is one version's compiled code: immutable and safe to share.
type Program struct {
	id      fiat.Hash
	service string
	config  fiat.Config
	// modules holds every .star file of the version, by path relative to
	// the service's dir.
	modules map[string]*starlark.Program
	// sources holds the SHA-256 of each module's source, so that the next
	// version can take the modules it does not change. A program read
	// from the cache has none.
	sources map[string][sha256.Size]byte
	// assets are the version's other files, by path, which http.static
	// serves.
	assets map[string][]byte
	// environ is the service's config, as config() reads it.
	environ map[string]string
}

// ID is the hash of the version the program was compiled from.
func (p *Program) ID() fiat.Hash { return p.id }

// testFiles are the paths of the version's test files, sorted.
func (p *Program) testFiles() []string {
	var paths []string
	for path := range p.modules {
		if isTestFile(path) {
			paths = append(paths, path)
		}
	}
	slices.Sort(paths)
	return paths
}

// Compile parses and compiles every .star file of v. Problems in the user's
// code come back as fiat.Problems located path:line:col, path relative to
// the service's dir ("main.star:3:7: undefined: foo"): all of them, not just
// the first.
func Compile(v *fiat.Version) (*Program, error) {
	return CompileFrom(v, nil)
}

// CompileFrom is Compile, but takes each module whose source is unchanged
// from previous, a program of an earlier version, instead of compiling it
// again: compiled modules are immutable, so versions can share them.
// previous may be nil.
func CompileFrom(v *fiat.Version, previous *Program) (*Program, error) {
	p := &Program{id: v.ID, service: v.Service, config: v.Config, modules: map[string]*starlark.Program{}, sources: map[string][sha256.Size]byte{}, assets: map[string][]byte{}, environ: v.Config.Environ()}
	var problems fiat.Problems
	failed := map[string]bool{}
	for _, f := range v.Files {
		if path.Ext(f.Path) != ".star" {
			p.assets[f.Path] = f.Data
			continue
		}
		source := sha256.Sum256(f.Data)
		p.sources[f.Path] = source
		if prog := previous.unchanged(f.Path, source); prog != nil {
			p.modules[f.Path] = prog
			continue
		}
		_, prog, err := starlark.SourceProgramOptions(fileOptions, f.Path, f.Data, predeclaredFor(f.Path).Has)
		if err != nil {
			problems = append(problems, compileProblems(err)...)
			failed[f.Path] = true
			continue
		}
		p.modules[f.Path] = prog
	}
	if p.modules[mainModule] == nil && !failed[mainModule] {
		problems = append(problems, fiat.Problem{Path: mainModule, Message: "no such file: a script service starts from main.star"})
	}
	problems = append(problems, p.checkLoads(failed)...)
	if len(problems) > 0 {
		slices.SortStableFunc(problems, fiat.Problem.Compare)
		return nil, problems
	}
	return p, nil
}

// unchanged returns p's module at path if its source had the given hash.
func (p *Program) unchanged(path string, source [sha256.Size]byte) *starlark.Program {
	if p == nil {
		return nil
	}
	if have, ok := p.sources[path]; !ok || have != source {
		return nil
	}
	return p.modules[path]
}

// modulePath is the path of the module that load(name) means: relative to
// the service's dir, and inside it.
func modulePath(name string) (string, error) {
	p := path.Clean(name)
	if path.IsAbs(name) || !fs.ValidPath(p) {
		return "", errors.New("load paths are relative to the service's directory and stay inside it, like \"lib/util.star\"")
	}
	return p, nil
}

// checkLoads checks that every load statement names a module of the
// version that it may load, and that no module ends up loading itself.
// Files in failed exist but did not compile.
func (p *Program) checkLoads(failed map[string]bool) fiat.Problems {
	var problems fiat.Problems
	loads := map[string][]load{}
	for _, from := range slices.Sorted(maps.Keys(p.modules)) {
		prog := p.modules[from]
		for i := range prog.NumLoads() {
			name, pos := prog.Load(i)
			to, err := modulePath(name)
			switch {
			case err != nil:
				problems = append(problems, problemAt(pos, fmt.Sprintf("cannot load %q: %v", name, err)))
			case p.modules[to] == nil && !failed[to]:
				problems = append(problems, problemAt(pos, fmt.Sprintf("cannot load %q: no such .star file in the service", name)))
			case isTestFile(to) && !isTestFile(from):
				problems = append(problems, problemAt(pos, fmt.Sprintf("cannot load %q: only test files may load test files", name)))
			default:
				loads[from] = append(loads[from], load{to, pos})
			}
		}
	}
	return append(problems, loadCycles(loads)...)
}

type load struct {
	module string
	pos    syntax.Position
}

// loadCycles reports each load statement that closes a cycle, which would
// otherwise fail only when the version starts.
func loadCycles(loads map[string][]load) fiat.Problems {
	var problems fiat.Problems
	const (
		visiting = 1
		visited  = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(module string)
	visit = func(module string) {
		state[module] = visiting
		stack = append(stack, module)
		for _, l := range loads[module] {
			switch state[l.module] {
			case 0:
				visit(l.module)
			case visiting:
				cycle := slices.Concat(stack[slices.Index(stack, l.module):], []string{l.module})
				problems = append(problems, problemAt(l.pos, "load cycle: "+strings.Join(cycle, " loads ")))
			}
		}
		stack = stack[:len(stack)-1]
		state[module] = visited
	}
	for _, module := range slices.Sorted(maps.Keys(loads)) {
		if state[module] == 0 {
			visit(module)
		}
	}
	return problems
}
