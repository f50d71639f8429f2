package transform

import (
	"encoding/base64"
	"github.com/sluice-dev/sluice/internal/jsonstr"
	"unicode/utf8"
)

// maxDepth bounds nesting in documents this package validates, as
// encoding/json does, so a hostile record cannot exhaust the stack.
const maxDepth = 10000

// validator checks that a document is exactly one JSON value (RFC 8259)
// in valid UTF-8. Apply runs it once per event so every later scan can
// trust the bytes and skip without checks, and so every byte it copies
// into a JSON output is already valid JSON.
type validator struct {
	b      []byte
	i      int
	depth  int
	reason string
	// top receives the index of the document's fields if it is an
	// object (and indexTop is set), so Apply reads the record once, not
	// twice.
	indexTop bool
	top      objIndex
}

// validate returns the offset of the first bad byte and why, or -1.
func validate(b []byte) (int, string) {
	v := validator{b: b}
	return v.run()
}

// validateIndex is validate that also indexes a top-level object.
func validateIndex(b []byte) (int, string, objIndex) {
	v := validator{b: b, indexTop: true}
	v.top.start = -1
	if i := skipWS(b, 0); i < len(b) && b[i] == '{' {
		v.top.start = i
	}
	off, reason := v.run()
	return off, reason, v.top
}

func (v *validator) run() (int, string) {
	if !v.value() {
		return v.i, v.reason
	}
	v.ws()
	if v.i < len(v.b) {
		return v.i, "text after the JSON value"
	}
	return -1, ""
}

func (v *validator) fail(reason string) bool {
	v.reason = reason
	return false
}

func (v *validator) ws() {
	for v.i < len(v.b) && isSpace(v.b[v.i]) {
		v.i++
	}
}

func (v *validator) value() bool {
	v.ws()
	if v.i >= len(v.b) {
		return v.fail("unexpected end of JSON")
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object()
	case c == '[':
		return v.array()
	case c == '"':
		end, reason := scanString(v.b, v.i)
		if reason != "" {
			v.i = end
			return v.fail(reason)
		}
		v.i = end
		return true
	case c == '-' || isDigit(c):
		end, ok := scanNumber(v.b, v.i)
		if !ok {
			v.i = end
			return v.fail("invalid number")
		}
		v.i = end
		return true
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return v.fail("expected a JSON value")
}

func (v *validator) literal(s string) bool {
	if len(v.b)-v.i < len(s) || string(v.b[v.i:v.i+len(s)]) != s {
		return v.fail("invalid literal")
	}
	v.i += len(s)
	return true
}

func (v *validator) object() bool {
	if v.depth++; v.depth > maxDepth {
		return v.fail("nested too deeply")
	}
	v.i++ // {
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		v.depth--
		return true
	}
	for {
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != '"' {
			return v.fail("expected a string key")
		}
		ks := v.i
		end, reason := scanString(v.b, v.i)
		if reason != "" {
			v.i = end
			return v.fail(reason)
		}
		v.i = end
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return v.fail("expected ':'")
		}
		v.i++
		v.ws()
		vs := v.i
		if !v.value() {
			return false
		}
		if x := &v.top; v.indexTop && v.depth == 1 && x.start >= 0 {
			if x.n == maxIndexed {
				x.start = -1 // too many fields: scan instead
			} else {
				x.f[x.n] = field{span{ks + 1, end - 1}, span{vs, v.i}}
				x.n++
			}
		}
		v.ws()
		if v.i >= len(v.b) {
			return v.fail("unexpected end of JSON")
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case '}':
			v.i++
			v.depth--
			return true
		default:
			return v.fail("expected ',' or '}'")
		}
	}
}

