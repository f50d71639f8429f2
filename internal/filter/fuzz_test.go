package filter

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompileMatch feeds arbitrary pattern and document bytes. Nothing may
// panic; a match must be deterministic, the same through a Pattern, a Set
// and a Record's value; and for valid JSON it must agree with refMatch, an
// independent walk of the document built on encoding/json.
func FuzzCompileMatch(f *testing.F) {
	for _, tc := range docCases {
		for _, d := range append(append([]string{}, tc.match...), tc.nomatch...) {
			f.Add(tc.pattern, d)
		}
	}
	f.Add(`{"a":[{"wildcard":"*x*y"}]}`, `{"a":["xy","q"]}`)
	f.Add(`{"a":{"b":[{"exists":false}]}}`, `{"a":[{"b":1},{"c":2}]}`)
	f.Add(`{"a":[{"anything-but":{"equals-ignore-case":"K"}}]}`, `{"a":"\u212a"}`)
	f.Fuzz(func(t *testing.T, pattern, doc string) {
		p, err := Compile(pattern)
		if err != nil {
			var fe *Error
			if e, ok := err.(*Error); !ok || e.Offset < 0 || e.Offset > len(pattern) || e.Reason == "" {
				t.Fatalf("bad error %#v for %q", err, pattern)
			} else {
				fe = e
			}
			_ = fe.Error()
			return
		}
		got := p.Match(JSON(doc))
		if again := p.Match(JSON(doc)); again != got {
			t.Fatalf("nondeterministic: %v then %v", got, again)
		}
		s, err := CompileAll([]string{pattern, pattern})
		if err != nil {
			t.Fatalf("CompileAll of a valid pattern: %v", err)
		}
		if s.Match(JSON(doc)) != got {
			t.Fatalf("Set and Pattern disagree")
		}
		// The same document as a Record value, under "value".
		if vp, err := Compile(`{"value":` + pattern + `}`); err == nil && utf8.ValidString(doc) {
			if want := got; json.Valid([]byte(doc)) && vp.Match(&Record{Value: []byte(doc)}) != want {
				t.Fatalf("Record value and JSON document disagree")
			}
		}
		if utf8.ValidString(doc) && json.Valid([]byte(doc)) {
			if want := refMatch(p.root, []byte(doc)); got != want {
				t.Fatalf("pattern %s on %s: got %v, reference %v", pattern, doc, got, want)
			}
		}
	})
}

// refMatch evaluates a compiled pattern over the (path, value) pairs of a
// document collected with encoding/json's tokenizer.
func refMatch(root *conj, doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	vals := map[string][]val{}
	var walk func(path string) bool
	walk = func(path string) bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch x := tok.(type) {
		case json.Delim:
			switch x {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return false
					}
					if !walk(path + "\x00" + k.(string)) {
						return false
					}
				}
			case '[':
				for dec.More() {
					if !walk(path) {
						return false
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err == nil
		case string:
			vals[path] = append(vals[path], val{kind: vStr, b: []byte(x)})
		case json.Number:
			vals[path] = append(vals[path], val{kind: vNum, b: []byte(x)})
		case bool:
			k := vFalse
			if x {
				k = vTrue
			}
			vals[path] = append(vals[path], val{kind: k})
		case nil:
			vals[path] = append(vals[path], val{kind: vNull})
		}
		return true
	}
	if !walk("") {
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		return false
	}
	var eval func(c *conj) bool
	eval = func(c *conj) bool {
		for _, l := range c.leaves {
			vs := vals["\x00"+strings.Join(l.path, "\x00")]
			ok := l.orAbsent && len(vs) == 0
			for i := range vs {
				for j := range l.conds {
					if l.conds[j].match(&vs[i]) {
						ok = true
					}
				}
			}
			if !ok {
				return false
			}
		}
		for _, alts := range c.ors {
			any := false
			for _, a := range alts {
				any = any || eval(a)
			}
			if !any {
				return false
			}
		}
		return true
	}
	return eval(root)
}
