package sink

import (
	"strings"
	"testing"
)

func recs(partition int32, offsets ...int64) []Record {
	var out []Record
	for _, o := range offsets {
		out = append(out, Record{Topic: "t", Partition: partition, Offset: o})
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		recs []Record
		dups int
		err  string
	}{
		{"complete", recs(0, 0, 1, 2), 0, ""},
		{"redelivered batch", recs(0, 0, 1, 0, 1, 2), 2, ""},
		{"missing", recs(0, 0, 2), 0, "first delivery of offset 2 when 1 was next"},
		{"never delivered", recs(0, 0, 1), 0, "1 of 3 records never delivered (first missing offset 2)"},
		{"out of order", recs(0, 1, 0, 2), 0, "first delivery of offset 1 when 0 was next"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dups, err := Check(c.recs, "t", map[int32]int64{0: 3})
			if dups != c.dups {
				t.Errorf("dups %d, want %d", dups, c.dups)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("err %v, want %q", err, c.err)
			}
		})
	}
}
