package process

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// A user is whom a service's builds and instances run as. When fiat runs
// as root, each service gets a user id of its own, with no login and no
// entry in /etc/passwd, so that an instance can read neither fiat's files
// nor another service's; otherwise they run as fiat does.
type user struct {
	uid uint32
	set bool
}

// Service user ids are drawn from [uidBase, uidBase+uidRange), above those
// of people and system users.
const (
	uidBase  = 1_000_000
	uidRange = 1_000_000
)

func (r *Runtime) owner(service string) user {
	if os.Geteuid() != 0 {
		return user{}
	}
	h := fnv.New32a()
	h.Write([]byte(service))
	return user{uid: uidBase + h.Sum32()%uidRange, set: true}
}

// credential makes a child process run as u, in no supplementary group.
func (u user) credential() *syscall.Credential {
	if !u.set {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.uid, Groups: []uint32{}}
}

func (u user) name() string {
	if !u.set {
		return "fiat"
	}
	return fmt.Sprint(u.uid)
}

func (u user) chown(path string) error {
	if !u.set {
		return nil
	}
	return os.Lchown(path, int(u.uid), int(u.uid))
}

// chownAll gives u everything under dir.
func (u user) chownAll(dir string) error {
	if !u.set {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return u.chown(path)
	})
}
