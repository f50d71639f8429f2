package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxTemplateLen is the longest InputTemplate a pipe accepts, in
// characters (the Pipes API model's length limit for InputTemplate).
const MaxTemplateLen = 8192

// Error is a template Compile refused: Offset is the byte of the template
// at fault, Reason says what is wrong and how to fix it.
type Error struct {
	Offset int
	Reason string
}

func (e *Error) Error() string {
	return "input template: byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

func errAt(off int, reason string) *Error { return &Error{Offset: off, Reason: reason} }

// Vars are the reserved variables' values for one pipe.
type Vars struct {
	PipeName, PipeARN, SourceARN, TargetARN, EnrichmentARN string
	// IngestionTime is when the input transformer received the event;
	// the caller supplies it so that Apply stays pure.
	IngestionTime time.Time
}

// Template is a compiled InputTemplate. It is immutable, so one Template
// may be applied from many goroutines.
type Template struct {
	src   string
	json  bool
	parts []part
	tail  string // literal text after the last variable
}

// part is literal text followed by one variable.
type part struct {
	lit string
	ctx context
	v   variable
}

// context is where a variable stands, which decides how its value is
// written.
type context uint8

const (
	// ctxText: in a text template. Strings are written as their text,
	// other values as JSON; a missing value writes nothing.
	ctxText context = iota
	// ctxValue: where a JSON value goes in a JSON template. The value is
	// written as JSON (strings quoted); a missing value is null.
	ctxValue
	// ctxString: inside a quoted string of a JSON template (a "dynamic
	// string"). Strings are written as their content, other values as
	// their JSON text, all escaped; a missing value writes nothing.
	ctxString
)

type varKind uint8

const (
	varPath varKind = iota
	varPipeARN
	varPipeName
	varSourceARN
	varEnrichmentARN
	varTargetARN
	varIngestionTime
	varEvent
	varEventJSON
)

type variable struct {
	kind varKind
	path path // for varPath
}

// reserved maps the reserved variables the Pipes documentation lists to
// their kinds.
var reserved = map[string]varKind{
	"aws.pipes.pipe-arn":             varPipeARN,
	"aws.pipes.pipe-name":            varPipeName,
	"aws.pipes.source-arn":           varSourceARN,
	"aws.pipes.enrichment-arn":       varEnrichmentARN,
	"aws.pipes.target-arn":           varTargetARN,
	"aws.pipes.event.ingestion-time": varIngestionTime,
	"aws.pipes.event":                varEvent,
	"aws.pipes.event.json":           varEventJSON,
}

const reservedList = "aws.pipes.pipe-arn, aws.pipes.pipe-name, aws.pipes.source-arn, aws.pipes.enrichment-arn, aws.pipes.target-arn, aws.pipes.event.ingestion-time, aws.pipes.event, aws.pipes.event.json"

// String returns the template as written.
func (t *Template) String() string { return t.src }

// IsJSON reports whether every output of the template is one JSON value
// (an object, an array or a string), so that a batch of outputs can be
// sent as a JSON array. A text template, including a lone <$.path>,
// reports false: its output may be any text.
func (t *Template) IsJSON() bool { return t.json }

// Compile parses an InputTemplate.
func Compile(template string) (*Template, error) {
	t, err := compile(template)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func compile(src string) (*Template, *Error) {
	if !utf8.ValidString(src) {
		for i := 0; i < len(src); {
			r, size := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, errAt(i, "invalid UTF-8: a template is text")
			}
			i += size
		}
	}
	if n := utf8.RuneCountInString(src); n > MaxTemplateLen {
		return nil, errAt(len(src), "template is "+strconv.Itoa(n)+" characters; a pipe accepts at most "+strconv.Itoa(MaxTemplateLen))
	}
	c := &compiler{src: src}
	first := skipWS([]byte(src), 0)
	if first < len(src) {
		switch src[first] {
		case '{', '[':
			// A template that opens an object or array is the documented
			// "JSON object that includes inline JSON paths": it must be
			// valid JSON once its variables are filled in, and its errors
			// are reported as JSON errors.
			if err := c.jsonTemplate(); err != nil {
				return nil, err
			}
			return c.done(true), nil
		case '"':
			// A quoted template ("Hello, <$.x>") is a JSON string when it is
			// exactly one; otherwise ("a" and "b") it is text with quotes in
			// it, which the documentation allows as free text.
			if err := c.jsonTemplate(); err == nil {
				return c.done(true), nil
			}
			c = &compiler{src: src}
		}
	}
	if err := c.textTemplate(); err != nil {
		return nil, err
	}
	return c.done(false), nil
}

type compiler struct {
	src   string
	i     int
	lit   []byte
	parts []part
	depth int
}

func (c *compiler) done(json bool) *Template {
	return &Template{src: c.src, json: json, parts: c.parts, tail: string(c.lit)}
}

func (c *compiler) emit(ctx context, v variable) {
	c.parts = append(c.parts, part{lit: string(c.lit), ctx: ctx, v: v})
	c.lit = c.lit[:0]
}

// variable parses the variable whose '<' is at c.i and leaves c.i after
// its '>'.
func (c *compiler) variable(ctx context) *Error {
	open := c.i
	end := -1
	for j := open + 1; j < len(c.src); j++ {
		if c.src[j] == '>' {
			end = j
			break
		}
		if c.src[j] == '<' {
			return errAt(open, "'<' not closed before the next '<': end the variable with '>'")
		}
	}
	if end < 0 {
		return errAt(open, "'<' not closed: end the variable with '>' (a template has no other use for '<')")
	}
	name := c.src[open+1 : end]
	var v variable
	switch {
	case name == "":
		return errAt(open, "empty variable '<>': write a JSON path such as <$.value> or a reserved variable such as <aws.pipes.pipe-name>")
	case name[0] == '$':
		p, err := parsePath(name, open+1)
		if err != nil {
			return err
		}
		v = variable{kind: varPath, path: p}
	case strings.HasPrefix(name, "aws.pipes."):
		k, ok := reserved[name]
		if !ok {
			return errAt(open+1, "unknown reserved variable <"+name+">: a pipe has "+reservedList)
		}
		v = variable{kind: k}
	case strings.HasPrefix(name, "aws.events."):
		return errAt(open+1, "<"+name+"> is a variable of EventBridge rules, not pipes: a pipe has "+reservedList)
	default:
		return errAt(open+1, "unknown variable <"+name+">: a pipe has no named variables (InputPathsMap is for rules); write a JSON path such as <$.value."+pathHint(name)+"> or one of "+reservedList)
	}
	// The documentation: aws.pipes.event.json "isn't escaped, the variable
	// can only be used as a value for a JSON field".
	if v.kind == varEventJSON && ctx != ctxValue {
		return errAt(open, "<aws.pipes.event.json> can only be the value of a JSON field: use it unquoted in a JSON template, such as {\"event\": <aws.pipes.event.json>}")
	}
	c.emit(ctx, v)
	c.i = end + 1
	return nil
}

func pathHint(name string) string {
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i]) {
			return "field"
		}
	}
	return name
}

