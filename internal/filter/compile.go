package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// MaxPatterns is how many patterns a Set holds: the default Lambda quota
	// and the Pipes limit for FilterCriteria.Filters.
	MaxPatterns = 5
	// MaxPatternLen is the longest pattern, in characters (Unicode code
	// points), that Lambda and Pipes accept.
	MaxPatternLen = 4096
)

// Error is an invalid pattern: where the problem is and how to fix it.
type Error struct {
	Index  int    // which pattern of CompileAll (0-based); -1 from Compile
	Offset int    // byte offset in the pattern where the problem starts
	Path   string // dotted field path, e.g. "value.price"; "" at the top
	Reason string // what is wrong, phrased as the fix
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("filter ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "pattern %d", e.Index)
	} else {
		b.WriteString("pattern")
	}
	fmt.Fprintf(&b, ", byte %d", e.Offset)
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Pattern is one compiled pattern.
type Pattern struct {
	src  string
	root *conj
	set  *Set // a Set of just this pattern, so Match shares the Set's code
}

// String returns the pattern as it was written.
func (p *Pattern) String() string { return p.src }

// Match reports whether doc matches the pattern.
func (p *Pattern) Match(doc Doc) bool { return p.set.Match(doc) }

// conj is an AND of leaves and of ORs of further conjunctions: the shape a
// pattern object flattens into once nested objects become dotted paths.
type conj struct {
	leaves []*leaf
	ors    [][]*conj
}

// leaf is one field of a pattern with its OR-ed conditions.
type leaf struct {
	path     []string
	conds    []cond
	orAbsent bool // {"exists": false} is one of the conditions
	id       int  // index of this leaf's bits in a Set; assigned by the Set
}

type condKind uint8

const (
	cExactStr condKind = iota + 1
	cExactNum          // by string form, as documented
	cTrue
	cFalse
	cNull
	cExists // {"exists": true}: any leaf value
	cIgnoreCase
	cPrefix
	cPrefixFold
	cSuffix
	cSuffixFold
	cWildcard
	cNumeric
	cButStr  // anything-but one of strs
	cButNum  // anything-but one of nums (string form)
	cButFold // anything-but equals-ignore-case one of strs
	cButPrefix
	cButSuffix
	cButWildcard
)

type cond struct {
	kind condKind
	s    string   // operand of exact, prefix, suffix, ignore-case
	strs []string // anything-but lists
	wc   []string // wildcard: the literal pieces between stars
	wcLo bool     // wildcard starts with a star
	wcHi bool     // wildcard ends with a star
	// numeric bounds
	lo, hi       float64
	hasLo, hasHi bool
	loInc, hiInc bool
	// byte forms of the operands, made once so matching converts nothing
	b   []byte
	bs  [][]byte
	wcb [][]byte
}

func (c *cond) prep() {
	c.b = []byte(c.s)
	for _, s := range c.strs {
		c.bs = append(c.bs, []byte(s))
	}
	for _, s := range c.wc {
		c.wcb = append(c.wcb, []byte(s))
	}
}

// Compile parses one pattern.
func Compile(pattern string) (*Pattern, error) {
	p, err := compile(pattern)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func compile(src string) (*Pattern, *Error) {
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return nil, perr(i, "", "the pattern is not valid UTF-8: fix the encoding of the text at this byte")
	}
	if n := utf8.RuneCountInString(src); n > MaxPatternLen {
		return nil, perr(0, "", "the pattern is %d characters long; the limit is %d: shorten it, or split it into several patterns (they are ORed)", n, MaxPatternLen)
	}
	tree, err := parsePattern(src)
	if err != nil {
		return nil, err
	}
	root, err := compileObject(tree, nil, "")
	if err != nil {
		return nil, err
	}
	p := &Pattern{src: src, root: root}
	p.set = newSet([]*Pattern{p})
	return p, nil
}

func compileObject(n *jnode, path []string, pstr string) (*conj, *Error) {
	if len(n.fields) == 0 {
		if pstr == "" {
			return nil, perr(n.off, pstr, "the pattern has no fields, so it would match every record: name at least one field, e.g. {\"value\": {\"status\": [\"active\"]}}, or configure no filter")
		}
		return nil, perr(n.off, pstr, "an empty object has nothing to match: name a field inside it or remove it")
	}
	c := &conj{}
	for _, f := range n.fields {
		if f.key == "$or" {
			alts, err := compileOr(f, path, pstr)
			if err != nil {
				return nil, err
			}
			c.ors = append(c.ors, alts)
			continue
		}
		fpath := append(path[:len(path):len(path)], f.key)
		fstr := joinPath(pstr, f.key)
		switch f.val.kind {
		case jObject:
			sub, err := compileObject(f.val, fpath, fstr)
			if err != nil {
				return nil, err
			}
			c.leaves = append(c.leaves, sub.leaves...)
			c.ors = append(c.ors, sub.ors...)
		case jArray:
			l, err := compileLeaf(f.val, fpath, fstr)
			if err != nil {
				return nil, err
			}
			c.leaves = append(c.leaves, l)
		default:
			if isOperator(f.key) {
				return nil, perr(f.off, fstr, "%q is an operator, and operators go inside the condition array of a field: write \"field\": [{%q: %s}]", f.key, f.key, valueText(f.val))
			}
			return nil, perr(f.val.off, fstr, "the value of a field must be an array of conditions or a nested object: write [%s]", valueText(f.val))
		}
	}
	return c, nil
}

func compileOr(f jfield, path []string, pstr string) ([]*conj, *Error) {
	at := joinPath(pstr, "$or")
	if f.val.kind != jArray {
		return nil, perr(f.val.off, at, "\"$or\" takes an array of at least two objects: \"$or\": [{...}, {...}]")
	}
	if len(f.val.elems) < 2 {
		return nil, perr(f.val.off, at, "\"$or\" needs at least two objects to choose between; with one, write its fields directly in the enclosing object")
	}
	alts := make([]*conj, 0, len(f.val.elems))
	for i, e := range f.val.elems {
		ep := fmt.Sprintf("%s[%d]", at, i)
		if e.kind != jObject {
			return nil, perr(e.off, ep, "each element of \"$or\" must be an object of fields, found %s", e.kind)
		}
		for _, g := range e.fields {
			if isOperator(g.key) {
				return nil, perr(g.off, ep, "%q is an operator, not a field: inside \"$or\" write objects of fields, e.g. {\"price\": [{%q: ...}]}", g.key, g.key)
			}
		}
		// The alternatives keep the enclosing path: "$or" is not a field.
		sub, err := compileObject(e, path, pstr)
		if err != nil {
			if err.Path == pstr {
				err.Path = ep
			}
			return nil, err
		}
		alts = append(alts, sub)
	}
	return alts, nil
}

var operators = []string{"anything-but", "equals-ignore-case", "exists", "numeric", "prefix", "suffix", "wildcard"}

func isOperator(k string) bool {
	for _, o := range operators {
		if k == o {
			return true
		}
	}
	return false
}

// valueText renders a small value back for an error message.
func valueText(n *jnode) string {
	switch n.kind {
	case jString:
		return strconv.Quote(n.s)
	case jNumber:
		return n.s
	case jBool:
		return strconv.FormatBool(n.b)
	case jNull:
		return "null"
	case jArray:
		return "[...]"
	}
	return "{...}"
}

func compileLeaf(arr *jnode, path []string, pstr string) (*leaf, *Error) {
	if len(arr.elems) == 0 {
		return nil, perr(arr.off, pstr, "an empty condition list matches nothing: add a condition, e.g. [null] to match a null value or [{\"exists\": false}] for a missing field")
	}
	l := &leaf{path: path}
	for _, e := range arr.elems {
		switch e.kind {
		case jString:
			l.conds = append(l.conds, cond{kind: cExactStr, s: e.s})
		case jNumber:
			l.conds = append(l.conds, cond{kind: cExactNum, s: e.s})
		case jBool:
			k := cFalse
			if e.b {
				k = cTrue
			}
			l.conds = append(l.conds, cond{kind: k})
		case jNull:
			l.conds = append(l.conds, cond{kind: cNull})
		case jArray:
			return nil, perr(e.off, pstr, "a condition cannot be an array: list the values directly, e.g. [\"a\", \"b\"]")
		case jObject:
			c, absent, err := compileOperator(e, pstr)
			if err != nil {
				return nil, err
			}
			if absent {
				l.orAbsent = true
			} else {
				l.conds = append(l.conds, c)
			}
		}
	}
	for i := range l.conds {
		l.conds[i].prep()
	}
	return l, nil
}

// compileOperator compiles {"op": operand}. absent is true for
// {"exists": false}, which is a property of the leaf, not a test of a value.
func compileOperator(o *jnode, pstr string) (c cond, absent bool, err *Error) {
	if len(o.fields) != 1 {
		return c, false, perr(o.off, pstr, "a condition object holds exactly one operator (%s); to combine them, list several conditions in the array", strings.Join(operators, ", "))
	}
	f := o.fields[0]
	v := f.val
	switch f.key {
	case "exists":
		if v.kind != jBool {
			return c, false, perr(v.off, pstr, "\"exists\" takes true or false, found %s", v.kind)
		}
		return cond{kind: cExists}, !v.b, nil
	case "equals-ignore-case":
		if v.kind != jString {
			return c, false, perr(v.off, pstr, "\"equals-ignore-case\" takes a string, found %s", v.kind)
		}
		return cond{kind: cIgnoreCase, s: v.s}, false, nil
	case "prefix", "suffix":
		plain, fold := cPrefix, cPrefixFold
		if f.key == "suffix" {
			plain, fold = cSuffix, cSuffixFold
		}
		switch v.kind {
		case jString:
			return cond{kind: plain, s: v.s}, false, nil
		case jObject:
			if len(v.fields) == 1 && v.fields[0].key == "equals-ignore-case" {
				if w := v.fields[0].val; w.kind == jString {
					return cond{kind: fold, s: w.s}, false, nil
				} else {
					return c, false, perr(w.off, pstr, "%q with \"equals-ignore-case\" takes a string, found %s", f.key, w.kind)
				}
			}
		}
		return c, false, perr(v.off, pstr, "%q takes a string, or {\"equals-ignore-case\": \"...\"} to ignore case", f.key)
	case "wildcard":
		if v.kind != jString {
			return c, false, perr(v.off, pstr, "\"wildcard\" takes a string such as \"dir/*.png\", found %s", v.kind)
		}
		return compileWildcard(v, pstr, cWildcard)
	case "numeric":
		return compileNumeric(v, pstr)
	case "anything-but":
		return compileAnythingBut(v, pstr)
	}
	return c, false, perr(f.off, pstr, "unknown operator %q: use one of %s", f.key, strings.Join(operators, ", "))
}

func compileWildcard(v *jnode, pstr string, kind condKind) (cond, bool, *Error) {
	c := cond{kind: kind}
	s := v.s
	var piece []byte
	star := false // the previous character was an unescaped star
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*':
			if star {
				return c, false, perr(v.off, pstr, "consecutive '*' characters in a wildcard are not allowed: use a single '*' (it already matches any run of characters)")
			}
			if i == 0 {
				c.wcLo = true
			} else {
				c.wc = append(c.wc, string(piece))
			}
			piece = piece[:0]
			star = true
			continue
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '\\') {
				piece = append(piece, s[i+1])
				i++
				star = false
				continue
			}
			return c, false, perr(v.off, pstr, "a backslash in a wildcard escapes only '*' or another backslash: write \\\\* for a literal star and \\\\\\\\ for a backslash")
		}
		piece = append(piece, s[i])
		star = false
	}
	if star {
		c.wcHi = true
	} else {
		c.wc = append(c.wc, string(piece))
	}
	return c, false, nil
}

