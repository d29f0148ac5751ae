package project

import (
	"maps"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	"github.com/pelletier/go-toml/v2/unstable"
)

// setUses reads uses = ["api", ...], the services svc calls.
func (c *checker) setUses(svc *service, s setting) {
	if len(s.items) > maxUses {
		c.report(s.at, "uses names %d services: a service uses at most %d", len(s.items), maxUses)
		return
	}
	for _, it := range s.items {
		switch {
		case it.kind != unstable.String:
			c.report(it.at, `uses holds service names, like uses = ["api"], not %s`, kindNames[it.kind])
		case slices.ContainsFunc(svc.uses, func(k keyPart) bool { return k.name == it.value }):
			c.report(it.at, "uses names %s twice: name it once", it.value)
		case it.value == svc.name:
			c.report(it.at, "service %s uses itself: a service calls its own code directly, not through uses", svc.name)
		default:
			svc.uses = append(svc.uses, keyPart{name: it.value, at: it.at})
		}
	}
}

// checkUses reports the services svc uses that the project does not have,
// and the references of its env to services it does not use.
func (c *checker) checkUses(svc *service) {
	known := slices.Sorted(maps.Keys(c.services))
	for _, used := range svc.uses {
		if _, ok := c.services[used.name]; ok {
			continue
		}
		hint := "add [services." + used.name + "] to fiat.toml, or remove it from uses"
		if match := closest(used.name, known); match != "" {
			hint = "did you mean " + match + "?"
		}
		c.report(used.at, "uses %s, which this project does not have: %s", used.name, hint)
	}
	for _, key := range slices.Sorted(maps.Keys(svc.config.Env)) {
		refs, err := fiat.References(svc.config.Env[key])
		if err != nil {
			c.report(svc.envAt[key], "env %s: %s", key, err)
			continue
		}
		for _, ref := range refs {
			if !slices.ContainsFunc(svc.uses, func(k keyPart) bool { return k.name == ref.Service }) {
				c.report(svc.envAt[key], "env %s names ${%s.%s}, but service %s does not use %s: add uses = [%q]", key, ref.Service, ref.Field, svc.name, ref.Service, ref.Service)
			}
		}
	}
}

// checkNoCycle reports a loop in what services use: versions are hashed
// each after those it uses, so uses must form a graph without cycles.
func (c *checker) checkNoCycle(services []*service) {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[*service]int{}
	var path []*service
	var visit func(svc *service) bool
	visit = func(svc *service) bool {
		state[svc] = onPath
		path = append(path, svc)
		for _, used := range svc.uses {
			next := c.services[used.name]
			switch {
			case next == nil:
			case state[next] == onPath:
				start := slices.Index(path, next)
				var names []string
				for _, s := range path[start:] {
					names = append(names, s.name)
				}
				c.report(used.at, "uses form a cycle: %s → %s: a service cannot use, even through others, a service that uses it; move what both need into a service of its own", strings.Join(names, " → "), next.name)
				return true
			case state[next] == unseen:
				if visit(next) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[svc] = done
		return false
	}
	for _, svc := range services {
		if state[svc] == unseen && visit(svc) {
			return // one cycle is enough to fix; the rest are found after
		}
	}
}
