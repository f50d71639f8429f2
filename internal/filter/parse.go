package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The pattern parser is separate from the document scanner: patterns are
// small and parsed once, so it builds a tree that remembers every value's
// byte offset, which is what a user needs to find the mistake.

type jkind uint8

const (
	jString jkind = iota + 1
	jNumber
	jBool
	jNull
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jString:
		return "a string"
	case jNumber:
		return "a number"
	case jBool:
		return "a boolean"
	case jNull:
		return "null"
	case jArray:
		return "an array"
	case jObject:
		return "an object"
	}
	return "nothing"
}

type jnode struct {
	kind   jkind
	off    int    // byte offset of the value's first byte in the pattern
	s      string // decoded string, or the number as written
	b      bool
	elems  []*jnode
	fields []jfield
}

type jfield struct {
	key string
	off int // byte offset of the key's opening quote
	val *jnode
}

// maxPatternDepth bounds nesting; a 4096-character pattern cannot usefully
// nest deeper, and the bound keeps the recursion shallow.
const maxPatternDepth = 256

type pparser struct {
	src   string
	pos   int
	depth int
}

func perr(off int, path, format string, args ...any) *Error {
	return &Error{Index: -1, Offset: off, Path: path, Reason: fmt.Sprintf(format, args...)}
}

func parsePattern(src string) (*jnode, *Error) {
	p := &pparser{src: src}
	p.ws()
	if p.pos >= len(src) {
		return nil, perr(0, "", "the pattern is empty: write a JSON object such as {\"value\": {\"status\": [\"active\"]}}")
	}
	if src[p.pos] != '{' {
		return nil, perr(p.pos, "", "a pattern must be a JSON object: start it with '{'")
	}
	n, err := p.value("")
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos < len(src) {
		return nil, perr(p.pos, "", "unexpected %s after the end of the pattern object: remove it", p.what())
	}
	return n, nil
}

func (p *pparser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// what describes the input at the cursor for an error message.
func (p *pparser) what() string {
	if p.pos >= len(p.src) {
		return "end of pattern"
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *pparser) value(path string) (*jnode, *Error) {
	p.ws()
	if p.pos >= len(p.src) {
		return nil, perr(p.pos, path, "the pattern ends where a value was expected: complete it and close every '{' and '['")
	}
	start := p.pos
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(path)
	case c == '[':
		return p.array(path)
	case c == '"':
		s, err := p.str(path)
		if err != nil {
			return nil, err
		}
		return &jnode{kind: jString, off: start, s: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(path)
	case strings.HasPrefix(p.src[p.pos:], "true"):
		p.pos += 4
		return &jnode{kind: jBool, off: start, b: true}, nil
	case strings.HasPrefix(p.src[p.pos:], "false"):
		p.pos += 5
		return &jnode{kind: jBool, off: start}, nil
	case strings.HasPrefix(p.src[p.pos:], "null"):
		p.pos += 4
		return &jnode{kind: jNull, off: start}, nil
	}
	return nil, perr(p.pos, path, "unexpected %s: a value is a string in double quotes, a number, true, false, null, an array or an object", p.what())
}

func (p *pparser) enter(path string) *Error {
	p.depth++
	if p.depth > maxPatternDepth {
		return perr(p.pos, path, "the pattern nests more than %d levels deep: flatten it", maxPatternDepth)
	}
	return nil
}

func (p *pparser) object(path string) (*jnode, *Error) {
	n := &jnode{kind: jObject, off: p.pos}
	if err := p.enter(path); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return n, nil
	}
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, perr(p.pos, path, "expected a field name in double quotes, found %s", p.what())
		}
		koff := p.pos
		key, err := p.str(path)
		if err != nil {
			return nil, err
		}
		for _, f := range n.fields {
			if f.key == key {
				return nil, perr(koff, joinPath(path, key), "field %q appears twice in the same object: merge its conditions into one array (EventBridge would silently keep only the last)", key)
			}
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, perr(p.pos, joinPath(path, key), "expected ':' after the field name, found %s", p.what())
		}
		p.pos++
		v, err := p.value(joinPath(path, key))
		if err != nil {
			return nil, err
		}
		n.fields = append(n.fields, jfield{key: key, off: koff, val: v})
		p.ws()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			p.depth--
			return n, nil
		}
		return nil, perr(p.pos, path, "expected ',' or '}' after a field, found %s", p.what())
	}
}

