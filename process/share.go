package process

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fiatdev/fiat"
)

// Builds is where nodes share what building a version made, so that a
// version is built once, not on every node.
type Builds interface {
	PutBuild(ctx context.Context, id fiat.Hash, archive []byte) error
	Build(ctx context.Context, id fiat.Hash) ([]byte, error)
}

// maxSharedBuild bounds a build archive shared through the store; a
// bigger one is built again on each node.
const maxSharedBuild = 100 << 20

// share keeps the build in dir for other nodes.
func (r *Runtime) share(id fiat.Hash, dir string) {
	archive, err := archiveDir(dir)
	switch {
	case err != nil:
		r.logger.Warn("cannot archive a build for other nodes: they will build it too", "version", id.Short(), "err", err)
	case len(archive) > maxSharedBuild:
		r.logger.Info("a build is too big to share: other nodes will build it too", "version", id.Short(), "bytes", len(archive))
	default:
		if err := r.builds.PutBuild(context.Background(), id, archive); err != nil {
			r.logger.Warn("cannot share a build with other nodes: they will build it too", "version", id.Short(), "err", err)
		}
	}
}

// archiveDir is dir as a gzipped tar: its directories, regular files and
// symlinks, without the marker of a finished build.
func archiveDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir || d.Name() == builtMarker && filepath.Dir(path) == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, pipes: nothing to share
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err := errors.Join(err, tw.Close(), zw.Close()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// extract writes archive, made by archiveDir, into dir, a new directory.
// Nothing in it may land outside dir, or point outside it.
func extract(archive []byte, dir string, owner user) error {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			return fmt.Errorf("%q is outside the build", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o700)
		case tar.TypeSymlink:
			target := filepath.Join(filepath.Dir(path), hdr.Linkname)
			if filepath.IsAbs(hdr.Linkname) || !strings.HasPrefix(target, dir+string(filepath.Separator)) {
				return fmt.Errorf("%q points outside the build", hdr.Name)
			}
			err = os.Symlink(hdr.Linkname, path)
		case tar.TypeReg:
			if total += hdr.Size; total > 4*maxSharedBuild {
				return errors.New("the build expands to more than its limit")
			}
			err = writeFile(path, tr, os.FileMode(hdr.Mode)&0o700|0o600)
		default:
			return fmt.Errorf("%q is neither a file, a directory nor a symlink", hdr.Name)
		}
		if err != nil {
			return err
		}
	}
	return owner.chownAll(dir)
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
