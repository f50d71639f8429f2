// Package strictjson decodes the JSON bodies users send, strictly: what
// encoding/json lets through silently is a user's mistake that should be
// named, not guessed at.
//
// On top of encoding/json with unknown fields disallowed, Unmarshal
// refuses:
//
//   - field names that match only in another case ("BatchSize" for
//     "batchSize"): encoding/json folds case, so a misspelt name would
//     set the field anyway, and a second spelling of it would win;
//   - a key twice in one object: encoding/json keeps the last, so what
//     a reviewer reads first is not what runs;
//   - anything after the value;
//
// and it phrases every failure with the field's path in the body's own
// names ("target.url", "topics[1]") and JSON's words (a string, an
// integer), never Go's type names. Numbers that do not fit their field
// are refused by encoding/json already; their errors are rephrased here.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error is a body Unmarshal refused. Field is the path of the offending
// value ("" for the body as a whole).
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return "field " + e.Field + ": " + e.Reason
}

// ErrEmpty is what Unmarshal returns for a body with no value at all, so
// callers can say what to send.
var ErrEmpty = errors.New("the body is empty")

// Unmarshal decodes the one JSON value in data into v (a pointer), or
// returns an *Error saying what is wrong, or ErrEmpty.
func Unmarshal(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return ErrEmpty
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("strictjson: Unmarshal needs a pointer, got %T", v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec}
	if err := w.value(t.Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Reason: "the body has data after its JSON value: send exactly one"}
	}
	strict := json.NewDecoder(bytes.NewReader(data))
	strict.DisallowUnknownFields()
	if err := strict.Decode(v); err != nil {
		return rephrase(err)
	}
	return nil
}

// walker checks a token stream against a Go type, before encoding/json
// decodes it: exact names and no duplicates, at any depth.
type walker struct {
	dec *json.Decoder
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (w *walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, syntaxError(err, w.dec.InputOffset())
	}
	return tok, nil
}

// value consumes one value, checking it against t (nil: any value).
func (w *walker) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // decodes itself (time.Time, json.RawMessage): only the generic checks
	}
	tok, err := w.token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields = fieldsOf(t)
			case reflect.Map:
				elem = t.Elem()
			default:
				// any, or a type mismatch that encoding/json names:
				// only the generic checks inside.
			}
		}
		seen := map[string]bool{}
		for w.dec.More() {
			kt, err := w.token()
			if err != nil {
				return err
			}
			key := kt.(string)
			kpath := join(path, key)
			if seen[key] {
				return &Error{Field: kpath, Reason: "appears twice in one object: give it once"}
			}
			seen[key] = true
			next := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					return unknownField(kpath, key, fields)
				}
				next = ft
			}
			if err := w.value(next, kpath); err != nil {
				return err
			}
		}
		_, err := w.token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	}
	return nil // a scalar: encoding/json checks its type and range
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownField says what is wrong with a name the type does not have,
// suggesting the field that differs only in case.
func unknownField(path, key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return &Error{Field: path, Reason: fmt.Sprintf("unknown field; names are case-sensitive: did you mean %q?", name)}
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	return &Error{Field: path, Reason: "unknown field; the fields here are " + strings.Join(names, ", ")}
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf is the JSON names of a struct's fields and their types, as
// encoding/json sees them: tags, untagged exported names, fields of
// embedded structs promoted.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = f.Type
			}
		}
	}
	add(t)
	fieldCache.Store(t, out)
	return out
}

func syntaxError(err error, offset int64) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Reason: "malformed JSON: the body ends in the middle of a value"}
	case errors.As(err, &se):
		return &Error{Reason: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	}
	return &Error{Reason: fmt.Sprintf("malformed JSON at byte %d: %s", offset, strings.TrimPrefix(err.Error(), "json: "))}
}

// rephrase turns encoding/json's errors into the body's words.
func rephrase(err error) error {
	var (
		te *json.UnmarshalTypeError
		pe *time.ParseError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &te):
		if strings.HasPrefix(te.Value, "number ") {
			return &Error{Field: te.Field, Reason: fmt.Sprintf("%s does not fit: want %s", te.Value, kind(te.Type))}
		}
		if te.Field == "" {
			return &Error{Reason: fmt.Sprintf("the body is a JSON %s: want %s", te.Value, kind(te.Type))}
		}
		return &Error{Field: te.Field, Reason: fmt.Sprintf("got a JSON %s, want %s", te.Value, kind(te.Type))}
	case errors.As(err, &pe):
		return &Error{Reason: fmt.Sprintf("invalid time %q: use RFC 3339, e.g. 2026-01-02T15:04:05Z", pe.Value)}
	case errors.As(err, &se):
		return syntaxError(err, se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The walker refuses unknown fields first; this is a backstop.
		return &Error{Reason: "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	}
	// Custom UnmarshalJSON methods phrase their own errors.
	return &Error{Reason: strings.TrimPrefix(err.Error(), "json: ")}
}

// kind names a Go type as the JSON a client should send.
func kind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another type"
}
