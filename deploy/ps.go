package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Process is a process service's version that an env serves, as it runs
// on this node.
type Process struct {
	Env     string    `json:"env"`
	Service string    `json:"service"`
	Version fiat.Hash `json:"version"`
	// Candidate says the version is a rollout's candidate, which the env
	// serves to some of its users.
	Candidate bool            `json:"candidate,omitempty"`
	Instances []fiat.Instance `json:"instances"`
}

// Processes lists, env by env, the process services running on this node.
func (d *Deployer) Processes() []Process {
	ps := []Process{}
	for _, env := range d.router.Envs() {
		for _, service := range slices.Sorted(maps.Keys(env.Services)) {
			if s, ok := d.router.Running(env.Name, service).(fiat.Supervised); ok {
				ps = append(ps, Process{Env: env.Name, Service: service, Version: env.Services[service], Instances: s.Instances()})
			}
		}
		for _, r := range env.Rollouts {
			for _, service := range slices.Sorted(maps.Keys(r.Candidates)) {
				id := r.Candidates[service]
				if s, ok := d.router.RunningVersion(id).(fiat.Supervised); ok {
					ps = append(ps, Process{Env: env.Name, Service: service, Version: id, Candidate: true, Instances: s.Instances()})
				}
			}
		}
	}
	return ps
}

// Supervised returns the running version of service whose hash starts
// with version, or, if version is empty, the one env serves.
func (d *Deployer) Supervised(ctx context.Context, env, service, version string) (fiat.Supervised, fiat.Hash, error) {
	var id fiat.Hash
	var running fiat.Running
	if version != "" {
		if err := fiat.CheckHashPrefix(version); err != nil {
			return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		var err error
		if id, err = d.store.Resolve(ctx, service, version); err != nil {
			return nil, "", err
		}
		running = d.router.RunningVersion(id)
	} else {
		at, ok := d.router.Env(env)
		if !ok {
			return nil, "", fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", env, store.ErrNotFound)
		}
		if id, ok = at.Services[service]; !ok {
			return nil, "", fmt.Errorf("service %q is not in env %q (`fiat env list` shows what is): %w", service, env, store.ErrNotFound)
		}
		running = d.router.Running(env, service)
	}
	if running == nil {
		return nil, "", fmt.Errorf("version %s of %s is not running on this node: a request to it starts it: %w", id.Short(), service, store.ErrNotFound)
	}
	s, ok := running.(fiat.Supervised)
	if !ok {
		return nil, "", fmt.Errorf("%w: service %q is a script service: it has no instances", ErrInvalid, service)
	}
	return s, id, nil
}
