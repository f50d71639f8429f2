package transform

import "strconv"

// A path is the JSON path of a variable: "$" then steps.
type path struct {
	src   string // as written, for messages
	steps []step
	// wild is whether a step is a wildcard. Such a path can match many
	// values and always renders as an array of them (see the package
	// documentation).
	wild bool
}

type stepKind uint8

const (
	stepName  stepKind = iota // .name
	stepIndex                 // [n]
	stepWild                  // .* or [*]
)

type step struct {
	kind  stepKind
	name  string
	index int
}

// maxIndex keeps an index within int on every platform; no Kafka event
// has an array that long.
const maxIndex = 1<<31 - 1

// isNameByte reports whether c may appear in a field name. The Pipes
// documentation lists exactly: alphanumeric characters, dashes,
// underscores and forward slashes (plus dots, which separate names).
// Anything else (spaces, quotes, '@', non-ASCII letters) is refused
// rather than guessed at, because the service would not evaluate it.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '-' || c == '_' || c == '/'
}

// parsePath parses s, which starts with '$'; base is the offset of s in
// the template, for errors.
func parsePath(s string, base int) (path, *Error) {
	p := path{src: s}
	i := 1 // past $
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			if i < len(s) && s[i] == '.' {
				return p, errAt(base+i-1, "recursive descent '..' is not supported by Pipes: name each step ($.value.items[0].id)")
			}
			if i < len(s) && s[i] == '*' {
				p.steps = append(p.steps, step{kind: stepWild})
				p.wild = true
				i++
				continue
			}
			j := i
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == i {
				if i == len(s) {
					return p, errAt(base+i, "expected a field name after '.'")
				}
				return p, errAt(base+i, "expected a field name after '.', not "+quoteByte(s[i])+": names are letters, digits, '-', '_' and '/'")
			}
			p.steps = append(p.steps, step{kind: stepName, name: s[i:j]})
			i = j
		case '[':
			open := i
			i++
			if i < len(s) && s[i] == '*' {
				i++
				if i >= len(s) || s[i] != ']' {
					return p, errAt(base+i, "expected ']' after '[*'")
				}
				p.steps = append(p.steps, step{kind: stepWild})
				p.wild = true
				i++
				continue
			}
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if j == i {
				if i < len(s) && (s[i] == '\'' || s[i] == '"') {
					return p, errAt(base+i, "bracketed names are not supported by Pipes: use dot notation ($.value.name)")
				}
				if i < len(s) && s[i] == '-' {
					return p, errAt(base+i, "negative indexes are not supported: count from 0")
				}
				if i < len(s) && (s[i] == '?' || s[i] == '(') {
					return p, errAt(base+i, "filter and script expressions are not supported by Pipes: use an index or '*'")
				}
				return p, errAt(base+i, "expected an array index (0, 1, ...) or '*' after '['")
			}
			if j-i > 1 && s[i] == '0' {
				return p, errAt(base+i, "an index has no leading zeros")
			}
			n, err := strconv.Atoi(s[i:j])
			if err != nil || n > maxIndex {
				return p, errAt(base+i, "index too large")
			}
			if j >= len(s) || s[j] != ']' {
				if j < len(s) && (s[j] == ',' || s[j] == ':') {
					return p, errAt(base+j, "unions and slices are not supported by Pipes: use one index or '*'")
				}
				return p, errAt(base+open, "'[' not closed: write "+s[open:j]+"]")
			}
			p.steps = append(p.steps, step{kind: stepIndex, index: n})
			i = j + 1
		default:
			return p, errAt(base+i, "unexpected "+quoteByte(s[i])+" in JSON path: write steps as .name, [index] or .* after '$'")
		}
	}
	return p, nil
}

func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7F {
		return "byte 0x" + strconv.FormatUint(uint64(c), 16)
	}
	return "'" + string(c) + "'"
}

// span is one value found in the event: event[start:end].
type span struct{ start, end int }

// eval finds the value p names in the event (definite paths only).
func (d *doc) eval(p *path) (span, bool) {
	b := d.b
	i := skipWS(b, 0)
	for _, s := range p.steps {
		var ok bool
		switch s.kind {
		case stepName:
			i, ok = d.member(i, s.name)
		case stepIndex:
			i, ok = element(b, i, s.index)
		}
		if !ok {
			return span{}, false
		}
	}
	return span{i, skipValue(b, i)}, true
}

// evalAll appends to out every value the wildcard path p matches, in
// document order.
func (d *doc) evalAll(p *path, out []span) []span {
	return d.walk(skipWS(d.b, 0), p.steps, out)
}

func (d *doc) walk(i int, steps []step, out []span) []span {
	b := d.b
	if len(steps) == 0 {
		return append(out, span{i, skipValue(b, i)})
	}
	s := steps[0]
	switch s.kind {
	case stepName:
		if j, ok := d.member(i, s.name); ok {
			return d.walk(j, steps[1:], out)
		}
	case stepIndex:
		if j, ok := element(b, i, s.index); ok {
			return d.walk(j, steps[1:], out)
		}
	case stepWild:
		// '*' is every member value of an object, or every element of an
		// array; a scalar has none.
		switch b[i] {
		case '{':
			i = skipWS(b, i+1)
			for b[i] != '}' {
				i = skipWS(b, skipString(b, i))
				i = skipWS(b, i+1) // ':'
				out = d.walk(i, steps[1:], out)
				i = skipWS(b, skipValue(b, i))
				if b[i] == ',' {
					i = skipWS(b, i+1)
				}
			}
		case '[':
			i = skipWS(b, i+1)
			for b[i] != ']' {
				out = d.walk(i, steps[1:], out)
				i = skipWS(b, skipValue(b, i))
				if b[i] == ',' {
					i = skipWS(b, i+1)
				}
			}
		}
	}
	return out
}

// member finds a field by scanning the object at b[i], for objects too
// large to index; the last of repeated keys wins, as in doc.member.
func member(b []byte, i int, name string) (int, bool) {
	if b[i] != '{' {
		return 0, false
	}
	found, at := false, 0
	i = skipWS(b, i+1)
	for b[i] != '}' {
		ke := skipString(b, i)
		match := keyEquals(b[i+1:ke-1], name)
		i = skipWS(b, skipWS(b, ke)+1) // past ':'
		if match {
			found, at = true, i
		}
		i = skipWS(b, skipValue(b, i))
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return at, found
}

// element returns the start of element n of the array at b[i].
func element(b []byte, i int, n int) (int, bool) {
	if b[i] != '[' {
		return 0, false
	}
	i = skipWS(b, i+1)
	for k := 0; b[i] != ']'; k++ {
		if k == n {
			return i, true
		}
		i = skipWS(b, skipValue(b, i))
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return 0, false
}
