package project

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/pelletier/go-toml/v2/unstable"
)

// manifestName is the file at the root of every project.
const manifestName = "fiat.toml"

// Defaults and limits of a service's settings. The messages that enforce
// the limits spell them out, so change those too.
const (
	defaultMaxSteps = 1_000_000
	maxMaxSteps     = 10_000_000_000
	defaultTimeout  = 2 * time.Second
	minTimeout      = time.Millisecond
	maxTimeout      = 5 * time.Minute
	minMemory       = 1 << 20
	maxMemory       = 4 << 30
	// maxScriptMemory bounds a script's budget: one operation on one
	// string (upper, replace, find) runs to its end once it has started,
	// and over this much it would run on for more than 100 ms past the
	// request's time limit.
	maxScriptMemory = 64 << 20
	// A process service's defaults and limits.
	defaultProcessMemory = 512 << 20
	maxStartTimeout      = 10 * time.Minute
	maxStopTimeout       = 5 * time.Minute
)

// serviceKeys are the keys of a [services.NAME] table, with the TOML types
// each takes and an example value for messages.
var serviceKeys = map[string]struct {
	kinds   []unstable.Kind
	example string
}{
	"dir":           {[]unstable.Kind{unstable.String}, `"hello"`},
	"kind":          {[]unstable.Kind{unstable.String}, `"script"`},
	"max_steps":     {[]unstable.Kind{unstable.Integer}, "1_000_000"},
	"memory":        {[]unstable.Kind{unstable.String, unstable.Integer}, `"64MiB"`},
	"timeout":       {[]unstable.Kind{unstable.String}, `"2s"`},
	"run":           {[]unstable.Kind{unstable.String}, `"./server"`},
	"build":         {[]unstable.Kind{unstable.String}, `"go build -o server ."`},
	"health":        {[]unstable.Kind{unstable.String}, `"/healthz"`},
	"instances":     {[]unstable.Kind{unstable.Integer}, "2"},
	"start_timeout": {[]unstable.Kind{unstable.String}, `"60s"`},
	"stop_timeout":  {[]unstable.Kind{unstable.String}, `"30s"`},
	"env":           {[]unstable.Kind{unstable.Table}, `{ GREETING = "hello" }`},
	"uses":          {[]unstable.Kind{unstable.Array}, `["api"]`},
}

// maxUses bounds the services one service uses.
const maxUses = 64

// scriptKeys are the keys only script services take.
var scriptKeys = []string{"max_steps", "timeout"}

var serviceKeyNames = slices.Sorted(maps.Keys(serviceKeys))

// manifest is a project's fiat.toml, read and checked.
type manifest struct {
	services []*service // sorted by name
	dirs     dirTree    // of the services that have one
	// ignore is .fiatignore's, if the project has one.
	ignore gitignore.Matcher
}

// service is what fiat.toml says about one service.
type service struct {
	name string
	// dir holds the service's files: clean, slash-separated and relative to
	// the project root. It is "" when fiat.toml gives a dir that is not
	// allowed, or another service's (a problem already reported), so that
	// the service owns no files and clashes with no other.
	dir string
	// dirAt is where dir is given, or where the service is first named when
	// it has the default dir.
	dirAt  position
	config fiat.Config
	// set are the keys fiat.toml sets, where, to check once the kind is
	// known that they are the kind's.
	set map[string]position
	// kind is where kind is given, if it is, and what it says.
	kindAt *position
	kind   fiat.Kind
	// uses are the services it calls, as fiat.toml names them.
	uses []keyPart
	// envAt is where each key of its env is given.
	envAt map[string]position
}

// parseManifest reads and checks fiat.toml. It returns every problem found,
// and a nil manifest only when data is not valid TOML.
func parseManifest(data []byte) (*manifest, fiat.Problems) {
	settings, problem := readSettings(data)
	if problem != nil {
		return nil, fiat.Problems{*problem}
	}
	c := checker{services: map[string]*service{}, reported: map[string]bool{}}
	for _, s := range settings {
		c.check(s)
	}
	m := &manifest{services: slices.SortedFunc(maps.Values(c.services), func(a, b *service) int {
		return strings.Compare(a.name, b.name)
	})}
	c.checkDirsDiffer(m.services)
	for _, svc := range m.services {
		c.checkKind(svc)
		c.checkUses(svc)
	}
	c.checkNoCycle(m.services)
	for _, svc := range m.services {
		if svc.dir != "" {
			m.dirs.add(svc)
		}
	}
	if len(m.services) == 0 {
		c.problems = append(c.problems, fiat.Problem{Path: manifestName, Message: "declares no services: add a [services.NAME] table"})
	}
	sortProblems(c.problems)
	return m, c.problems
}

