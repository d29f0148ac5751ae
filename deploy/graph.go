package deploy

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// Graph is who uses whom in an env: each service the env serves, at its
// version, and the exact versions it calls.
type Graph struct {
	Env      string         `json:"env"`
	Services []ServiceUsage `json:"services"`
}

// ServiceUsage is one service of an env and what its version uses.
type ServiceUsage struct {
	Service string    `json:"service"`
	Version fiat.Hash `json:"version"`
	Uses    []Use     `json:"uses"`
}

// Use is a version's call to the version of another service.
type Use struct {
	Service string    `json:"service"`
	Version fiat.Hash `json:"version"`
	// Served says the env serves this version of the service too; a
	// version deployed with an earlier set (after a rollback of the
	// service alone) is not.
	Served bool `json:"served"`
}

// Graph returns who uses whom in env.
func (d *Deployer) Graph(env string) (Graph, error) {
	if err := checkEnvName(env); err != nil {
		return Graph{}, err
	}
	at, ok := d.router.Env(env)
	if !ok {
		return Graph{}, fmt.Errorf("env %s: %w", env, store.ErrNotFound)
	}
	g := Graph{Env: env, Services: []ServiceUsage{}}
	for _, service := range slices.Sorted(maps.Keys(at.Services)) {
		id := at.Services[service]
		usage := ServiceUsage{Service: service, Version: id, Uses: []Use{}}
		v, _ := d.version(id)
		for _, used := range slices.Sorted(maps.Keys(v.Uses)) {
			usage.Uses = append(usage.Uses, Use{Service: used, Version: v.Uses[used], Served: at.Services[used] == v.Uses[used]})
		}
		g.Services = append(g.Services, usage)
	}
	return g, nil
}
