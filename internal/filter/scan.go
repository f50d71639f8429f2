package filter

import (
	"encoding/binary"
	"unicode/utf8"
)

// Doc is a document to match: JSON for a JSON document, *Record for a Kafka
// record. The method is unexported so the two forms stay the only ones.
type Doc interface {
	scan(s *Set, st *state) bool
}

// JSON is a JSON document. Invalid JSON (including invalid UTF-8 in a
// string) matches no pattern.
type JSON []byte

func (d JSON) scan(s *Set, st *state) bool {
	sc := scanner{data: d, st: st}
	return sc.document(s.root)
}

// maxDocDepth is encoding/json's nesting limit; deeper documents are
// refused rather than recursed into.
const maxDocDepth = 10000

// scanner walks one JSON text once. Under a trie node it decodes what a
// pattern needs; elsewhere it only validates, so that a document is either
// wholly valid JSON or not JSON at all (which decides how a Record's value
// is read).
type scanner struct {
	data  []byte
	pos   int
	depth int
	st    *state
}

// document scans the whole text as one value under n.
func (sc *scanner) document(n *tnode) bool {
	sc.ws()
	if !sc.value(n) {
		return false
	}
	sc.ws()
	return sc.pos == len(sc.data)
}

func (sc *scanner) ws() {
	// Compact JSON has no whitespace: one test, and the call inlines.
	if sc.pos < len(sc.data) && sc.data[sc.pos] > ' ' {
		return
	}
	sc.wsSlow()
}

func (sc *scanner) wsSlow() {
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// value scans one value; n is the trie node for its path, nil when no
// pattern looks here.
func (sc *scanner) value(n *tnode) bool {
	if sc.pos >= len(sc.data) {
		return false
	}
	switch c := sc.data[sc.pos]; c {
	case '{':
		return sc.object(n)
	case '[':
		return sc.array(n)
	case '"':
		b, ok := sc.str(n != nil && len(n.leaves) > 0)
		if ok && n != nil && len(n.leaves) > 0 {
			v := val{kind: vStr, b: b}
			sc.st.visit(n, &v)
		}
		return ok
	case 't':
		return sc.literal("true", n, vTrue)
	case 'f':
		return sc.literal("false", n, vFalse)
	case 'n':
		return sc.literal("null", n, vNull)
	default:
		if c != '-' && (c < '0' || c > '9') {
			return false
		}
		start := sc.pos
		end, ok := scanNumber(sc.data, sc.pos)
		if !ok {
			return false
		}
		sc.pos = end
		if n != nil && len(n.leaves) > 0 {
			v := val{kind: vNum, b: sc.data[start:end]}
			sc.st.visit(n, &v)
		}
		return true
	}
}

func (sc *scanner) literal(lit string, n *tnode, k vkind) bool {
	if len(sc.data)-sc.pos < len(lit) || string(sc.data[sc.pos:sc.pos+len(lit)]) != lit {
		return false
	}
	sc.pos += len(lit)
	if n != nil && len(n.leaves) > 0 {
		v := val{kind: k}
		sc.st.visit(n, &v)
	}
	return true
}

func (sc *scanner) object(n *tnode) bool {
	if sc.depth++; sc.depth > maxDocDepth {
		return false
	}
	sc.pos++ // '{'
	sc.ws()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '}' {
		sc.pos++
		sc.depth--
		return true
	}
	// Keys need decoding only when a child could be named by them.
	want := n != nil && len(n.children) > 0
	for {
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != '"' {
			return false
		}
		key, ok := sc.str(want)
		if !ok {
			return false
		}
		var child *tnode
		if want {
			child = n.child(key)
		}
		sc.ws()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != ':' {
			return false
		}
		sc.pos++
		sc.ws()
		if !sc.value(child) {
			return false
		}
		sc.ws()
		if sc.pos >= len(sc.data) {
			return false
		}
		switch sc.data[sc.pos] {
		case ',':
			sc.pos++
			sc.ws()
		case '}':
			sc.pos++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

// array scans the elements with the array's own node: arrays are crushed,
// so each element is a value at the same path.
func (sc *scanner) array(n *tnode) bool {
	if sc.depth++; sc.depth > maxDocDepth {
		return false
	}
	sc.pos++ // '['
	sc.ws()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == ']' {
		sc.pos++
		sc.depth--
		return true
	}
	for {
		if !sc.value(n) {
			return false
		}
		sc.ws()
		if sc.pos >= len(sc.data) {
			return false
		}
		switch sc.data[sc.pos] {
		case ',':
			sc.pos++
			sc.ws()
		case ']':
			sc.pos++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

// str scans a string at the cursor. With decode it returns the unescaped
// bytes: a slice of the document when there is no escape, else of scratch.
// It checks UTF-8 so a document with invalid bytes is not JSON.
func (sc *scanner) str(decode bool) ([]byte, bool) {
	d := sc.data
	i := sc.pos + 1
	start := i
	// Fast path: plain ASCII up to the closing quote, eight bytes at a time
	// while none of them is special (see special8).
	for i+8 <= len(d) && special8(binary.LittleEndian.Uint64(d[i:])) == 0 {
		i += 8
	}
	for i < len(d) {
		c := d[i]
		if c == '"' {
			sc.pos = i + 1
			return d[start:i], true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	var out []byte
	escaped := false
	from := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			sc.pos = i + 1
			if !escaped {
				return d[start:i], true
			}
			if !decode {
				return nil, true
			}
			out = append(out, d[from:i]...)
			sc.st.scratch = out // keep the grown buffer for the next string
			return out, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if !escaped {
				escaped = true
				out = sc.st.scratch[:0]
			}
			if decode {
				out = append(out, d[from:i]...)
			}
			var next int
			var ok bool
			out, next, ok = unescape(out, d, i)
			if !ok {
				return nil, false
			}
			if !decode {
				sc.st.scratch = out[:0]
				out = out[:0]
			}
			i, from = next, next
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false
			}
			i += n
		default:
			i++
		}
	}
	return nil, false
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special8 is non-zero when one of the eight bytes of x (read little
// endian) ends or complicates a string: '"', '\\', a control character or
// a non-ASCII byte. The classic SWAR zero-byte test: a byte b of y is zero
// exactly when (y-lsb) & ^y & msb has its top bit set.
func special8(x uint64) uint64 {
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((q-lsb) & ^q | (b-lsb) & ^b | (x-lsb*0x20) & ^x | x) & msb
}
