package fiat

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
)

// ScriptAPI names the script runtime's host API. It is part of every script
// version's hash: code that runs against a different API is different code.
// Version 2 runs every request, top level and test under a memory budget
// and bounds the nesting of values.
const ScriptAPI = "fiat-starlark/2"

// Hash is a version's id: sha256 of its canonical encoding, in lowercase
// base32 without padding (52 characters).
type Hash string

// ShortLen is how many characters of a hash its version address uses.
const ShortLen = 12

// MinPrefixLen is the shortest hash prefix the CLI accepts, as git does.
const MinPrefixLen = 8

var hashEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// HashLen is the length of a full hash.
var HashLen = hashEncoding.EncodedLen(sha256.Size)

// Short is the hash as version addresses show it.
func (h Hash) Short() string {
	if len(h) < ShortLen {
		return string(h)
	}
	return string(h[:ShortLen])
}

// IsHashPrefix reports whether s could be a prefix of a hash, of at least
// MinPrefixLen characters.
func IsHashPrefix(s string) bool {
	return len(s) >= MinPrefixLen && len(s) <= HashLen && isBase32(s)
}

// CheckHashPrefix explains what is wrong with a hash prefix a user typed.
func CheckHashPrefix(s string) error {
	if IsHashPrefix(s) {
		return nil
	}
	return fmt.Errorf("%q is not a version hash: give at least %d of its characters (a-z, 2-7), as `fiat versions` shows them", s, MinPrefixLen)
}

// HashVersion computes the id of v from its service name, config, files and
// uses. The encoding is canonical: every field is length-prefixed and every
// collection sorted, so the same input gives the same hash on any machine.
func HashVersion(v *Version) Hash {
	e := encoder{h: sha256.New()}
	e.str("fiat version 1")
	e.str(v.Service)
	e.str(string(v.Config.Kind))
	if v.Config.Kind == Script {
		e.str(ScriptAPI)
	}
	e.uint(v.Config.MaxSteps)
	e.uint(uint64(v.Config.Timeout))
	e.uint(v.Config.Memory)
	// Versions without config hash as they did before there was any.
	if len(v.Config.Env) > 0 || len(v.Config.Vars) > 0 || len(v.Config.Secrets) > 0 {
		e.str("config")
		e.strings(v.Config.Env)
		e.strings(v.Config.Vars)
		e.uint(uint64(len(v.Config.Secrets)))
		for _, key := range v.Config.Secrets {
			e.str(key)
		}
	}
	if p := v.Config.Process; v.Config.Kind == Process && p != nil {
		e.str(p.Run)
		e.str(p.Build)
		e.str(p.Release)
		e.strings(p.Workers)
		e.str(p.Health)
		e.uint(uint64(p.Instances))
		e.uint(uint64(p.StartTimeout))
		e.uint(uint64(p.StopTimeout))
	}
	files := slices.Clone(v.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	e.uint(uint64(len(files)))
	for _, f := range files {
		if f.Executable {
			// No path holds a NUL: this reads as no other file.
			e.str(f.Path + "\x00executable")
		} else {
			e.str(f.Path)
		}
		e.bytes(f.Data)
	}
	uses := make(map[string]string, len(v.Uses))
	for name, id := range v.Uses {
		uses[name] = string(id)
	}
	e.strings(uses)
	return Hash(hashEncoding.EncodeToString(e.h.Sum(nil)))
}

type encoder struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) uint(n uint64) {
	e.h.Write(e.buf[:binary.PutUvarint(e.buf[:], n)])
}

func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.h.Write(b)
}

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.h.Write([]byte(s))
}

// strings encodes m's size, then each key and value, by key.
func (e *encoder) strings(m map[string]string) {
	e.uint(uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.str(k)
		e.str(m[k])
	}
}

// HashSet sets the ID of each of versions, the versions of one deploy, and
// points the Uses of each at the versions in the set of the services it
// names, hashing each used version before its users: a change to a version
// changes every version that uses it, directly or not. A used service that
// is not in the set keeps the version Uses gives it. Uses must form no
// cycle (the project refuses one); a version on one keeps the Uses given.
func HashSet(versions []*Version) {
	of := make(map[string]*Version, len(versions))
	for _, v := range versions {
		of[v.Service] = v
	}
	done := make(map[*Version]bool, len(versions))
	var hash func(v *Version)
	hash = func(v *Version) {
		if _, seen := done[v]; seen {
			return
		}
		done[v] = false // on the path: a cycle stops here
		for _, service := range slices.Sorted(maps.Keys(v.Uses)) {
			if used := of[service]; used != nil {
				hash(used)
				if done[used] {
					v.Uses[service] = used.ID
				}
			}
		}
		v.ID = HashVersion(v)
		done[v] = true
	}
	for _, v := range versions {
		hash(v)
	}
}
