package project

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/fiatdev/fiat"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Limits of fiat.toml, which a hostile bundle may fill with anything.
// go-toml's decoder finds each key among its siblings one by one, so its
// time grows with the square of the keys in a table (13,000 keys took
// 170 ms, 2048 take 6). Checking a setting writes out its key, which
// repeats the parts of its table's key: they must be short. A project
// declaring hundreds of services is far within both.
const (
	maxManifestKeys = 2048
	maxKeyLen       = 256
)

// position is a place in fiat.toml.
type position struct{ line, col int }

func (p position) problem(format string, args ...any) fiat.Problem {
	return fiat.Problem{Path: manifestName, Line: p.line, Col: p.col, Message: fmt.Sprintf(format, args...)}
}

// setting is one thing fiat.toml says: a key and its value, or a table
// header, which declares a table. Its key is the path from the root of the
// document, so a setting reads the same whether fiat.toml spells its table
// with a header, a dotted key or an inline table. fiat.toml nests four
// deep (services.NAME.env.KEY), so a longer key is kept as its first four
// parts, naming a table.
type setting struct {
	key []keyPart
	// kind is the value's TOML type: unstable.Table for table headers,
	// inline tables and longer keys alike, unstable.ArrayTable for
	// [[headers]].
	kind unstable.Kind
	// value is a string's content, or the literal of any other scalar.
	value string
	// at is where the value is written, or where the key ends when the
	// value has no position of its own (headers and arrays).
	at position
	// items are an array's values, like uses = ["api"].
	items []item
}

// item is one value of an array.
type item struct {
	kind  unstable.Kind
	value string
	at    position
}

type keyPart struct {
	name string
	at   position
}

// readSettings reads a TOML document into its settings, in document order.
// The only problem it reports is the document not being valid TOML, or
// being over the limits above. Its time is linear in the size of data.
func readSettings(data []byte) ([]setting, *fiat.Problem) {
	r := settingsReader{lines: lineCounter{data: data}}
	r.p.Reset(data)
	var table tableKey
	for r.problem == nil && r.p.NextExpression() {
		expr := r.p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			if table = r.key(tableKey{}, expr.Key()); r.problem != nil {
				break
			}
			kind := expr.Kind
			if table.deeper {
				kind = unstable.Table
			}
			r.settings = append(r.settings, setting{key: table.parts, kind: kind, at: table.last()})
		case unstable.KeyValue:
			r.keyValue(table, expr)
		}
	}
	if r.problem != nil {
		return nil, r.problem
	}
	// The decoder knows the rules the parser does not enforce, such as no
	// key being defined twice, and reports the first problem in the
	// document, syntax errors included.
	if err := toml.Unmarshal(data, new(map[string]any)); err != nil {
		return nil, tomlProblem(err)
	}
	return r.settings, nil
}

func tomlProblem(err error) *fiat.Problem {
	var at position
	var decodeErr *toml.DecodeError
	if errors.As(err, &decodeErr) {
		at.line, at.col = decodeErr.Position()
	}
	problem := at.problem("%s", strings.TrimPrefix(err.Error(), "toml: "))
	return &problem
}

// settingsReader reads the settings of a document, counting its keys.
type settingsReader struct {
	p        unstable.Parser
	lines    lineCounter
	settings []setting
	keys     int
	// problem is set when the document is over a limit.
	problem *fiat.Problem
}

// maxKeyParts is how deep fiat.toml nests: services.NAME.env.KEY.
const maxKeyParts = 4

// tableKey is the key of a table: its first maxKeyParts parts, and whether
// it has more.
type tableKey struct {
	parts  []keyPart
	deeper bool
}

func (k tableKey) last() position { return k.parts[len(k.parts)-1].at }

