package gitpush

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
)

// Branches maps a pushed branch to the env it deploys to. A key of "*"
// is any other branch; a value of "*" is the env named as the branch.
type Branches map[string]string

// DefaultBranches deploy main and master to production and any other
// branch to the env of its name: pushing pr-7 deploys env pr-7.
func DefaultBranches() Branches {
	return Branches{"main": fiat.Production, "master": fiat.Production, "*": "*"}
}

// ParseBranches reads BRANCH=ENV rules, as --git-branch gives them.
func ParseBranches(rules []string) (Branches, error) {
	b := Branches{}
	for _, rule := range rules {
		branch, env, ok := strings.Cut(rule, "=")
		if !ok || branch == "" || env == "" {
			return nil, fmt.Errorf("--git-branch %q: write BRANCH=ENV, like main=production, or *=* for every other branch to the env of its name", rule)
		}
		if env != "*" {
			if err := fiat.CheckEnvName(env); err != nil {
				return nil, fmt.Errorf("--git-branch %q: %v", rule, err)
			}
		}
		b[branch] = env
	}
	return b, nil
}

// Env is the env branch deploys to, or why it deploys to none.
func (b Branches) Env(branch string) (string, error) {
	env, ok := b[branch]
	if !ok {
		env, ok = b["*"]
	}
	if !ok {
		known := slices.Sorted(maps.Keys(b))
		return "", fmt.Errorf("branch %s deploys nowhere: fiat deploys %s (--git-branch of fiat serve)", branch, strings.Join(known, ", "))
	}
	if env == "*" {
		env = branch
		if err := fiat.CheckEnvName(env); err != nil {
			return "", fmt.Errorf("branch %s cannot deploy to an env of its name: %v", branch, err)
		}
	}
	return env, nil
}