func strayClose(off int) *Error {
	return errAt(off, "'>' without a '<' before it: remove it (inside a JSON string write \\u003e)")
}

// textTemplate compiles free text: variables anywhere, everything else
// copied as written.
func (c *compiler) textTemplate() *Error {
	for c.i < len(c.src) {
		switch c.src[c.i] {
		case '<':
			if err := c.variable(ctxText); err != nil {
				return err
			}
		case '>':
			return strayClose(c.i)
		default:
			c.lit = append(c.lit, c.src[c.i])
			c.i++
		}
	}
	return nil
}

// jsonTemplate compiles one JSON value with variables in it, dropping
// insignificant whitespace: the documentation says the JSON passed to a
// target is minified, and a batch of outputs is smaller for it.
func (c *compiler) jsonTemplate() *Error {
	if err := c.value(); err != nil {
		return err
	}
	c.ws()
	if c.i < len(c.src) {
		return errAt(c.i, "text after the end of the JSON value: a JSON template is a single object, array or string")
	}
	return nil
}

func (c *compiler) ws() {
	for c.i < len(c.src) && isSpace(c.src[c.i]) {
		c.i++
	}
}

func (c *compiler) value() *Error {
	c.ws()
	if c.i >= len(c.src) {
		return errAt(c.i, "unexpected end of template: a JSON value is missing")
	}
	switch ch := c.src[c.i]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		return c.str()
	case ch == '<':
		return c.variable(ctxValue)
	case ch == '-' || isDigit(ch):
		end, ok := scanNumber([]byte(c.src), c.i)
		if !ok {
			return errAt(end, "invalid number")
		}
		if end < len(c.src) && isDigit(c.src[end]) {
			return errAt(c.i, "invalid number: JSON numbers have no leading zeros")
		}
		c.lit = append(c.lit, c.src[c.i:end]...)
		c.i = end
		return nil
	case ch == 't' || ch == 'f' || ch == 'n':
		for _, w := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(c.src[c.i:], w) {
				c.lit = append(c.lit, w...)
				c.i += len(w)
				return nil
			}
		}
		return errAt(c.i, "invalid literal: JSON has true, false and null; put text in double quotes")
	case ch == '>':
		return strayClose(c.i)
	case ch == '\'':
		return errAt(c.i, "JSON strings use double quotes, not single quotes")
	}
	return errAt(c.i, "expected a JSON value (an object, array, string, number, true, false, null or a <variable>); put text in double quotes")
}