// keyValue reads the setting of kv, inside table, and those of the inline
// tables it holds.
func (r *settingsReader) keyValue(table tableKey, kv *unstable.Node) {
	key := r.key(table, kv.Key())
	if r.problem != nil {
		return
	}
	value := kv.Value()
	s := setting{key: key.parts, kind: value.Kind, at: key.last()}
	switch {
	case key.deeper:
		s.kind = unstable.Table
	case value.Kind == unstable.InlineTable:
		s.kind = unstable.Table
		if value.Raw.Length > 0 {
			s.at = r.lines.at(int(value.Raw.Offset))
		}
	case value.Raw.Length > 0:
		s.value = string(value.Data)
		s.at = r.lines.at(int(value.Raw.Offset))
	}
	children := value.Children()
	for value.Kind == unstable.Array && children.Next() {
		child := children.Node()
		it := item{kind: child.Kind, at: s.at}
		if child.Raw.Length > 0 {
			it.value, it.at = string(child.Data), r.lines.at(int(child.Raw.Offset))
		}
		s.items = append(s.items, it)
		r.countKeys(child)
	}
	r.settings = append(r.settings, s)
	children = value.Children()
	for value.Kind != unstable.Array && children.Next() {
		child := children.Node()
		// Down to the tables of a service's keys, like env = { A = "b" }.
		if value.Kind == unstable.InlineTable && len(key.parts) < maxKeyParts {
			r.keyValue(key, child)
		} else {
			r.countKeys(child)
		}
	}
}

// key reads the key of an expression, inside table.
func (r *settingsReader) key(table tableKey, parts unstable.Iterator) tableKey {
	key := tableKey{parts: table.parts[:len(table.parts):len(table.parts)], deeper: table.deeper}
	for parts.Next() {
		part := parts.Node()
		if r.count(part); r.problem != nil {
			return key
		}
		if len(key.parts) == maxKeyParts {
			key.deeper = true
			continue
		}
		key.parts = append(key.parts, keyPart{string(part.Data), r.lines.at(int(part.Raw.Offset))})
	}
	return key
}

// countKeys counts the keys under n, a value or a key-value in an array or
// a table too deep to hold settings: the decoder still reads them.
func (r *settingsReader) countKeys(n *unstable.Node) {
	if n.Kind == unstable.KeyValue {
		parts := n.Key()
		for parts.Next() {
			if r.count(parts.Node()); r.problem != nil {
				return
			}
		}
		n = n.Value()
	}
	children := n.Children()
	for r.problem == nil && children.Next() {
		r.countKeys(children.Node())
	}
}

// count counts one key part, and sets r.problem when the document is over
// a limit.
func (r *settingsReader) count(part *unstable.Node) {
	r.keys++
	switch {
	case r.keys > maxManifestKeys:
		p := r.lines.at(int(part.Raw.Offset)).problem("fiat.toml has more than %d keys (each part of a dotted key counts): declare only services and their settings", maxManifestKeys)
		r.problem = &p
	case len(part.Data) > maxKeyLen:
		p := r.lines.at(int(part.Raw.Offset)).problem("key %q… is %d bytes long: keys in fiat.toml are at most %d bytes", part.Data[:40], len(part.Data), maxKeyLen)
		r.problem = &p
	}
}

// lineCounter finds the line and column of offsets in a document. Asked in
// increasing order, as a parser meets them, it reads the document once.
type lineCounter struct {
	data []byte
	// The line of offset, 0-based, and where it starts.
	offset, line, lineStart int
}

func (c *lineCounter) at(offset int) position {
	if offset < c.offset {
		*c = lineCounter{data: c.data}
	}
	for {
		i := bytes.IndexByte(c.data[c.offset:offset], '\n')
		if i < 0 {
			break
		}
		c.line++
		c.lineStart = c.offset + i + 1
		c.offset = c.lineStart
	}
	c.offset = offset
	return position{c.line + 1, offset - c.lineStart + 1}
}

// keyString writes key as TOML would, quoting the parts that need it.
func keyString(key []keyPart) string {
	names := make([]string, len(key))
	for i, part := range key {
		names[i] = part.name
		if !isBareKey(part.name) {
			names[i] = fmt.Sprintf("%q", part.name)
		}
	}
	return strings.Join(names, ".")
}

func isBareKey(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// kindNames describe TOML types in messages.
var kindNames = map[unstable.Kind]string{
	unstable.String:        "a string",
	unstable.Bool:          "a boolean",
	unstable.Integer:       "an integer",
	unstable.Float:         "a float",
	unstable.Array:         "an array",
	unstable.Table:         "a table",
	unstable.ArrayTable:    "an array of tables",
	unstable.LocalDate:     "a date",
	unstable.LocalTime:     "a time",
	unstable.LocalDateTime: "a date-time",
	unstable.DateTime:      "a date-time",
}