// sortProblems puts the problems of fiat.toml first, in the order a user
// reads it, then those of other files.
func sortProblems(problems fiat.Problems) {
	fileOrder := func(p fiat.Problem) int {
		if p.Path == manifestName {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(problems, func(a, b fiat.Problem) int {
		return cmp.Or(cmp.Compare(fileOrder(a), fileOrder(b)), a.Compare(b))
	})
}

// checker holds what fiat.toml has said so far, and what is wrong with it.
type checker struct {
	services map[string]*service
	// reported holds the keys already found wrong, so that the settings
	// under them (the keys of an unknown table, say) add no more problems.
	reported map[string]bool
	problems fiat.Problems
}

func (c *checker) report(at position, format string, args ...any) {
	c.problems = append(c.problems, at.problem(format, args...))
}

func (c *checker) reportKey(key []keyPart, at position, format string, args ...any) {
	c.reported[keyString(key)] = true
	c.report(at, format, args...)
}

func (c *checker) check(s setting) {
	for i := range s.key {
		if c.reported[keyString(s.key[:i+1])] {
			return
		}
	}
	switch {
	case s.key[0].name != "services":
		c.unknownKey(s.key[:1], []string{"services"}, "fiat.toml holds only [services.NAME] tables")
	case len(s.key) == 1:
		c.expectTable(s)
	case len(s.key) == 2:
		if c.expectTable(s) {
			c.service(s.key[1])
		}
	default:
		c.setKey(c.service(s.key[1]), s)
	}
}

// expectTable reports s unless it is a table.
func (c *checker) expectTable(s setting) bool {
	if s.kind == unstable.Table {
		return true
	}
	example := "services.hello"
	if len(s.key) == 2 {
		example = keyString(s.key)
	}
	c.reportKey(s.key, s.at, "%s must be a table, like [%s], not %s", keyString(s.key), example, kindNames[s.kind])
	return false
}

// service returns the service called name, declaring it with the default
// settings at its first mention.
func (c *checker) service(name keyPart) *service {
	if svc, ok := c.services[name.name]; ok {
		return svc
	}
	if err := fiat.CheckServiceName(name.name); err != nil {
		c.report(name.at, "%s", err)
	}
	svc := &service{
		name:   name.name,
		dir:    ".",
		dirAt:  name.at,
		config: fiat.Config{Kind: fiat.Script, MaxSteps: defaultMaxSteps, Timeout: defaultTimeout, Memory: fiat.DefaultMemory},
		set:    map[string]position{},
	}
	c.services[name.name] = svc
	return svc
}

// setKey applies s, a key of the [services.NAME] table of svc.
func (c *checker) setKey(svc *service, s setting) {
	name := s.key[2].name
	if name == "env" && len(s.key) > 3 {
		c.setEnv(svc, s)
		return
	}
	if len(s.key) > 3 {
		// A key under another key makes that one a table.
		s = setting{key: s.key[:3], kind: unstable.Table, at: s.key[2].at}
	}
	want, known := serviceKeys[name]
	if known {
		svc.set[name] = s.at
	}
	switch {
	case !known:
		c.unknownKey(s.key, serviceKeyNames, "a service's keys are "+strings.Join(serviceKeyNames, ", "))
	case !slices.Contains(want.kinds, s.kind):
		var kinds []string
		for _, k := range want.kinds {
			kinds = append(kinds, kindNames[k])
		}
		c.reportKey(s.key, s.at, "%s must be %s, like %s = %s, not %s", keyString(s.key), strings.Join(kinds, " or "), name, want.example, kindNames[s.kind])
	case name == "dir":
		c.setDir(svc, s)
	case name == "kind":
		c.setKind(svc, s)
	case name == "run", name == "build":
		if strings.TrimSpace(s.value) == "" {
			c.report(s.at, "%s is empty: give the command, like %s = %s", name, name, want.example)
			return
		}
		if name == "run" {
			svc.process().Run = s.value
		} else {
			svc.process().Build = s.value
		}
	case name == "health":
		if !strings.HasPrefix(s.value, "/") || strings.ContainsAny(s.value, " \t\r\n") {
			c.report(s.at, "health %q is not a path: give the path that answers 2xx once an instance is ready, like \"/healthz\"", s.value)
			return
		}
		svc.process().Health = s.value
	case name == "instances":
		n, err := strconv.ParseInt(s.value, 0, 64)
		if err != nil || n < 0 || n > fiat.MaxInstances {
			c.report(s.at, "instances must be from 0 to %d, not %s", fiat.MaxInstances, s.value)
			return
		}
		svc.process().Instances = int(n)
	case name == "start_timeout", name == "stop_timeout":
		limit := maxStartTimeout
		if name == "stop_timeout" {
			limit = maxStopTimeout
		}
		d, err := time.ParseDuration(s.value)
		switch {
		case err != nil:
			c.report(s.at, `%s %q is not a duration: write it like "30s" or "2m"`, name, s.value)
		case d < time.Second || d > limit:
			c.report(s.at, "%s must be from 1s to %s, not %q", name, limit, s.value)
		case name == "start_timeout":
			svc.process().StartTimeout = d
		default:
			svc.process().StopTimeout = d
		}
	case name == "env":
		// The table itself: its keys come as settings of their own.
	case name == "uses":
		c.setUses(svc, s)
	case name == "max_steps":
		// TOML integers are Go integer literals, and the decoder has
		// checked that they fit an int64.
		n, err := strconv.ParseInt(s.value, 0, 64)
		if err != nil || n < 1 || n > maxMaxSteps {
			c.report(s.at, "max_steps must be from 1 to 10_000_000_000, not %s", s.value)
			return
		}
		svc.config.MaxSteps = uint64(n)
	case name == "memory":
		memory, err := parseMemory(s)
		if err != nil {
			c.report(s.at, "%s", err)
			return
		}
		svc.config.Memory = memory
	case name == "timeout":
		timeout, err := time.ParseDuration(s.value)
		switch {
		case err != nil:
			c.report(s.at, `timeout %q is not a duration: write it like "2s" or "500ms"`, s.value)
		case timeout < minTimeout || timeout > maxTimeout:
			c.report(s.at, "timeout must be from 1ms to 5m, not %q", s.value)
		default:
			svc.config.Timeout = timeout
		}
	}
}

// humanBytes writes n as fiat.toml would: "1GiB", "100MB", or bytes.
func humanBytes(n uint64) string {
	for _, unit := range []string{"GiB", "MiB", "KiB", "GB", "MB", "KB"} {
		if scale := memoryUnits[unit]; n%scale == 0 {
			return fmt.Sprintf("%d%s", n/scale, unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// memoryUnits are the units of memory = "64MiB": powers of 1024 and of
// 1000, as their names say. (go-humanize's ParseBytes would also take
// floats, and a bare "M" that some read as MB and others as MiB.)
var memoryUnits = map[string]uint64{
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
	"KB": 1e3, "MB": 1e6, "GB": 1e9,
}

// parseMemory reads memory, an integer of bytes or a string like "64MiB",
// and checks its range.
func parseMemory(s setting) (uint64, error) {
	const units = `KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000)`
	outOfRange := func() error {
		if s.kind == unstable.Integer {
			return fmt.Errorf("memory must be from 1MiB to 4GiB (%d to %d bytes), not %s", minMemory, maxMemory, s.value)
		}
		return fmt.Errorf("memory must be from 1MiB to 4GiB, not %q", s.value)
	}
	var n uint64
	if s.kind == unstable.Integer {
		// A TOML integer is a Go integer literal that fits an int64.
		bytes, err := strconv.ParseInt(s.value, 0, 64)
		if err != nil || bytes < 0 {
			return 0, outOfRange()
		}
		n = uint64(bytes)
	} else {
		digits := strings.TrimLeft(s.value, "0123456789")
		number, unit := s.value[:len(s.value)-len(digits)], strings.TrimSpace(digits)
		scale, known := memoryUnits[unit]
		switch {
		case number == "" || strings.HasPrefix(unit, "."):
			return 0, fmt.Errorf("memory %q is not a size: write a whole number and a unit of %s, like \"64MiB\", or an integer of bytes", s.value, units)
		case unit == "":
			return 0, fmt.Errorf("memory %q has no unit: write it like \"%sMiB\", or as an integer of bytes, memory = %s", s.value, number, number)
		case !known:
			for name := range memoryUnits {
				if strings.EqualFold(unit, name) {
					return 0, fmt.Errorf("memory %q: units are case-sensitive, did you mean \"%s%s\"?", s.value, number, name)
				}
			}
			return 0, fmt.Errorf("memory %q has an unknown unit %q: units are %s", s.value, unit, units)
		}
		count, err := strconv.ParseUint(number, 10, 64)
		if err != nil || count > maxMemory/scale {
			return 0, outOfRange()
		}
		n = count * scale
	}
	if n < minMemory || n > maxMemory {
		return 0, outOfRange()
	}
	return n, nil
}

func (c *checker) setDir(svc *service, s setting) {
	dir := path.Clean(s.value)
	svc.dir, svc.dirAt = "", s.at
	switch {
	case path.IsAbs(dir):
		c.report(s.at, "dir %q is absolute: give it relative to fiat.toml", s.value)
	case dir == ".." || strings.HasPrefix(dir, "../"):
		c.report(s.at, "dir %q is outside the project: a service's dir must be inside the directory of fiat.toml", s.value)
	default:
		svc.dir = dir
	}
}

func (c *checker) setKind(svc *service, s setting) {
	switch fiat.Kind(s.value) {
	case fiat.Script, fiat.Process:
		at := s.at
		svc.kindAt, svc.kind = &at, fiat.Kind(s.value)
		if svc.kind == fiat.Process {
			svc.process()
		}
	default:
		c.report(s.at, `kind %q is unknown: a service is a "script" (main.star) or a "process" (with run = "...")`, s.value)
	}
}

// process makes svc a process service, with the defaults, and returns how
// it runs.
func (svc *service) process() *fiat.ProcessConfig {
	if svc.config.Process == nil {
		svc.config.Kind = fiat.Process
		svc.config.MaxSteps, svc.config.Timeout = 0, 0
		if _, set := svc.set["memory"]; !set {
			svc.config.Memory = defaultProcessMemory
		}
		svc.config.Process = &fiat.ProcessConfig{Instances: fiat.DefaultInstances, StartTimeout: fiat.DefaultStartTimeout, StopTimeout: fiat.DefaultStopTimeout}
	}
	return svc.config.Process
}

// configKey is what a key of a service's env table may be: an environment
// variable's name. PORT and PATH are fiat's to set.
var configKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// setEnv applies s, a key of a service's env table.
func (c *checker) setEnv(svc *service, s setting) {
	key := s.key[3].name
	switch {
	case len(s.key) > 4:
		c.reportKey(s.key, s.at, "%s is not a table: env holds KEY = \"value\" pairs", keyString(s.key[:4]))
	case s.kind != unstable.String:
		c.reportKey(s.key, s.at, "%s must be a string, like %s = \"value\", not %s", keyString(s.key), key, kindNames[s.kind])
	case !configKey.MatchString(key):
		c.report(s.key[3].at, "env key %q: use letters, digits and _, not starting with a digit (an environment variable's name)", key)
	case key == "PORT" || key == "PATH":
		c.report(s.key[3].at, "env key %s is set by fiat for every instance: choose another name", key)
	default:
		if svc.config.Env == nil {
			svc.config.Env, svc.envAt = map[string]string{}, map[string]position{}
		}
		svc.config.Env[key], svc.envAt[key] = s.value, s.at
	}
}

// checkKind reports the keys of the other kind that svc sets, once the
// whole of fiat.toml says which kind it is.
func (c *checker) checkKind(svc *service) {
	if at, ok := svc.set["memory"]; ok && svc.config.Kind == fiat.Script && svc.config.Memory > maxScriptMemory {
		c.report(at, "memory of a script service is at most 64MiB, not %s: one string operation on more could not be stopped in time at the request's timeout; run work that needs more memory in a process service (run = ...)", humanBytes(svc.config.Memory))
	}
	if svc.kind == fiat.Script && svc.config.Kind == fiat.Process {
		c.report(*svc.kindAt, `service %s says kind = "script" but sets keys of a process service (run, build, health, instances, start_timeout, stop_timeout): remove one or the other`, svc.name)
		return
	}
	if svc.config.Kind == fiat.Process {
		for _, key := range scriptKeys {
			if at, ok := svc.set[key]; ok {
				c.report(at, "%s is a key of script services; service %s is a process (it has run): remove it", key, svc.name)
			}
		}
	}
}

// unknownKey reports key, suggesting the known key it is closest to, or
// giving hint when none is close.
func (c *checker) unknownKey(key []keyPart, known []string, hint string) {
	last := key[len(key)-1]
	if match := closest(last.name, known); match != "" {
		hint = "did you mean " + match + "?"
	}
	c.reportKey(key, last.at, "unknown key %s: %s", keyString(key), hint)
}

// checkDirsDiffer reports each service whose dir an earlier one in
// fiat.toml has, and clears its dir: a file belongs to one service.
func (c *checker) checkDirsDiffer(services []*service) {
	inDocumentOrder := slices.SortedFunc(slices.Values(services), func(a, b *service) int {
		return cmp.Or(cmp.Compare(a.dirAt.line, b.dirAt.line), cmp.Compare(a.dirAt.col, b.dirAt.col))
	})
	byDir := map[string]*service{}
	for _, svc := range inDocumentOrder {
		if svc.dir == "" {
			continue
		}
		if other, ok := byDir[svc.dir]; ok {
			c.report(svc.dirAt, "services %s and %s have the same dir %q: give each service a dir of its own", other.name, svc.name, svc.dir)
			svc.dir = ""
			continue
		}
		byDir[svc.dir] = svc
	}
}

// closest returns the known word that word is most likely a typo of, or "".
func closest(word string, known []string) string {
	const maxTypos = 2
	word = strings.ToLower(word)
	best, bestDistance := "", maxTypos+1
	for _, k := range known {
		if d := editDistance(word, k); d < bestDistance {
			best, bestDistance = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := range len(a) {
		cur := make([]int, len(b)+1)
		cur[0] = i + 1
		for j := range len(b) {
			cost := 1
			if a[i] == b[j] {
				cost = 0
			}
			cur[j+1] = min(prev[j]+cost, prev[j+1]+1, cur[j]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}

// dirTree holds the dirs of services, one element per level, so that
// finding the service of a file takes time in the length of its path
// rather than in the number of services.
type dirTree struct {
	service *service // whose dir this is, or nil
	sub     map[string]*dirTree
}

func (t *dirTree) add(svc *service) {
	node := t
	if svc.dir != "." {
		for elem := range strings.SplitSeq(svc.dir, "/") {
			if node.sub == nil {
				node.sub = map[string]*dirTree{}
			}
			if node.sub[elem] == nil {
				node.sub[elem] = &dirTree{}
			}
			node = node.sub[elem]
		}
	}
	node.service = svc
}

// owner returns the service whose dir is the deepest to hold the path
// made of elems, and how many of elems that dir has; or nil. onPath
// reports whether elems lead to a service's dir or are one.
func (t *dirTree) owner(elems []string) (owner *service, depth int, onPath bool) {
	node := t
	owner = t.service
	for i, elem := range elems {
		if node = node.sub[elem]; node == nil {
			return owner, depth, false
		}
		if node.service != nil {
			owner, depth = node.service, i+1
		}
	}
	return owner, depth, true
}

// serviceOf returns the service that file (a path relative to the project
// root) belongs to, or nil. A service owns the files under its dir, except
// hidden ones (.git, .env), fiat.toml, those .fiatignore leaves out and
// those under the dir of a service nested inside it. Load and Versions share this rule, so that a version
// holds the same files whether it comes from disk or over the wire.
func (m *manifest) serviceOf(file string) *service {
	if file == manifestName || m.ignored(file, false) {
		return nil
	}
	elems := strings.Split(file, "/")
	owner, depth, _ := m.dirs.owner(elems[:len(elems)-1])
	if owner == nil || hidden(elems[depth:]) {
		return nil
	}
	return owner
}

// mayHoldFiles reports whether the directory dir (relative to the project
// root) may hold files of a service, or lead to one's dir: Load walks no
// other directories.
func (m *manifest) mayHoldFiles(dir string) bool {
	if m.ignored(dir, true) {
		return false
	}
	var elems []string
	if dir != "." {
		elems = strings.Split(dir, "/")
	}
	owner, depth, onPath := m.dirs.owner(elems)
	return onPath || owner != nil && !hidden(elems[depth:])
}

// relativeTo returns p, which is inside dir, relative to dir.
func relativeTo(p, dir string) string {
	switch {
	case dir == ".":
		return p
	case p == dir:
		return "."
	}
	return strings.TrimPrefix(p, dir+"/")
}

// hidden reports whether a path, given as its elements, has one starting
// with a dot, as .git and editors' backups do.
func hidden(elems []string) bool {
	return slices.ContainsFunc(elems, func(elem string) bool { return strings.HasPrefix(elem, ".") })
}