func (c *compiler) nest() *Error {
	if c.depth++; c.depth > maxDepth {
		return errAt(c.i, "nested too deeply")
	}
	return nil
}

func (c *compiler) object() *Error {
	if err := c.nest(); err != nil {
		return err
	}
	c.lit = append(c.lit, '{')
	c.i++
	c.ws()
	if c.i < len(c.src) && c.src[c.i] == '}' {
		c.lit = append(c.lit, '}')
		c.i++
		c.depth--
		return nil
	}
	for {
		c.ws()
		if c.i >= len(c.src) {
			return errAt(c.i, "unexpected end of template: close the object with '}'")
		}
		switch c.src[c.i] {
		case '"':
		case '<':
			return errAt(c.i, "a variable cannot be a key as it stands: keys are strings, so put it in quotes (\"<$.topic>\": ...)")
		case '}':
			return errAt(c.i, "'}' after ',': remove the trailing comma")
		default:
			return errAt(c.i, "expected a key in double quotes")
		}
		if err := c.str(); err != nil {
			return err
		}
		c.ws()
		if c.i >= len(c.src) || c.src[c.i] != ':' {
			return errAt(c.i, "expected ':' after the key")
		}
		c.lit = append(c.lit, ':')
		c.i++
		if err := c.value(); err != nil {
			return err
		}
		if done, err := c.after('}', "object", "a field"); done || err != nil {
			return err
		}
	}
}

func (c *compiler) array() *Error {
	if err := c.nest(); err != nil {
		return err
	}
	c.lit = append(c.lit, '[')
	c.i++
	c.ws()
	if c.i < len(c.src) && c.src[c.i] == ']' {
		c.lit = append(c.lit, ']')
		c.i++
		c.depth--
		return nil
	}
	for {
		c.ws()
		if c.i < len(c.src) && c.src[c.i] == ']' {
			return errAt(c.i, "']' after ',': remove the trailing comma")
		}
		if err := c.value(); err != nil {
			return err
		}
		if done, err := c.after(']', "array", "an element"); done || err != nil {
			return err
		}
	}
}

// after reads what follows a member of an object or array: a comma (more
// to come) or the closing byte (done).
func (c *compiler) after(closing byte, kind, member string) (done bool, err *Error) {
	c.ws()
	if c.i >= len(c.src) {
		return false, errAt(c.i, fmt.Sprintf("unexpected end of template: close the %s with '%c'", kind, closing))
	}
	switch c.src[c.i] {
	case ',':
		c.lit = append(c.lit, ',')
		c.i++
		return false, nil
	case closing:
		c.lit = append(c.lit, closing)
		c.i++
		c.depth--
		return true, nil
	}
	return false, errAt(c.i, fmt.Sprintf("expected ',' or '%c' after %s: add the missing comma", closing, member))
}

// str compiles a quoted string, whose variables are dynamic-string parts.
func (c *compiler) str() *Error {
	open := c.i
	c.lit = append(c.lit, '"')
	c.i++
	for c.i < len(c.src) {
		ch := c.src[c.i]
		switch {
		case ch == '"':
			c.lit = append(c.lit, '"')
			c.i++
			return nil
		case ch == '\\':
			end, ok := scanEscape([]byte(c.src[c.i:min(len(c.src), c.i+6)]), 0)
			if !ok {
				return errAt(c.i, "invalid escape in string: JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX")
			}
			c.lit = append(c.lit, c.src[c.i:c.i+end]...)
			c.i += end
		case ch == '<':
			if err := c.variable(ctxString); err != nil {
				return err
			}
		case ch == '>':
			return strayClose(c.i)
		case ch < 0x20:
			return errAt(c.i, "control character in a string: escape it (\\n, \\t, \\u00XX)")
		default:
			c.lit = append(c.lit, ch)
			c.i++
		}
	}
	return errAt(open, "string not closed: add the closing '\"'")
}

// EventError is an event Apply refused because it is not JSON.
type EventError struct {
	Offset int
	Reason string
}

func (e *EventError) Error() string {
	return "input template: event is not JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Apply renders the template for one record's event, appending to dst.
// event is the JSON of the Pipes record object as RecordEvent builds it,
// with an implicitly parsed key or value. It fails only when event is
// not JSON; dst is then returned unchanged.
func (t *Template) Apply(dst []byte, event []byte, v Vars) ([]byte, error) {
	off, reason, top := validateIndex(event)
	if off >= 0 {
		return dst, &EventError{Offset: off, Reason: reason}
	}
	d := doc{b: event, top: top}
	d.sub.start = -1
	var scratch [16]span
	spans := scratch[:0]
	for i := range t.parts {
		p := &t.parts[i]
		dst = append(dst, p.lit...)
		dst, spans = d.render(dst, p, &v, spans)
	}
	return append(dst, t.tail...), nil
}
