package filter

import "fmt"

// Set is up to MaxPatterns patterns, ORed: a document matches the Set when
// it matches any of them. The nil *Set matches every document, the way an
// event source with no FilterCriteria delivers every record.
type Set struct {
	patterns []*Pattern
	roots    []*conj // one per pattern, leaves renumbered for this Set
	root     *tnode  // the merged paths of every pattern
	nleaves  int
	// rec are the root's children for the fields of a Record, so matching
	// a Record looks up no key.
	rec [recFields]*tnode
}

// tnode is one path step of the merged trie.
type tnode struct {
	key      string
	children []*tnode
	leaves   []*leaf // the conditions on the value at exactly this path
}

func (n *tnode) child(key []byte) *tnode {
	// Linear: a pattern names a handful of fields per object, and comparing
	// a few short keys beats hashing one.
	for _, c := range n.children {
		if c.key == string(key) {
			return c
		}
	}
	return nil
}

func (n *tnode) childString(key string) *tnode {
	for _, c := range n.children {
		if c.key == key {
			return c
		}
	}
	return nil
}

// CompileAll compiles up to MaxPatterns patterns into a Set. An error is an
// *Error whose Index names the failing pattern.
func CompileAll(patterns []string) (*Set, error) {
	if len(patterns) == 0 {
		return nil, &Error{Index: -1, Reason: "no patterns: give at least one, or configure no filter to deliver every record"}
	}
	if len(patterns) > MaxPatterns {
		return nil, &Error{Index: MaxPatterns, Reason: fmt.Sprintf("%d patterns given; at most %d are allowed: combine some with \"$or\"", len(patterns), MaxPatterns)}
	}
	ps := make([]*Pattern, len(patterns))
	for i, src := range patterns {
		p, err := compile(src)
		if err != nil {
			err.Index = i
			return nil, err
		}
		ps[i] = p
	}
	return newSet(ps), nil
}

// Patterns returns the Set's patterns in the order given.
func (s *Set) Patterns() []*Pattern { return append([]*Pattern(nil), s.patterns...) }

// newSet merges the patterns' paths. Each pattern's tree is copied, so a
// Pattern may belong to its own one-pattern Set and to any number of others.
func newSet(ps []*Pattern) *Set {
	s := &Set{patterns: ps, root: &tnode{}}
	for _, p := range ps {
		s.roots = append(s.roots, s.adopt(p.root))
	}
	for i, name := range recNames {
		s.rec[i] = s.root.childString(name)
	}
	return s
}

func (s *Set) adopt(c *conj) *conj {
	out := &conj{}
	for _, l := range c.leaves {
		nl := *l
		nl.id = s.nleaves
		s.nleaves++
		n := s.root
		for _, k := range l.path {
			next := n.childString(k)
			if next == nil {
				next = &tnode{key: k}
				n.children = append(n.children, next)
			}
			n = next
		}
		n.leaves = append(n.leaves, &nl)
		out.leaves = append(out.leaves, &nl)
	}
	for _, alts := range c.ors {
		na := make([]*conj, len(alts))
		for i, a := range alts {
			na[i] = s.adopt(a)
		}
		out.ors = append(out.ors, na)
	}
	return out
}

// Match reports whether doc matches any pattern of the Set.
func (s *Set) Match(doc Doc) bool {
	if s == nil {
		return true
	}
	var st state
	if 2*s.nleaves > len(st.small)*64 {
		st.big = make([]uint64, (2*s.nleaves+63)/64)
	}
	// A type switch rather than an interface call: the compiler then sees
	// that st does not escape and keeps it on the stack.
	var ok bool
	switch d := doc.(type) {
	case JSON:
		ok = d.scan(s, &st)
	case *Record:
		ok = d != nil && d.scan(s, &st)
	}
	if !ok {
		return false
	}
	for _, r := range s.roots {
		if r.eval(&st) {
			return true
		}
	}
	return false
}

func (c *conj) eval(st *state) bool {
	for _, l := range c.leaves {
		if !st.holds(l) {
			return false
		}
	}
	for _, alts := range c.ors {
		ok := false
		for _, a := range alts {
			if a.eval(st) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// state is the per-match scratch: two bits per leaf, "a value matched" and
// "a value was present". It lives on the caller's stack; 16 words cover 512
// leaves, far more than five typical patterns have.
type state struct {
	small   [16]uint64
	big     []uint64
	scratch []byte // unescaped strings and base64; grows only when needed
	num     [24]byte
}

func (st *state) words() []uint64 {
	if st.big != nil {
		return st.big
	}
	return st.small[:]
}

func (st *state) get(bit int) bool {
	return st.words()[bit>>6]&(1<<(bit&63)) != 0
}

func (st *state) set(bit int) {
	st.words()[bit>>6] |= 1 << (bit & 63)
}

func (st *state) holds(l *leaf) bool {
	if st.get(2 * l.id) {
		return true
	}
	return l.orAbsent && !st.get(2*l.id+1)
}

// visit records one leaf value found at node n.
func (st *state) visit(n *tnode, v *val) {
	for _, l := range n.leaves {
		st.set(2*l.id + 1)
		if st.get(2 * l.id) {
			continue
		}
		for i := range l.conds {
			if l.conds[i].match(v) {
				st.set(2 * l.id)
				break
			}
		}
	}
}

// snapshot and restore undo what a partial scan recorded, for a Record key
// or value that turns out not to be JSON and is then matched as a string.
func (st *state) snapshot(buf *[16]uint64) []uint64 {
	if st.big != nil {
		return append([]uint64(nil), st.big...)
	}
	*buf = st.small
	return nil
}

func (st *state) restore(buf *[16]uint64, big []uint64) {
	if st.big != nil {
		copy(st.big, big)
		return
	}
	st.small = *buf
}
