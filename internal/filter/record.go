package filter

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// Record is a Kafka record as a filter sees it. The package reads it and
// keeps nothing: a Record may be reused once Match returns.
type Record struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     int64  // milliseconds since the Unix epoch
	TimestampType string // "CREATE_TIME" or "LOG_APPEND_TIME"
	Key, Value    []byte // nil is a Kafka null
	Headers       []Header
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte // nil is a Kafka null
}

// The fields of a Record, in the order of Set.rec.
const (
	recTopic = iota
	recPartition
	recOffset
	recTimestamp
	recTimestampType
	recKey
	recValue
	recHeaders
	recFields
)

var recNames = [recFields]string{"topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers"}

func (r *Record) scan(s *Set, st *state) bool {
	if n := s.rec[recTopic]; n != nil {
		visitString(st, n, r.Topic)
	}
	if n := s.rec[recPartition]; n != nil {
		visitInt(st, n, int64(r.Partition))
	}
	if n := s.rec[recOffset]; n != nil {
		visitInt(st, n, r.Offset)
	}
	if n := s.rec[recTimestamp]; n != nil {
		visitInt(st, n, r.Timestamp)
	}
	if n := s.rec[recTimestampType]; n != nil {
		visitString(st, n, r.TimestampType)
	}
	if n := s.rec[recKey]; n != nil {
		visitBytes(st, n, r.Key)
	}
	if n := s.rec[recValue]; n != nil {
		visitBytes(st, n, r.Value)
	}
	if n := s.rec[recHeaders]; n != nil && len(n.children) > 0 {
		// headers is an object, so conditions on "headers" itself see no
		// leaf; only its children (header keys) do.
		for i := range r.Headers {
			h := &r.Headers[i]
			if c := n.childString(h.Key); c != nil && len(c.leaves) > 0 {
				if h.Value == nil {
					st.visit(c, &val{kind: vNull})
				} else {
					visitRaw(st, c, h.Value)
				}
			}
		}
	}
	return true
}

func visitString(st *state, n *tnode, s string) {
	if len(n.leaves) == 0 {
		return
	}
	// The conversion is one copy of a short metadata string; matching on
	// topic names is rare enough not to warrant unsafe.
	v := val{kind: vStr, b: []byte(s)}
	st.visit(n, &v)
}

func visitInt(st *state, n *tnode, i int64) {
	if len(n.leaves) == 0 {
		return
	}
	v := val{kind: vNum, b: strconv.AppendInt(st.num[:0], i, 10), f: float64(i), fset: true}
	st.visit(n, &v)
}

// visitBytes matches a Record key or value: JSON when all of it is valid
// JSON, otherwise a string (see visitRaw); nil is null.
func visitBytes(st *state, n *tnode, b []byte) {
	if b == nil {
		if len(n.leaves) > 0 {
			st.visit(n, &val{kind: vNull})
		}
		return
	}
	var saved [16]uint64
	big := st.snapshot(&saved)
	sc := scanner{data: b, st: st}
	if sc.document(n) {
		return
	}
	// Not JSON: forget what the partial scan recorded, then match the
	// bytes as one string. Paths below this node cannot match a string.
	st.restore(&saved, big)
	if len(n.leaves) > 0 {
		visitRaw(st, n, b)
	}
}

// visitRaw matches bytes as a string: as they are when they are UTF-8,
// else as standard base64, the encoding Lambda delivers records in, so a
// pattern can still name binary content.
func visitRaw(st *state, n *tnode, b []byte) {
	if !utf8.Valid(b) {
		enc := base64.StdEncoding
		need := enc.EncodedLen(len(b))
		if cap(st.scratch) < need {
			st.scratch = make([]byte, need)
		}
		buf := st.scratch[:need]
		enc.Encode(buf, b)
		b = buf
	}
	v := val{kind: vStr, b: b}
	st.visit(n, &v)
}
