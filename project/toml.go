package project

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fiatdev/fiat"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// position is a place in fiat.toml.
type position struct{ line, col int }

func (p position) problem(format string, args ...any) fiat.Problem {
	return fiat.Problem{Path: manifestName, Line: p.line, Col: p.col, Message: fmt.Sprintf(format, args...)}
}

// setting is one thing fiat.toml says: a key and its value, or a table
// header, which declares a table. Its key is the full path from the root of
// the document, so a setting reads the same whether fiat.toml spells its
// table with a header, a dotted key or an inline table.
type setting struct {
	key []keyPart
	// kind is the value's TOML type: unstable.Table for table headers and
	// inline tables alike, unstable.ArrayTable for [[headers]].
	kind unstable.Kind
	// value is a string's content, or the literal of any other scalar.
	value string
	// at is where the value is written, or where the key ends when the
	// value has no position of its own (headers and arrays).
	at position
}

type keyPart struct {
	name string
	at   position
}

// readSettings reads a TOML document into its settings, in document order.
// The only problem it reports is the document not being valid TOML.
func readSettings(data []byte) ([]setting, *fiat.Problem) {
	// The decoder knows the rules the AST below does not enforce, such as
	// no key being defined twice.
	if err := toml.Unmarshal(data, new(map[string]any)); err != nil {
		return nil, tomlProblem(err)
	}
	var p unstable.Parser
	p.Reset(data)
	var settings []setting
	var table []keyPart
	// The decoder accepted data, so the parser cannot fail on it.
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(&p, nil, expr.Key())
			settings = append(settings, setting{key: table, kind: expr.Kind, at: table[len(table)-1].at})
		case unstable.KeyValue:
			settings = appendKeyValue(&p, settings, table, expr)
		}
	}
	return settings, nil
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

// appendKeyValue appends the setting of kv, inside table, and those of the
// inline tables it holds.
func appendKeyValue(p *unstable.Parser, settings []setting, table []keyPart, kv *unstable.Node) []setting {
	key := keyParts(p, table, kv.Key())
	value := kv.Value()
	s := setting{key: key, kind: value.Kind, value: string(value.Data), at: key[len(key)-1].at}
	if value.Raw.Length > 0 {
		s.at = positionOf(p, value)
	}
	if value.Kind != unstable.InlineTable {
		return append(settings, s)
	}
	s.kind = unstable.Table
	settings = append(settings, s)
	children := value.Children()
	for children.Next() {
		settings = appendKeyValue(p, settings, key, children.Node())
	}
	return settings
}

func keyParts(p *unstable.Parser, table []keyPart, key unstable.Iterator) []keyPart {
	parts := slices.Clone(table)
	for key.Next() {
		parts = append(parts, keyPart{string(key.Node().Data), positionOf(p, key.Node())})
	}
	return parts
}

func positionOf(p *unstable.Parser, n *unstable.Node) position {
	start := p.Shape(n.Raw).Start
	return position{start.Line, start.Column}
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
