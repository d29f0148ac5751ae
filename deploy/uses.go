package deploy

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// A version calls the versions it uses by hash, never by env: a new web
// only ever talks to the api it was deployed with, and an old one to the
// old api, whatever the envs serve meanwhile.

// calls serves the requests a version sends to each service it uses, by
// name, to exactly the version uses names: the router's, once the router
// knows it, else the one pending gives, started for a change not yet
// applied (a deploy's versions, while they are tested), else the router's
// once this node applies the change that stores it.
func (d *Deployer) calls(uses map[string]fiat.Hash, pending func(fiat.Hash) fiat.Running) map[string]http.Handler {
	handlers := make(map[string]http.Handler, len(uses))
	for service, id := range uses {
		handlers[service] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A version started for another node's change may call
			// before this node has applied the change that stores what it
			// uses: it waits for it, as long as a change takes to be served.
			wait, cancel := context.WithTimeout(r.Context(), servedWithin)
			defer cancel()
			for {
				next := d.follower.nextApplied()
				if h := d.router.Version(service, id); h != nil {
					h.ServeHTTP(w, r)
					return
				}
				if pending != nil {
					if running := pending(id); running != nil {
						running.ServeHTTP(w, r)
						return
					}
				}
				select {
				case <-next:
				case <-wait.Done():
					http.Error(w, fmt.Sprintf("fiat: version %s of %s does not run on this node yet; try again", id.Short(), service), http.StatusServiceUnavailable)
					return
				}
			}
		})
	}
	return handlers
}

// usedFirst orders versions so that each comes after the versions of
// the set it uses: those start, and are tested, before their callers
// call them.
func usedFirst(versions []*fiat.Version) []*fiat.Version {
	of := map[fiat.Hash]*fiat.Version{}
	for _, v := range versions {
		of[v.ID] = v
	}
	ordered := make([]*fiat.Version, 0, len(versions))
	placed := map[*fiat.Version]bool{}
	var place func(v *fiat.Version)
	place = func(v *fiat.Version) {
		if placed[v] {
			return
		}
		placed[v] = true // before its uses: a cycle, which uses never form, ends here
		for _, service := range slices.Sorted(maps.Keys(v.Uses)) {
			if used := of[v.Uses[service]]; used != nil {
				place(used)
			}
		}
		ordered = append(ordered, v)
	}
	for _, v := range versions {
		place(v)
	}
	return ordered
}

// why says what makes v differ from old, the version of its service it
// replaces: "files", "config", "uses api", or several of them.
func why(v *fiat.Version, old store.VersionInfo) string {
	var reasons []string
	asOld := *v
	asOld.Config, asOld.Uses = old.Config, old.Uses
	if fiat.HashVersion(&asOld) != old.ID {
		reasons = append(reasons, "files")
	}
	withOldUses := *v
	withOldUses.Uses = old.Uses
	if fiat.HashVersion(&withOldUses) != fiat.HashVersion(&asOld) {
		reasons = append(reasons, "config")
	}
	var changed []string
	for _, service := range slices.Sorted(maps.Keys(v.Uses)) {
		if old.Uses[service] != v.Uses[service] {
			changed = append(changed, service)
		}
	}
	for service := range old.Uses {
		if _, ok := v.Uses[service]; !ok {
			changed = append(changed, service)
		}
	}
	if len(changed) > 0 {
		slices.Sort(changed)
		reasons = append(reasons, "uses "+strings.Join(changed, ", "))
	}
	return strings.Join(reasons, ", ")
}

// callersOf returns the services of env whose versions use, directly or
// through others, the version env serves of service.
func (d *Deployer) callersOf(env fiat.Env, service string) []string {
	target := env.Services[service]
	callers := map[string]bool{}
	var calls func(id fiat.Hash, seen map[fiat.Hash]bool) bool
	calls = func(id fiat.Hash, seen map[fiat.Hash]bool) bool {
		if seen[id] {
			return false
		}
		seen[id] = true
		v, _ := d.version(id)
		for _, used := range v.Uses {
			if used == target || calls(used, seen) {
				return true
			}
		}
		return false
	}
	for name, id := range env.Services {
		if name != service && calls(id, map[fiat.Hash]bool{}) {
			callers[name] = true
		}
	}
	return slices.Sorted(maps.Keys(callers))
}

// explain says in res why each service rec switched changed, from the
// versions deployed.
func (d *Deployer) explain(res Result, rec store.Record, versions []*fiat.Version) {
	for _, sw := range rec.Switched {
		i := slices.IndexFunc(res.Services, func(sr ServiceResult) bool { return sr.Name == sw.Service })
		j := slices.IndexFunc(versions, func(v *fiat.Version) bool { return v.Service == sw.Service })
		if i < 0 || j < 0 {
			continue
		}
		res.Services[i].Why = "new"
		if old, ok := d.version(sw.From); ok && sw.From != "" {
			res.Services[i].Why = why(versions[j], old)
		}
	}
}

// withCallers returns v, a new version of a service env serves, with new
// versions of the services of env that use its current version, directly
// or not, each calling the new versions: a change to a service's config
// reaches its callers as a change to its code does.
func (d *Deployer) withCallers(ctx context.Context, env string, v *fiat.Version) ([]*fiat.Version, error) {
	at, _ := d.router.Env(env)
	versions := []*fiat.Version{v}
	for _, caller := range d.callersOf(at, v.Service) {
		current, err := d.store.Version(ctx, at.Services[caller])
		if err != nil {
			return nil, err
		}
		current.Uses = maps.Clone(current.Uses)
		versions = append(versions, current)
	}
	fiat.HashSet(versions)
	return versions, nil
}
