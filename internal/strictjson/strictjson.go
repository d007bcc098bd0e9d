// Package strictjson decodes request bodies the way an API that changes
// things must read them: one JSON value, every field name exactly one of
// the target's, each at most once.
//
// encoding/json with DisallowUnknownFields still matches field names
// without regard to letter case and lets the last of two equal names win,
// so {"dry_run": true, "DRY_RUN": false} would run what it only asked to
// plan. Decode refuses both.
//
//	var req Request
//	if err := strictjson.Decode(http.MaxBytesReader(w, r.Body, 1<<20), &req); err != nil {
//		// io.EOF: empty body; *http.MaxBytesError: too large; else malformed
//	}
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Decode reads the one JSON value of r into v, refusing unknown fields, a
// field name whose case differs from the field's, a name given twice in one
// object, and anything after the value. Numbers decoded into an interface
// stay json.Number, so an int64 keeps every digit. An empty body is io.EOF;
// an error reading r (an *http.MaxBytesError, say) comes back as it is.
func Decode(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return io.EOF
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// More would say there is no more at a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the value")
	}
	return CheckNames(data, v)
}

// CheckNames reports the first field name of data, a JSON value that
// decodes into v, that v has only when letter case is ignored or that an
// object gives twice.
func CheckNames(data []byte, v any) error {
	return walk(json.NewDecoder(bytes.NewReader(data)), reflect.TypeOf(v), "")
}

var (
	unmarshaler     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk reads one value from dec, which decodes into a t (nil: any type,
// whose objects are checked for repeated names only).
func walk(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil // it reads itself
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('{'):
		var (
			fields map[string]reflect.Type // a struct's
			elem   reflect.Type            // a map's
		)
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = fieldsOf(t)
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			at := strings.TrimPrefix(path+"."+name, ".")
			if seen[name] {
				return fmt.Errorf("field %q given twice", at)
			}
			seen[name] = true
			ft := elem
			if fields != nil {
				var ok bool
				if ft, ok = fields[name]; !ok {
					return fmt.Errorf("unknown field %q (names are case-sensitive)", at)
				}
			}
			if err := walk(dec, ft, at); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil // a scalar: the decoder checked its type
}

// fieldsOf returns the JSON names of t's fields, embedded structs' fields
// included, as encoding/json names them.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type)
	for _, f := range reflect.VisibleFields(t) {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && name == "" && underlying(f.Type).Kind() == reflect.Struct:
			continue // its fields are promoted, and listed on their own
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func underlying(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
