package script

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
)

// Cache keeps compiled programs on disk, one file per version named by its
// hash, so that a version costs nothing while idle and a restarted server
// serves at once, without compiling.
//
// Get fails with an error wrapping fs.ErrNotExist when the file is missing,
// corrupt or written by another version of fiat or Starlark: compile the
// version again and Put it.
type Cache struct {
	Dir string
}

// cacheFormat starts every cache file. Change it whenever what a file holds
// changes, so that older files read as misses.
const cacheFormat = "fiat script cache 1\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (c *Cache) file(id fiat.Hash) (string, error) {
	if len(id) != fiat.HashLen || !fiat.IsHashPrefix(string(id)) {
		return "", fmt.Errorf("script cache: %q is not a version hash", id)
	}
	return filepath.Join(c.Dir, string(id)+".starc"), nil
}

// Put stores p, replacing any file of the same version atomically: a
// reader sees the old file or the new one, never a part.
func (c *Cache) Put(p *Program) error {
	name, err := c.file(p.id)
	if err != nil {
		return err
	}
	data, err := p.encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	// No fsync: after a crash, a torn file fails its checksum and is a
	// miss, which only costs a compile.
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Get loads the program of version id.
func (c *Cache) Get(id fiat.Hash) (*Program, error) {
	name, err := c.file(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	p, err := decodeProgram(data)
	if err != nil {
		return nil, &unusableError{name, err.Error()}
	}
	if p.id != id {
		return nil, &unusableError{name, "it holds version " + string(p.id)}
	}
	return p, nil
}

// unusableError is a cache file that exists but cannot be used. It is a
// miss like a missing file: the caller compiles again.
type unusableError struct{ file, why string }

func (e *unusableError) Error() string        { return "script cache: " + e.file + " is unusable: " + e.why }
func (e *unusableError) Is(target error) bool { return target == fs.ErrNotExist }

// A cache file is cacheFormat, the program's id, service and config, its
// modules (path and Starlark's own encoding of the compiled module), and
// a CRC-32C of all of that.
func (p *Program) encode() ([]byte, error) {
	b := []byte(cacheFormat)
	b = appendString(b, string(p.id))
	b = appendString(b, p.service)
	b = appendString(b, string(p.config.Kind))
	b = binary.AppendUvarint(b, p.config.MaxSteps)
	b = binary.AppendUvarint(b, uint64(p.config.Timeout))
	b = binary.AppendUvarint(b, uint64(len(p.modules)))
	var code bytes.Buffer
	for _, path := range slices.Sorted(maps.Keys(p.modules)) {
		code.Reset()
		if err := p.modules[path].Write(&code); err != nil {
			return nil, err
		}
		b = appendString(b, path)
		b = appendString(b, code.String())
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func decodeProgram(data []byte) (*Program, error) {
	if len(data) < 4 || crc32.Checksum(data[:len(data)-4], castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	content, ok := bytes.CutPrefix(data[:len(data)-4], []byte(cacheFormat))
	if !ok {
		return nil, errors.New("written by another version of fiat")
	}
	d := decoder{data: content}
	p := &Program{
		id:      fiat.Hash(d.string()),
		service: d.string(),
		config: fiat.Config{
			Kind:     fiat.Kind(d.string()),
			MaxSteps: d.uint(),
			Timeout:  time.Duration(d.uint()),
		},
		modules: map[string]*starlark.Program{},
	}
	for n := d.uint(); n > 0 && d.err == nil; n-- {
		path, code := d.string(), d.bytes()
		if d.err != nil {
			break
		}
		prog, err := starlark.CompiledProgram(bytes.NewReader(code))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		p.modules[path] = prog
	}
	if d.err == nil && len(d.data) > 0 {
		d.err = errors.New("trailing data")
	}
	return p, d.err
}

// decoder reads what encode appended; its first error sticks.
type decoder struct {
	data []byte
	err  error
}

var errTruncated = errors.New("truncated")

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.data)) {
		d.err = errTruncated
	}
	if d.err != nil {
		return nil
	}
	b := d.data[:n]
	d.data = d.data[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }
