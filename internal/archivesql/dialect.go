package archivesql

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// SQLite is SQLite's dialect. Attributes are TEXT and compared as strings:
// SQLite never finds a BLOB equal to a TEXT.
var SQLite = Dialect{
	Param:    func(int) string { return "?" },
	Storable: func(string) bool { return true },
	Eq: func(b *Builder, col string, v any) string {
		return col + " = " + b.Arg(v)
	},
	AnyOf: func(b *Builder, col string, vs []string) string {
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = b.Arg(v)
		}
		return col + " IN (" + strings.Join(ps, ", ") + ")"
	},
	Header: func(b *Builder, name string, value []byte) string {
		return "seq IN (SELECT seq FROM lookback_headers WHERE name = " + b.Arg(name) + " AND value = " + b.Arg(value) + ")"
	},
	HasHeader: func(b *Builder, name string) string {
		return "seq IN (SELECT seq FROM lookback_headers WHERE name = " + b.Arg(name) + ")"
	},
}

// indexPrefix is how much of a long value PostgreSQL's indexes hold: a
// b-tree entry may not exceed about 2.7 kB.
const indexPrefix = 256

// prefixed are PostgreSQL's columns indexed by their first indexPrefix
// bytes; a match compares that prefix, which the index answers, and then
// the whole value.
var prefixed = map[string]bool{"key": true, "ce_id": true, "ce_type": true, "ce_source": true, "ce_subject": true}

// timeOrdered are the prefixed columns whose index continues with ts, so
// that a page of one value's newest (or oldest) records is a walk along it.
var timeOrdered = map[string]bool{"key": true, "ce_type": true, "ce_source": true, "ce_subject": true}

// Postgres is PostgreSQL's dialect. Attributes and header names are bytea
// there, because text refuses NUL bytes and invalid UTF-8, which a
// malformed record may carry and must still be archived with.
var Postgres = Dialect{
	Param:    func(n int) string { return "$" + strconv.Itoa(n) },
	Storable: Storable,
	Eq: func(b *Builder, col string, v any) string {
		switch v := v.(type) {
		case string:
			if col == "topic" {
				if !Storable(v) {
					return "false" // no topic is named so
				}
				return col + " = " + b.Arg(v)
			}
			return bytesEq(b, col, []byte(v))
		case []byte:
			return bytesEq(b, col, v)
		}
		return col + " = " + b.Arg(v)
	},
	AnyOf: func(b *Builder, col string, vs []string) string {
		whole, prefix := make([][]byte, len(vs)), make([][]byte, len(vs))
		for i, v := range vs {
			whole[i] = []byte(v)
			prefix[i] = whole[i][:min(len(v), indexPrefix)]
		}
		return "substr(" + col + ", 1, 256) = ANY(" + b.Arg(prefix) + "::bytea[]) AND " + col + " = ANY(" + b.Arg(whole) + "::bytea[])"
	},
	Header: func(b *Builder, name string, value []byte) string {
		return "seq IN (SELECT seq FROM lookback_headers WHERE " + bytesEq(b, "name", []byte(name)) + " AND " + bytesEq(b, "value", value) + ")"
	},
	HasHeader: func(b *Builder, name string) string {
		return "seq IN (SELECT seq FROM lookback_headers WHERE " + bytesEq(b, "name", []byte(name)) + ")"
	},
}

func bytesEq(b *Builder, col string, v []byte) string {
	if v == nil {
		v = []byte{} // a nil []byte is NULL, which equals nothing
	}
	p := b.Arg(v)
	if !prefixed[col] && col != "name" && col != "value" {
		return col + " = " + p
	}
	if len(v) < indexPrefix && timeOrdered[col] {
		// A value shorter than the prefix equals the column exactly when
		// it equals the column's prefix. Said twice (prefix, then whole),
		// the planner would multiply two selectivities of one condition,
		// expect a single row, and read every match from the heap to sort
		// them. Said once, it walks the (prefix, ts) index backward and
		// stops after the page, however many records match. An id, which
		// matches one record, keeps both: its index has no ts, and only
		// the tiny estimate keeps the planner from walking the time index
		// instead, looking for the id.
		return "substr(" + col + ", 1, 256) = " + p
	}
	return "substr(" + col + ", 1, 256) = substr(" + p + "::bytea, 1, 256) AND " + col + " = " + p
}

// Storable reports whether PostgreSQL's text can hold s: UTF-8 without NUL.
func Storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
