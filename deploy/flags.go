package deploy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/fiatdev/fiat"
	"github.com/fiatdev/fiat/store"
)

// EnvFlags are an env's flags and where its requests carry the user key.
type EnvFlags struct {
	Env     string             `json:"env"`
	UserKey fiat.UserKeySource `json:"user_key"`
	Flags   []fiat.Flag        `json:"flags"`
}

// Flags returns env's flags as this node serves them.
func (d *Deployer) Flags(env string) (EnvFlags, error) {
	at, err := d.existingEnv(env)
	if err != nil {
		return EnvFlags{}, err
	}
	flags := EnvFlags{Env: env, UserKey: at.UserKeySource(), Flags: at.Flags}
	if flags.Flags == nil {
		flags.Flags = []fiat.Flag{}
	}
	return flags, nil
}

// existingEnv is env as this node serves it, ErrNotFound if it has none.
func (d *Deployer) existingEnv(env string) (fiat.Env, error) {
	if err := checkEnvName(env); err != nil {
		return fiat.Env{}, err
	}
	at, ok := d.router.Env(env)
	if !ok {
		return fiat.Env{}, fmt.Errorf("env %q does not exist (`fiat env list` shows those that do): %w", env, store.ErrNotFound)
	}
	return at, nil
}

// SetFlag changes the flag name of env as p says, or makes it, and returns
// it as the change left it. The next request to env gets it, on every
// node once it applies the change.
func (d *Deployer) SetFlag(ctx context.Context, env, name string, p fiat.FlagPatch) (fiat.Flag, error) {
	at, err := d.existingEnv(env)
	if err != nil {
		return fiat.Flag{}, err
	}
	if err := fiat.CheckFlagName(name); err != nil {
		return fiat.Flag{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	old, exists := at.FlagOf(name)
	if exists && p == (fiat.FlagPatch{}) {
		return fiat.Flag{}, fmt.Errorf("%w: flag %s: the change changes nothing: give on or off, a percent, users or header matches", ErrInvalid, name)
	}
	// The store applies p to the flag as it is then; checked here, a
	// mistake is the user's, whatever another change did meanwhile.
	var base *fiat.Flag
	if exists {
		base = &old
	}
	if _, err := p.Apply(name, base); err != nil {
		return fiat.Flag{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	rec, err := d.changeFlags(ctx, store.Change{Env: env, Kind: "flag", Flag: &store.FlagChange{Name: name, Set: &p}})
	if err != nil {
		return fiat.Flag{}, err
	}
	f, _ := rec.After.FlagOf(name)
	return f, nil
}

// DeleteFlag deletes the flag name of env: requests read it as off.
func (d *Deployer) DeleteFlag(ctx context.Context, env, name string) error {
	if _, err := d.existingEnv(env); err != nil {
		return err
	}
	if err := fiat.CheckFlagName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	_, err := d.changeFlags(ctx, store.Change{Env: env, Kind: "flag-delete", Flag: &store.FlagChange{Name: name}})
	return err
}

// SetUserKey makes src where requests to env carry the user key, which
// its flags and rollouts bucket by.
func (d *Deployer) SetUserKey(ctx context.Context, env string, src fiat.UserKeySource) (EnvFlags, error) {
	if _, err := d.existingEnv(env); err != nil {
		return EnvFlags{}, err
	}
	if _, err := d.changeFlags(ctx, store.Change{Env: env, Kind: "user-key", UserKey: &src}); err != nil {
		return EnvFlags{}, err
	}
	return d.Flags(env)
}

func (d *Deployer) changeFlags(ctx context.Context, c store.Change) (store.Record, error) {
	began := time.Now()
	rec, err := d.commit(ctx, c, nil)
	d.metrics.Change(c.Kind, time.Since(began), err)
	return rec, err
}

// FlagLog returns every change of the flag name of env, oldest first.
func (d *Deployer) FlagLog(ctx context.Context, env, name string) ([]store.FlagEntry, error) {
	if err := checkEnvName(env); err != nil {
		return nil, err
	}
	if err := fiat.CheckFlagName(name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return d.store.FlagLog(ctx, env, name)
}

// FlagEval is a flag evaluated for a user and headers, and why.
type FlagEval struct {
	Env  string    `json:"env"`
	Flag fiat.Flag `json:"flag"`
	User string    `json:"user"`
	On   bool      `json:"on"`
	Why  string    `json:"why"`
}

// EvalFlag evaluates the flag name of env, as this node serves it, for a
// request of the user user ("" for none) with header.
func (d *Deployer) EvalFlag(env, name, user string, header http.Header) (FlagEval, error) {
	at, err := d.existingEnv(env)
	if err != nil {
		return FlagEval{}, err
	}
	f, ok := at.FlagOf(name)
	if !ok {
		return FlagEval{}, fmt.Errorf("env %q has no flag %q (`fiat flag list` shows those it has): %w", env, name, store.ErrNotFound)
	}
	rule := f.Decide(&http.Request{Header: header}, user)
	return FlagEval{Env: env, Flag: f, User: user, On: rule.On(), Why: explain(f, rule, user, header)}, nil
}

// explain says how rule decided f for user, whose request has header.
func explain(f fiat.Flag, rule fiat.Rule, user string, header http.Header) string {
	switch rule {
	case fiat.RuleOff:
		return "the flag is off"
	case fiat.RuleUser:
		return fmt.Sprintf("user %q is listed", user)
	case fiat.RuleMatch:
		for _, m := range f.Match {
			for _, v := range header[m.Header] {
				if v == m.Value {
					return fmt.Sprintf("header %s is %q", m.Header, v)
				}
			}
		}
	case fiat.RuleEveryone:
		return "the flag is on for 100% of users"
	case fiat.RuleNoUserKey:
		return fmt.Sprintf("the request has no user key, and the flag is on for %g%% of users, not 100%%", f.Percent)
	}
	bucket := fiat.Bucket(f.Name, user)
	in := "within"
	if rule == fiat.RuleNotInPercent {
		in = "not within"
	}
	return fmt.Sprintf("user %q is in bucket %d of %d, %s the flag's %g%% (buckets below %g)", user, bucket, fiat.Buckets, in, f.Percent, f.Percent*fiat.Buckets/100)
}
