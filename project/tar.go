package project

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/fiatdev/fiat"
)

// ErrTooLarge is wrapped by the error of ReadTar when a bundle is over its
// size limit.
var ErrTooLarge = errors.New("project bundle is too large")

// WriteTar writes the bundle as a plain tar stream, the wire format of a
// project. The stream depends only on the files, so the same bundle always
// gives the same bytes.
func (b Bundle) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, f := range b.Files {
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Path,
			Mode:     0o644,
			Size:     int64(len(f.Data)),
			ModTime:  time.Unix(0, 0),
		})
		if err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ReadTar reads a bundle written by WriteTar. It refuses a stream of more
// than maxBytes with an error wrapping ErrTooLarge, and refuses entries
// that are not regular files, or whose paths are not relative,
// slash-separated and free of "." and "..", so that no bundle can name a
// file outside its project.
func ReadTar(r io.Reader, maxBytes int64) (Bundle, error) {
	tr := tar.NewReader(&sizeLimit{r: r, max: maxBytes})
	var b Bundle
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Bundle{}, fmt.Errorf("reading project bundle: %w", err)
		}
		switch {
		case !fs.ValidPath(hdr.Name) || hdr.Name == ".":
			return Bundle{}, fmt.Errorf("project bundle: unsafe path %q: paths must be relative and slash-separated, without . or .. elements", hdr.Name)
		case hdr.Typeflag != tar.TypeReg:
			return Bundle{}, fmt.Errorf("project bundle: %s is not a regular file", hdr.Name)
		case seen[hdr.Name]:
			return Bundle{}, fmt.Errorf("project bundle: %s appears twice", hdr.Name)
		}
		seen[hdr.Name] = true
		data, err := io.ReadAll(tr)
		if err != nil {
			return Bundle{}, fmt.Errorf("reading project bundle: %s: %w", hdr.Name, err)
		}
		b.Files = append(b.Files, fiat.File{Path: hdr.Name, Data: data})
	}
	sortFiles(b.Files)
	return b, nil
}

// sizeLimit reads r, failing with ErrTooLarge once it has read more than
// max bytes. io.LimitReader would instead cut the stream short, which the
// tar reader reports as a truncated archive.
type sizeLimit struct {
	r    io.Reader
	max  int64
	read int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	// Read at most one byte past the limit: enough to know it is passed.
	if left := max(l.max-l.read+1, 0); int64(len(p)) > left {
		p = p[:left]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if over := l.read - l.max; over > 0 {
		// Keep the byte past the limit: with it, io.ReadFull would see a
		// full buffer and drop the error.
		return n - int(over), fmt.Errorf("%w: over %d bytes", ErrTooLarge, l.max)
	}
	return n, err
}
