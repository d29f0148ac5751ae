package script

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fiatdev/fiat"
	"go.starlark.net/starlark"
)

// Cache keeps compiled programs on disk, so that a version costs nothing
// while idle and a restarted server serves at once, without compiling.
//
// Every program is appended to one pack file as a record: its version's
// hash, the length of its encoding, then the encoding. One pack rather than
// a file per version because the store fsyncs on every deploy, and creating
// a file right after an fsync costs far more kernel time than appending to
// a file that is already open. Nothing is fsynced or rewritten: a crash
// loses at most the records at the tail, which only costs a compile later.
//
// Get fails with an error wrapping fs.ErrNotExist when the pack holds no
// usable record of the version (none, corrupt, or written by another
// version of fiat or Starlark): compile the version again and Put it.
type Cache struct {
	path string
	file *os.File

	// appending serializes Puts; it guards end, where the next record goes.
	appending sync.Mutex
	end       int64

	// mu guards index, where the newest record of each version is. A
	// record is indexed once written, so a Get never reads a part of one.
	mu    sync.RWMutex
	index map[fiat.Hash]span
}

// span is where a record starts in the pack and how long its encoding is.
type span struct {
	offset int64
	length uint32
}

// headerLen is the length of a record's header: the version's hash and the
// length of the encoding that follows.
var headerLen = int64(fiat.HashLen + 4)

// cacheFormat starts every record's encoding. Change it whenever what an
// encoding holds changes, so that older records read as misses.
const cacheFormat = "fiat script cache 4\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenCache opens the pack at path, creating it if need be, and indexes its
// records. Reading only their headers keeps a restart fast however many
// versions there are.
func OpenCache(path string) (*Cache, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	c := &Cache{path: path, file: f, index: map[fiat.Hash]span{}}
	if err := c.scan(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// scan indexes the records up to the first that is torn (by a crash while
// appending it) and truncates the pack there, so that records appended
// from now on are reached by the next scan.
func (c *Cache) scan() error {
	info, err := c.file.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	header := make([]byte, headerLen)
	for c.end+headerLen <= size {
		if _, err := c.file.ReadAt(header, c.end); err != nil {
			return err
		}
		id := fiat.Hash(header[:fiat.HashLen])
		length := binary.LittleEndian.Uint32(header[fiat.HashLen:])
		end := c.end + headerLen + int64(length)
		if checkHash(id) != nil || end > size {
			break
		}
		c.index[id] = span{c.end, length}
		c.end = end
	}
	if c.end < size {
		return c.file.Truncate(c.end)
	}
	return nil
}

func checkHash(id fiat.Hash) error {
	if len(id) != fiat.HashLen || !fiat.IsHashPrefix(string(id)) {
		return fmt.Errorf("script cache: %q is not a version hash", id)
	}
	return nil
}

// Put appends p to the pack, even if its version has a record already:
// that record may be unusable, and Put is how a miss is repaired.
func (c *Cache) Put(p *Program) error {
	if err := checkHash(p.id); err != nil {
		return err
	}
	// The record is built in one buffer, its header filled in last.
	record, err := p.appendEncoding(make([]byte, headerLen, 4<<10))
	if err != nil {
		return err
	}
	length := int64(len(record)) - headerLen
	if length > math.MaxUint32 {
		return fmt.Errorf("script cache: the program of version %s is too large for a record", p.id)
	}
	copy(record, p.id)
	binary.LittleEndian.PutUint32(record[fiat.HashLen:], uint32(length))
	c.appending.Lock()
	defer c.appending.Unlock()
	// A failed write leaves end where it was: the next record overwrites
	// whatever part of this one was written.
	if _, err := c.file.WriteAt(record, c.end); err != nil {
		return err
	}
	c.mu.Lock()
	c.index[p.id] = span{c.end, uint32(length)}
	c.mu.Unlock()
	c.end += int64(len(record))
	return nil
}

// Get loads the program of version id from its newest record.
func (c *Cache) Get(id fiat.Hash) (*Program, error) {
	if err := checkHash(id); err != nil {
		return nil, err
	}
	c.mu.RLock()
	s, ok := c.index[id]
	c.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("script cache: %s holds no record of version %s: %w", c.path, id, fs.ErrNotExist)
	}
	data := make([]byte, s.length)
	if _, err := c.file.ReadAt(data, s.offset+headerLen); err != nil {
		return nil, err
	}
	p, err := decodeProgram(data)
	if err != nil {
		return nil, &unusableError{c.path, s.offset, err.Error()}
	}
	if p.id != id {
		return nil, &unusableError{c.path, s.offset, "it holds version " + string(p.id)}
	}
	return p, nil
}

// Close closes the pack; Put and Get fail after it.
func (c *Cache) Close() error {
	return c.file.Close()
}

// unusableError is a record that exists but cannot be used. It is a miss
// like a missing record: the caller compiles again.
type unusableError struct {
	file   string
	offset int64
	why    string
}

func (e *unusableError) Error() string {
	return fmt.Sprintf("script cache: the record at offset %d of %s is unusable: %s", e.offset, e.file, e.why)
}

func (e *unusableError) Is(target error) bool { return target == fs.ErrNotExist }

// appendEncoding appends the program's encoding to b: cacheFormat, the
// program's id, service and config (as JSON), its modules (path and Starlark's own
// encoding of the compiled module), its assets (path and content), and a
// CRC-32C of all of that.
func (p *Program) appendEncoding(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, cacheFormat...)
	b = appendString(b, string(p.id))
	b = appendString(b, p.service)
	config, err := json.Marshal(p.config)
	if err != nil {
		return nil, err
	}
	b = appendString(b, string(config))
	b = binary.AppendUvarint(b, uint64(len(p.modules)))
	var code bytes.Buffer
	for _, path := range slices.Sorted(maps.Keys(p.modules)) {
		code.Reset()
		if err := p.modules[path].Write(&code); err != nil {
			return nil, err
		}
		b = appendString(b, path)
		b = append(binary.AppendUvarint(b, uint64(code.Len())), code.Bytes()...)
	}
	b = binary.AppendUvarint(b, uint64(len(p.assets)))
	for _, path := range slices.Sorted(maps.Keys(p.assets)) {
		b = appendString(b, path)
		b = append(binary.AppendUvarint(b, uint64(len(p.assets[path]))), p.assets[path]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
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
		modules: map[string]*starlark.Program{},
		assets:  map[string][]byte{},
	}
	if config := d.string(); d.err == nil {
		if err := json.Unmarshal([]byte(config), &p.config); err != nil {
			return nil, fmt.Errorf("config: %v", err)
		}
		p.environ = p.config.Environ()
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
	for n := d.uint(); n > 0 && d.err == nil; n-- {
		path, data := d.string(), d.bytes()
		p.assets[path] = data
	}
	if d.err == nil && len(d.data) > 0 {
		d.err = errors.New("trailing data")
	}
	return p, d.err
}

// decoder reads what appendEncoding appended; its first error sticks.
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
