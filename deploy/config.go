package deploy

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// ConfigChange sets and unsets keys of a service's config.
type ConfigChange struct {
	Set   map[string]string
	Unset []string
	// Secret marks the keys Set sets as secrets, whose values are never
	// shown or logged. A secret stays one when set again without it.
	Secret bool
}

// configKey is what a config key may be: an environment variable's name,
// as shells and every language's getenv take it.
var configKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedKeys are set by fiat for every process instance.
var reservedKeys = []string{"PORT", "PATH"}

func (c ConfigChange) check() error {
	if len(c.Set) == 0 && len(c.Unset) == 0 {
		return fmt.Errorf("%w: the config change sets and unsets nothing: give KEY=VALUE pairs to set, or keys to unset", ErrInvalid)
	}
	for _, key := range append(slices.Sorted(maps.Keys(c.Set)), c.Unset...) {
		switch {
		case !configKey.MatchString(key):
			return fmt.Errorf("%w: config key %q: use letters, digits and _, not starting with a digit (an environment variable's name)", ErrInvalid, key)
		case slices.Contains(reservedKeys, key):
			return fmt.Errorf("%w: config key %s is set by fiat for every instance: choose another name", ErrInvalid, key)
		}
	}
	for _, key := range c.Unset {
		if _, ok := c.Set[key]; ok {
			return fmt.Errorf("%w: config key %s is both set and unset", ErrInvalid, key)
		}
	}
	return nil
}

// Configure makes a new version of service in env, with its config
// changed as c says, and deploys it like any other: validated, tested and
// switched, one rollback away from the version before.
func (d *Deployer) Configure(ctx context.Context, env, service string, c ConfigChange) (Result, error) {
	began := time.Now()
	res, err := d.configure(ctx, env, service, c, began)
	d.metrics.Change("config", time.Since(began), err)
	return res, err
}

func (d *Deployer) configure(ctx context.Context, env, service string, c ConfigChange, began time.Time) (Result, error) {
	if err := checkEnvName(env); err != nil {
		return Result{}, err
	}
	if err := c.check(); err != nil {
		return Result{}, err
	}
	current, err := d.Serving(ctx, env, service)
	if err != nil {
		return Result{}, err
	}
	next := *current
	next.Config.Vars = maps.Clone(current.Config.Vars)
	if next.Config.Vars == nil {
		next.Config.Vars = map[string]string{}
	}
	secrets := map[string]bool{}
	for _, key := range current.Config.Secrets {
		secrets[key] = true
	}
	for key, value := range c.Set {
		next.Config.Vars[key] = value
		secrets[key] = secrets[key] || c.Secret
	}
	for _, key := range c.Unset {
		if _, ok := next.Config.Vars[key]; !ok {
			return Result{}, fmt.Errorf("config key %s was not set with fiat config set for service %q in env %q (`fiat config list %s` shows what is; keys from fiat.toml change there): %w", key, service, env, service, store.ErrNotFound)
		}
		delete(next.Config.Vars, key)
		delete(secrets, key)
	}
	next.Config.Secrets = nil
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		if secrets[key] {
			next.Config.Secrets = append(next.Config.Secrets, key)
		}
	}
	if len(next.Config.Vars) == 0 {
		next.Config.Vars = nil
	}
	versions, err := d.withCallers(ctx, env, &next)
	if err != nil {
		return Result{}, err
	}
	rec, err := d.deployVersions(ctx, env, versions, nil, func(invalid map[string]fiat.Problems) fiat.Problems {
		var all fiat.Problems
		for _, v := range versions {
			all = append(all, invalid[v.Service]...)
		}
		return all
	})
	if err != nil {
		return Result{}, err
	}
	res := d.result(rec, func(s string) bool {
		return slices.ContainsFunc(versions, func(v *fiat.Version) bool { return v.Service == s })
	})
	d.explain(res, rec, versions)
	res.DeployMS = millis(time.Since(began))
	return res, nil
}

// Serving returns the version of service that env serves, files and all.
func (d *Deployer) Serving(ctx context.Context, env, service string) (*fiat.Version, error) {
	at, ok := d.router.Env(env)
	if !ok {
		return nil, fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", env, store.ErrNotFound)
	}
	id, ok := at.Services[service]
	if !ok {
		return nil, fmt.Errorf("service %q is not in env %q: deploy it first (`fiat env list` shows what is): %w", service, env, store.ErrNotFound)
	}
	return d.store.Version(ctx, id)
}

// Scale sets how many instances of each process service in instances env
// runs, without a new version: the env keeps the count across deploys.
func (d *Deployer) Scale(ctx context.Context, env string, instances map[string]int) (Result, error) {
	return d.change(ctx, "scale", env, func() (store.Change, error) {
		if len(instances) == 0 {
			return store.Change{}, fmt.Errorf("%w: scale nothing: give SERVICE=N for each service to scale", ErrInvalid)
		}
		at, _ := d.router.Env(env)
		for service, n := range instances {
			id, ok := at.Services[service]
			if !ok {
				continue // the store says it is not in the env
			}
			if config, _ := d.config(id); config.Kind != fiat.Process {
				return store.Change{}, fmt.Errorf("%w: service %q is a %s service, which has no instances to scale", ErrInvalid, service, config.Kind)
			}
			if n < 0 || n > fiat.MaxInstances {
				return store.Change{}, fmt.Errorf("%w: %s=%d: give 0 to %d instances", ErrInvalid, service, n, fiat.MaxInstances)
			}
		}
		return store.Change{Env: env, Kind: "scale", Scale: instances}, nil
	})
}
