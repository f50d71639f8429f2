// Package fielderr is the one error type for an invalid spec, whatever it
// specifies (a pipe, a cluster, a secret): every bad field, its value and
// the fix, so a user fixes them all in one round. The API maps it to its
// errors in one place; the CLI renames its fields to flags.
package fielderr

import (
	"fmt"
	"strings"
)

// Field is one invalid field.
type Field struct {
	Field  string // the path in the spec, e.g. "batchSize" or "target.http.url"
	Value  string // the rejected value as the user wrote it; "" when it is a secret or absent
	Reason string // what is allowed, phrased as the fix
}

func (f Field) Error() string {
	if f.Value == "" {
		return fmt.Sprintf("%s: %s", f.Field, f.Reason)
	}
	return fmt.Sprintf("%s: invalid value %s: %s", f.Field, f.Value, f.Reason)
}

// List is every invalid field of one spec of Kind ("pipe", "cluster",
// "secret").
type List struct {
	Kind   string
	Fields []Field
}

// New returns an empty list for a spec of kind.
func New(kind string) *List { return &List{Kind: kind} }

func (l *List) Error() string {
	msgs := make([]string, len(l.Fields))
	for i, f := range l.Fields {
		msgs[i] = f.Error()
	}
	kind := l.Kind
	if kind == "" {
		kind = "spec"
	}
	return "invalid " + kind + ": " + strings.Join(msgs, "; ")
}

// Add appends a field.
func (l *List) Add(field, value, reason string) {
	l.Fields = append(l.Fields, Field{Field: field, Value: value, Reason: reason})
}

// Err is l, or nil when it holds no field: what a Validate returns.
func (l *List) Err() error {
	if l == nil || len(l.Fields) == 0 {
		return nil
	}
	return l
}
