// Package fiat holds the domain types every other package builds on:
// services, versions and their content hashes, environments, and the
// problems a refused deploy reports. It depends on nothing outside the
// standard library.
package fiat

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Kind says how a service runs.
type Kind string

const (
	// Script services are Starlark code run inside fiat.
	Script Kind = "script"
	// Process services are commands fiat runs, listening on PORT.
	Process Kind = "process"
)

// Production is the env that bare service addresses resolve to.
const Production = "production"

// Config is the behaviour-defining configuration of one service, as fiat.toml
// gives it after defaults are applied. It is part of a version's hash, so two
// versions with the same files but different limits are different versions.
type Config struct {
	Kind Kind
	// MaxSteps bounds the Starlark execution steps of one request.
	MaxSteps uint64
	// Timeout bounds the wall time of one request.
	Timeout time.Duration
	// Memory bounds, in bytes, what one request, top level or test may
	// allocate, or, for a process, what each instance may use. 0, in
	// versions stored before there was a budget, means DefaultMemory.
	Memory uint64
	// Env is the service's config from fiat.toml, KEY=VALUE.
	Env map[string]string
	// Vars is the config `fiat config set` gave the service in an env, over
	// Env; a deploy carries it over from the version it replaces.
	Vars map[string]string
	// Secrets are the keys of Vars whose values are never shown or
	// logged, sorted.
	Secrets []string
	// Process is how a process service runs; nil for a script.
	Process *ProcessConfig
}

// Environ is the service's config as it runs: a process's environment,
// what a script reads with config("KEY"). Vars win over Env.
func (c Config) Environ() map[string]string {
	if len(c.Vars) == 0 {
		return c.Env
	}
	env := maps.Clone(c.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, c.Vars)
	return env
}

// Redacted is c with the values of its secrets hidden, to show.
func (c Config) Redacted() Config {
	if len(c.Secrets) == 0 {
		return c
	}
	c.Vars = maps.Clone(c.Vars)
	for _, key := range c.Secrets {
		if _, ok := c.Vars[key]; ok {
			c.Vars[key] = SecretShown
		}
	}
	return c
}

// SecretShown is what is shown of a secret's value.
const SecretShown = "(secret)"

// ProcessConfig is how a process service's version is built and run.
type ProcessConfig struct {
	// Run is the command of the web process, run by /bin/sh -c in the
	// version's directory, which listens on PORT.
	Run string `json:"run"`
	// Build, if set, runs once per version, by /bin/sh -c, in a copy of
	// the service's files, before any instance starts.
	Build string `json:"build,omitempty"`
	// Release, if set, runs once per deploy before the switch; if it
	// fails, the deploy is refused.
	Release string `json:"release,omitempty"`
	// Workers are commands that run without traffic, by name (a
	// Procfile's process types other than web and release).
	Workers map[string]string `json:"workers,omitempty"`
	// Health is an HTTP path that answers 2xx once an instance is ready;
	// empty, an instance is ready once its port accepts a connection.
	Health string `json:"health,omitempty"`
	// Instances is how many instances of the web process run.
	Instances int `json:"instances"`
	// StartTimeout bounds how long an instance may take to be ready, and
	// StopTimeout how long it has to exit after SIGTERM before SIGKILL.
	StartTimeout time.Duration `json:"-"`
	StopTimeout  time.Duration `json:"-"`
}

// Defaults of a process service.
const (
	DefaultInstances    = 1
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 30 * time.Second
)

// processJSON is how a ProcessConfig reads in JSON, durations as people
// read them.
type processJSON struct {
	alias
	StartTimeout string `json:"start_timeout"`
	StopTimeout  string `json:"stop_timeout"`
}

type alias ProcessConfig

func (p ProcessConfig) MarshalJSON() ([]byte, error) {
	return json.Marshal(processJSON{alias: alias(p), StartTimeout: p.StartTimeout.String(), StopTimeout: p.StopTimeout.String()})
}

func (p *ProcessConfig) UnmarshalJSON(data []byte) error {
	var raw processJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*p = ProcessConfig(raw.alias)
	for _, d := range []struct {
		text string
		to   *time.Duration
	}{{raw.StartTimeout, &p.StartTimeout}, {raw.StopTimeout, &p.StopTimeout}} {
		var err error
		if *d.to, err = time.ParseDuration(d.text); err != nil {
			return fmt.Errorf("process config: %w", err)
		}
	}
	return nil
}