func (v *validator) array() bool {
	if v.depth++; v.depth > maxDepth {
		return v.fail("nested too deeply")
	}
	v.i++ // [
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		v.depth--
		return true
	}
	for {
		if !v.value() {
			return false
		}
		v.ws()
		if v.i >= len(v.b) {
			return v.fail("unexpected end of JSON")
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case ']':
			v.i++
			v.depth--
			return true
		default:
			return v.fail("expected ',' or ']'")
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber checks the JSON number grammar from b[i] and returns the end
// (or where it went wrong).
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// scanEscape checks the escape sequence whose backslash is at b[i] and
// returns its end, or "" and the offset on error.
func scanEscape(b []byte, i int) (int, bool) {
	if i+1 >= len(b) {
		return i, false
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, true
	case 'u':
		if i+6 > len(b) {
			return i, false
		}
		for _, c := range b[i+2 : i+6] {
			if !isHex(c) {
				return i, false
			}
		}
		return i + 6, true
	}
	return i, false
}

// scanString checks the string whose opening quote is at b[i] and returns
// the index after its closing quote, or the bad offset and why.
func scanString(b []byte, i int) (int, string) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, ""
		case c == '\\':
			end, ok := scanEscape(b, i)
			if !ok {
				return i, "invalid escape in string"
			}
			i = end
		case c < 0x20:
			return i, "control character in string"
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i, "invalid UTF-8"
			}
			i += size
		}
	}
	return i, "string not closed"
}

// The functions below read JSON that validate has accepted, so they do
// not check it again.

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the end of the value starting at b[i]. It counts
// brackets instead of recursing: the document is known to be balanced.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// appendJSON copies the valid JSON value raw to dst without insignificant
// whitespace. With esc it writes it as the content of a JSON string
// instead (quotes and backslashes escaped), for a value that lands
// inside a dynamic string.
func appendJSON(dst, raw []byte, esc bool) []byte {
	start := 0
	flush := func(i int) { dst = append(dst, raw[start:i]...) }
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case isSpace(c):
			flush(i)
			start = i + 1
		case c == '"':
			end := skipString(raw, i)
			if !esc {
				i = end - 1
				continue
			}
			flush(i)
			for j := i; j < end; j++ {
				if raw[j] == '"' || raw[j] == '\\' {
					dst = append(dst, '\\')
				}
				dst = append(dst, raw[j])
			}
			start = end
			i = end - 1
		}
	}
	flush(len(raw))
	return dst
}

const hexDigits = "0123456789abcdef"

// appendStringContent writes s escaped as JSON string content, without
// quotes, escaping as encoding/json does (minus HTML escaping) and
// replacing invalid UTF-8 with U+FFFD.
func appendStringContent(dst []byte, s string) []byte { return jsonstr.AppendContent(dst, s) }

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendStringContent(dst, s)
	return append(dst, '"')
}

// appendUnescaped decodes the content of a valid JSON string (without its
// quotes) to the text it stands for. A lone surrogate escape becomes
// U+FFFD, as encoding/json decodes it.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i:]))
			i += 4
			if r >= 0xD800 && r < 0xDC00 {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := rune(hex4(s[i+2:])); r2 >= 0xDC00 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						i += 6
						dst = utf8.AppendRune(dst, r)
						continue
					}
				}
				r = utf8.RuneError
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, e)
		}
	}
	return dst
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b[:4] {
		n <<= 4
		switch {
		case c >= 'a':
			n |= int(c-'a') + 10
		case c >= 'A':
			n |= int(c-'A') + 10
		default:
			n |= int(c - '0')
		}
	}
	return n
}

// keyEquals reports whether the raw content of a JSON string (without
// quotes) decodes to name. Keys rarely hold escapes, so the common case
// compares bytes without decoding.
func keyEquals(raw []byte, name string) bool {
	for _, c := range raw {
		if c == '\\' {
			var buf [64]byte
			return string(appendUnescaped(buf[:0], raw)) == name
		}
	}
	return string(raw) == name
}

func appendBase64(dst, b []byte) []byte {
	return base64.StdEncoding.AppendEncode(dst, b)
}