func compileNumeric(v *jnode, pstr string) (cond, bool, *Error) {
	c := cond{kind: cNumeric}
	const usage = "\"numeric\" takes an operator and a number, or two of each for a range with the lower bound first: [\"=\", 100], [\">\", 0], [\">\", 0, \"<=\", 5]"
	if v.kind != jArray || (len(v.elems) != 2 && len(v.elems) != 4) {
		return c, false, perr(v.off, pstr, "%s", usage)
	}
	for i := 0; i < len(v.elems); i += 2 {
		op, num := v.elems[i], v.elems[i+1]
		if op.kind != jString {
			return c, false, perr(op.off, pstr, "expected a comparison operator (\"<\", \"<=\", \"=\", \">=\", \">\") here, found %s: %s", op.kind, usage)
		}
		if num.kind != jNumber {
			return c, false, perr(num.off, pstr, "%q needs a JSON number after it, found %s (write 100, not \"100\")", op.s, num.kind)
		}
		f, perr2 := strconv.ParseFloat(num.s, 64)
		if perr2 != nil || math.IsInf(f, 0) {
			return c, false, perr(num.off, pstr, "the number %s is out of range: use a value a float64 can hold", num.s)
		}
		switch op.s {
		case "=":
			if len(v.elems) != 2 {
				return c, false, perr(op.off, pstr, "\"=\" stands alone: write [\"=\", %s]; for a range use \">\"/\">=\" then \"<\"/\"<=\"", num.s)
			}
			c.lo, c.hi, c.hasLo, c.hasHi, c.loInc, c.hiInc = f, f, true, true, true, true
		case ">", ">=":
			if i != 0 {
				return c, false, perr(op.off, pstr, "the lower bound (%q) comes first in a range: write [%q, %s, \"<\"...] with the upper bound second", op.s, op.s, num.s)
			}
			c.lo, c.hasLo, c.loInc = f, true, op.s == ">="
		case "<", "<=":
			if i == 0 && len(v.elems) == 4 {
				return c, false, perr(op.off, pstr, "the lower bound comes first in a range: write [\">\", low, %q, %s]", op.s, num.s)
			}
			c.hi, c.hasHi, c.hiInc = f, true, op.s == "<="
		default:
			return c, false, perr(op.off, pstr, "unknown comparison %q: use one of \"<\", \"<=\", \"=\", \">=\", \">\"", op.s)
		}
	}
	if len(v.elems) == 4 && (c.lo > c.hi || (c.lo == c.hi && !(c.loInc && c.hiInc))) {
		return c, false, perr(v.off, pstr, "the range is empty (its lower bound is not below its upper bound): swap or correct the numbers")
	}
	return c, false, nil
}