// DefaultMemory is the memory budget of a service that sets none.
const DefaultMemory = 64 << 20

// configJSON is how a Config reads in JSON: durations as Go writes them
// ("2s"), as people read them.
type configJSON struct {
	Kind     Kind              `json:"kind"`
	MaxSteps uint64            `json:"max_steps"`
	Timeout  string            `json:"timeout"`
	Memory   uint64            `json:"memory"`
	Env      map[string]string `json:"env,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	Secrets  []string          `json:"secrets,omitempty"`
	Process  *ProcessConfig    `json:"process,omitempty"`
}

func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{Kind: c.Kind, MaxSteps: c.MaxSteps, Timeout: c.Timeout.String(), Memory: c.Memory, Env: c.Env, Vars: c.Vars, Secrets: c.Secrets, Process: c.Process})
}

// UnmarshalJSON reads what MarshalJSON writes, and the nanoseconds that
// stores written before it hold.
func (c *Config) UnmarshalJSON(data []byte) error {
	var raw struct {
		configJSON
		Timeout json.RawMessage `json:"timeout"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = Config{Kind: raw.Kind, MaxSteps: raw.MaxSteps, Memory: raw.Memory, Env: raw.Env, Vars: raw.Vars, Secrets: raw.Secrets, Process: raw.Process}
	var text string
	if json.Unmarshal(raw.Timeout, &text) == nil {
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("config: timeout: %w", err)
		}
		c.Timeout = d
		return nil
	}
	if len(raw.Timeout) == 0 {
		return nil
	}
	var nanos int64
	if err := json.Unmarshal(raw.Timeout, &nanos); err != nil {
		return fmt.Errorf("config: timeout is neither a duration nor nanoseconds: %s", raw.Timeout)
	}
	c.Timeout = time.Duration(nanos)
	return nil
}

// File is one file of a version, its path relative to the service's dir.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
	// Executable files are programs a process service runs.
	Executable bool `json:"executable,omitempty"`
}

// Version is an immutable snapshot of one service. Its ID is the hash of
// everything else in it except Created.
type Version struct {
	ID      Hash   `json:"id"`
	Service string `json:"service"`
	Config  Config `json:"config"`
	// Files are sorted by path.
	Files []File `json:"files"`
	// Uses maps each service this version calls to the exact version it calls.
	Uses    map[string]Hash `json:"uses,omitempty"`
	Created time.Time       `json:"created"`
}

// Env maps each of its services to one version, and, during a rollout,
// a candidate.
type Env struct {
	Name     string          `json:"name"`
	Services map[string]Hash `json:"services"`
	// Instances is how many instances of a process service the env runs,
	// for the services `fiat scale` scaled; the others run as many as
	// their version's config says.
	Instances map[string]int `json:"instances,omitempty"`
	// Rollouts split the traffic of some services between the version
	// above and a candidate; a service is in at most one.
	Rollouts []Rollout `json:"rollouts,omitempty"`
	// Flags are the env's flags, sorted by name.
	Flags []Flag `json:"flags,omitempty"`
	// UserKey is where requests to the env carry the user key, which
	// flags and rollouts bucket by; nil for DefaultUserKey.
	UserKey *UserKeySource `json:"user_key,omitempty"`
}

// MaxInstances bounds the instances of one process service in one env.
const MaxInstances = 100

// Problem is one reason a deploy was refused, located in the project.
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.Path == "":
		return p.Message
	case p.Line == 0:
		return fmt.Sprintf("%s: %s", p.Path, p.Message)
	case p.Col == 0:
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.Path, p.Line, p.Col, p.Message)
}

// Compare orders problems as a user reads them: by file, line and column.
func (p Problem) Compare(q Problem) int {
	return cmp.Or(strings.Compare(p.Path, q.Path), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Problems is the error of a refused deploy: every problem found, not just
// the first, so a user fixes them in one pass.
type Problems []Problem

func (ps Problems) Error() string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += "\n"
		}
		s += p.String()
	}
	return s
}
