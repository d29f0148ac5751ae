package project

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fiatdev/fiat"
)

// ErrTooLarge is wrapped by the error of ReadTar when a bundle is over its
// size limit.
var ErrTooLarge = errors.New("project bundle is too large")

// Limits of a bundle besides its size. Every file costs memory and work in
// each later step of a deploy however small it is, and a path is kept and
// repeated in messages; no project needs more.
const (
	maxFiles   = 10_000
	maxPathLen = 1024
)

// blockSize is the unit of a tar stream: every header and every file's
// padded data is a whole number of blocks, and two zero blocks end it.
const blockSize = 512

// WriteTar writes the bundle as a plain tar stream, the wire format of a
// project. The stream depends only on the files, so the same bundle always
// gives the same bytes.
func (b Bundle) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, f := range b.Files {
		mode := int64(0o644)
		if f.Executable {
			mode = 0o755
		}
		err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     f.Path,
			Mode:     mode,
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

// ReadTar reads a bundle written by WriteTar, refusing anything a hostile
// client could use to make it hold more than maxBytes or name a file
// outside the project:
//   - a stream of more than maxBytes, or files whose sizes add up to more
//     (what a file expands to counts, not what is sent), with an error
//     wrapping ErrTooLarge;
//   - sparse files, which expand to far more than is sent;
//   - entries that are not regular files, paths that are not relative,
//     slash-separated, valid UTF-8 and free of "." and "..", control
//     characters, the same path twice, more than maxFiles files or paths of
//     more than maxPathLen bytes;
//   - a stream that stops without the end-of-archive marker, which would
//     otherwise deploy part of a project as if it were whole.
func ReadTar(r io.Reader, maxBytes int64) (Bundle, error) {
	stream := &sizeLimit{r: r, max: maxBytes}
	tr := tar.NewReader(stream)
	var b Bundle
	seen := map[string]bool{}
	left := maxBytes // for the files' data, as it expands
	padding := int64(0)
	for {
		start := stream.read
		hdr, err := tr.Next()
		if err == io.EOF {
			// archive/tar also ends quietly on a stream that stops where
			// a header would start. Only the marker, two zero blocks read
			// after the last file's padding, says nothing was cut off.
			if stream.read-start-padding < 2*blockSize {
				return Bundle{}, errTruncated
			}
			break
		}
		if err != nil {
			return Bundle{}, readError("", err)
		}
		if err := checkEntry(hdr); err != nil {
			return Bundle{}, err
		}
		switch {
		case seen[hdr.Name]:
			return Bundle{}, fmt.Errorf("project bundle: %s appears twice", hdr.Name)
		case len(b.Files) == maxFiles:
			return Bundle{}, fmt.Errorf("project bundle has more than %d files: leave files no service needs out of service dirs", maxFiles)
		case hdr.Size > left:
			return Bundle{}, fmt.Errorf("%w: its files add up to more than %d bytes", ErrTooLarge, maxBytes)
		}
		seen[hdr.Name] = true
		left -= hdr.Size
		// The size is within the limit and the entry is not sparse, so the
		// stream holds that much data: allocate it once.
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return Bundle{}, readError(hdr.Name+": ", err)
		}
		b.Files = append(b.Files, fiat.File{Path: hdr.Name, Data: data, Executable: hdr.Mode&0o111 != 0})
		padding = -hdr.Size & (blockSize - 1)
	}
	sortFiles(b.Files)
	return b, nil
}

var errTruncated = errors.New("the project bundle is truncated: it ends without the end-of-archive marker, so files may be missing; send the whole bundle, as `fiat deploy` does")

// readError says what an error of the tar reader, reading the file named
// by prefix, means for the client.
func readError(prefix string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return fmt.Errorf("reading project bundle: %s%w", prefix, err)
}

// checkEntry refuses an entry that is not a plain file at a safe path.
func checkEntry(hdr *tar.Header) error {
	name := hdr.Name
	switch {
	case len(name) > maxPathLen:
		return fmt.Errorf("project bundle: the path %q… is %d bytes long: paths must be at most %d bytes", name[:40], len(name), maxPathLen)
	case !fs.ValidPath(name) || name == "." || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("project bundle: unsafe path %q: paths must be relative and slash-separated, without . or .. elements or control characters", name)
	case isSparse(hdr):
		return fmt.Errorf("project bundle: %s is a sparse file, which expands to more than is sent: send its data, as `fiat deploy` does", name)
	case hdr.Typeflag != tar.TypeReg:
		return fmt.Errorf("project bundle: %s is not a regular file", name)
	}
	return nil
}

// isSparse reports whether hdr is a sparse file, in any of GNU's formats:
// archive/tar would fill its holes with zeros as it is read.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for key := range hdr.PAXRecords {
		if strings.HasPrefix(key, "GNU.sparse.") {
			return true
		}
	}
	return false
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