func compileAnythingBut(v *jnode, pstr string) (cond, bool, *Error) {
	const usage = "\"anything-but\" takes a string, a number, a list of strings or of numbers, or {\"prefix\"|\"suffix\"|\"wildcard\": \"...\"} or {\"equals-ignore-case\": \"...\" or [...]}"
	switch v.kind {
	case jString:
		return cond{kind: cButStr, strs: []string{v.s}}, false, nil
	case jNumber:
		return cond{kind: cButNum, strs: []string{v.s}}, false, nil
	case jArray:
		if len(v.elems) == 0 {
			return cond{}, false, perr(v.off, pstr, "\"anything-but\" with an empty list excludes nothing: list the values to exclude, or use {\"exists\": true}")
		}
		kind := v.elems[0].kind
		c := cond{kind: cButStr}
		if kind == jNumber {
			c.kind = cButNum
		}
		for _, e := range v.elems {
			if e.kind != jString && e.kind != jNumber {
				return cond{}, false, perr(e.off, pstr, "an \"anything-but\" list holds strings or numbers, found %s", e.kind)
			}
			if e.kind != kind {
				return cond{}, false, perr(e.off, pstr, "an \"anything-but\" list must be all strings or all numbers: split it into two conditions")
			}
			c.strs = append(c.strs, e.s)
		}
		return c, false, nil
	case jObject:
		if len(v.fields) != 1 {
			break
		}
		f := v.fields[0]
		w := f.val
		switch f.key {
		case "prefix", "suffix", "wildcard":
			if w.kind != jString {
				return cond{}, false, perr(w.off, pstr, "\"anything-but\" with %q takes a string, found %s", f.key, w.kind)
			}
			switch f.key {
			case "prefix":
				return cond{kind: cButPrefix, s: w.s}, false, nil
			case "suffix":
				return cond{kind: cButSuffix, s: w.s}, false, nil
			}
			return compileWildcard(w, pstr, cButWildcard)
		case "equals-ignore-case":
			c := cond{kind: cButFold}
			switch w.kind {
			case jString:
				c.strs = []string{w.s}
				return c, false, nil
			case jArray:
				if len(w.elems) > 0 {
					for _, e := range w.elems {
						if e.kind != jString {
							return cond{}, false, perr(e.off, pstr, "\"anything-but\" with \"equals-ignore-case\" lists strings only, found %s", e.kind)
						}
						c.strs = append(c.strs, e.s)
					}
					return c, false, nil
				}
			}
			return cond{}, false, perr(w.off, pstr, "\"anything-but\" with \"equals-ignore-case\" takes a string or a non-empty list of strings")
		}
		return cond{}, false, perr(f.off, pstr, "\"anything-but\" cannot wrap %q: %s", f.key, usage)
	}
	return cond{}, false, perr(v.off, pstr, "%s", usage)
}
