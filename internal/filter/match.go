package filter

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf8"
)

type vkind uint8

const (
	vStr vkind = iota + 1
	vNum
	vTrue
	vFalse
	vNull
)

// val is one leaf value of a document. b is the unescaped string, or the
// number exactly as written; it points into the document or into scratch
// and is valid only during the visit.
type val struct {
	kind vkind
	b    []byte
	f    float64
	fset bool // f is known (parsed, or given by a Record field)
}

func (v *val) float() float64 {
	if !v.fset {
		// The scanner has checked the JSON number grammar, and every such
		// number parses; a huge one becomes ±Inf, which still compares.
		v.f, _ = strconv.ParseFloat(string(v.b), 64)
		v.fset = true
	}
	return v.f
}

func (c *cond) match(v *val) bool {
	switch c.kind {
	case cExists:
		return true
	case cExactStr:
		return v.kind == vStr && string(v.b) == c.s
	case cExactNum:
		return v.kind == vNum && string(v.b) == c.s
	case cTrue:
		return v.kind == vTrue
	case cFalse:
		return v.kind == vFalse
	case cNull:
		return v.kind == vNull
	case cNumeric:
		if v.kind != vNum {
			return false
		}
		f := v.float()
		if c.hasLo && (f < c.lo || (f == c.lo && !c.loInc)) {
			return false
		}
		if c.hasHi && (f > c.hi || (f == c.hi && !c.hiInc)) {
			return false
		}
		return true
	case cButNum:
		if v.kind != vNum {
			return true
		}
		for _, s := range c.strs {
			if string(v.b) == s {
				return false
			}
		}
		return true
	case cButStr:
		if v.kind != vStr {
			return true
		}
		for _, s := range c.strs {
			if string(v.b) == s {
				return false
			}
		}
		return true
	}
	// The rest match strings only.
	if v.kind != vStr {
		return false
	}
	switch c.kind {
	case cIgnoreCase:
		return bytes.EqualFold(v.b, c.b)
	case cPrefix:
		return len(v.b) >= len(c.s) && string(v.b[:len(c.s)]) == c.s
	case cSuffix:
		return len(v.b) >= len(c.s) && string(v.b[len(v.b)-len(c.s):]) == c.s
	case cPrefixFold:
		return hasPrefixFold(v.b, c.s)
	case cSuffixFold:
		return hasSuffixFold(v.b, c.s)
	case cWildcard:
		return wildMatch(v.b, c)
	case cButFold:
		for _, s := range c.bs {
			if bytes.EqualFold(v.b, s) {
				return false
			}
		}
		return true
	case cButPrefix:
		return !(len(v.b) >= len(c.s) && string(v.b[:len(c.s)]) == c.s)
	case cButSuffix:
		return !(len(v.b) >= len(c.s) && string(v.b[len(v.b)-len(c.s):]) == c.s)
	case cButWildcard:
		return !wildMatch(v.b, c)
	}
	return false
}

// foldEq reports whether two runes are equal under Unicode simple case
// folding, the relation bytes.EqualFold uses, so the ignore-case forms of
// prefix and suffix agree with equals-ignore-case.
func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// hasPrefixFold compares rune by rune: the folded forms of a character can
// differ in byte length (K and the Kelvin sign), so byte slicing would not do.
func hasPrefixFold(v []byte, p string) bool {
	for _, pr := range p {
		if len(v) == 0 {
			return false
		}
		vr, n := utf8.DecodeRune(v)
		if !foldEq(vr, pr) {
			return false
		}
		v = v[n:]
	}
	return true
}

func hasSuffixFold(v []byte, p string) bool {
	for len(p) > 0 {
		if len(v) == 0 {
			return false
		}
		pr, pn := utf8.DecodeLastRuneInString(p)
		vr, vn := utf8.DecodeLastRune(v)
		if !foldEq(vr, pr) {
			return false
		}
		p, v = p[:len(p)-pn], v[:len(v)-vn]
	}
	return true
}

// wildMatch matches v against the pieces between the wildcard's stars. With
// only '*' (no '?'), taking each middle piece at its leftmost occurrence is
// optimal, so this is linear in practice and never backtracks.
func wildMatch(v []byte, c *cond) bool {
	lo, hi := 0, len(c.wcb) // the pieces not yet placed
	if !c.wcLo {
		p := c.wcb[0]
		if !bytes.HasPrefix(v, p) {
			return false
		}
		v, lo = v[len(p):], 1
		if lo == hi && !c.wcHi {
			return len(v) == 0 // no star at all
		}
	}
	if !c.wcHi {
		p := c.wcb[hi-1]
		if !bytes.HasSuffix(v, p) {
			return false
		}
		v, hi = v[:len(v)-len(p)], hi-1
	}
	for _, p := range c.wcb[lo:hi] {
		i := bytes.Index(v, p)
		if i < 0 {
			return false
		}
		v = v[i+len(p):]
	}
	return true
}