func (p *pparser) array(path string) (*jnode, *Error) {
	n := &jnode{kind: jArray, off: p.pos}
	if err := p.enter(path); err != nil {
		return nil, err
	}
	p.pos++ // '['
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return n, nil
	}
	for {
		v, err := p.value(path)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
		p.ws()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			p.depth--
			return n, nil
		}
		return nil, perr(p.pos, path, "expected ',' or ']' in an array, found %s", p.what())
	}
}

func (p *pparser) number(path string) (*jnode, *Error) {
	start := p.pos
	end, ok := scanNumber(p.src, p.pos)
	// "01" scans as 0 then 1; name the whole number, not the stray digit.
	for end < len(p.src) && (p.src[end] >= '0' && p.src[end] <= '9' || p.src[end] == '.' || p.src[end] == '+') {
		end, ok = end+1, false
	}
	if !ok {
		return nil, perr(start, path, "invalid number %q: write it as JSON does, e.g. 100, -2.5 or 1e3 (no leading zeros, '+' or trailing '.')", p.src[start:max(end, start+1)])
	}
	p.pos = end
	return &jnode{kind: jNumber, off: start, s: p.src[start:end]}, nil
}

// scanNumber returns the end of the JSON number starting at i, and whether
// it is well formed. It is shared by the pattern parser and the document
// scanner so both agree on what a number is.
func scanNumber[T string | []byte](s T, i int) (int, bool) {
	n := len(s)
	if i < n && s[i] == '-' {
		i++
	}
	if i >= n {
		return i, false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return i, false
	}
	if i < n && s[i] == '.' {
		i++
		d := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return i, false
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return i, false
		}
	}
	return i, true
}

// str parses a JSON string at the cursor and returns it decoded.
func (p *pparser) str(path string) (string, *Error) {
	start := p.pos
	p.pos++ // opening quote
	var b []byte
	from := p.pos
	for {
		if p.pos >= len(p.src) {
			return "", perr(start, path, "a string is never closed: add the closing '\"'")
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			s := p.src[from:p.pos]
			if b != nil {
				s = string(append(b, s...))
			}
			p.pos++
			return s, nil
		case c < 0x20:
			return "", perr(p.pos, path, "a control character inside a string: escape it (e.g. \\n, \\t or \\u0001)")
		case c == '\\':
			b = append(b, p.src[from:p.pos]...)
			var ok bool
			var next int
			b, next, ok = unescape(b, p.src, p.pos)
			if !ok {
				return "", perr(p.pos, path, "invalid escape in a string: JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX")
			}
			p.pos = next
			from = p.pos
		default:
			p.pos++
		}
	}
}

// unescape decodes the escape at s[i] (a backslash) onto b, returning the
// index after it. Lone surrogates become U+FFFD, as encoding/json does.
func unescape[T string | []byte](b []byte, s T, i int) ([]byte, int, bool) {
	if i+1 >= len(s) {
		return b, i, false
	}
	switch s[i+1] {
	case '"', '\\', '/':
		return append(b, s[i+1]), i + 2, true
	case 'b':
		return append(b, '\b'), i + 2, true
	case 'f':
		return append(b, '\f'), i + 2, true
	case 'n':
		return append(b, '\n'), i + 2, true
	case 'r':
		return append(b, '\r'), i + 2, true
	case 't':
		return append(b, '\t'), i + 2, true
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			return b, i, false
		}
		next := i + 6
		if r >= 0xD800 && r < 0xDC00 {
			// A high surrogate wants a low one right after it.
			if next+1 < len(s) && s[next] == '\\' && s[next+1] == 'u' {
				if r2, ok := hex4(s, next+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					return utf8.AppendRune(b, ((r-0xD800)<<10|(r2-0xDC00))+0x10000), next + 6, true
				}
			}
			r = utf8.RuneError
		} else if r >= 0xDC00 && r < 0xE000 {
			r = utf8.RuneError
		}
		return utf8.AppendRune(b, r), next, true
	}
	return b, i, false
}

func hex4[T string | []byte](s T, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for j := i; j < i+4; j++ {
		c := s[j]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
