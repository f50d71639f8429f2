package source

import (
	"github.com/sluice-dev/sluice/internal/batch"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func batchAt(first, n int64) *batch.Batch {
	var recs []*kgo.Record
	for o := first; o < first+n; o++ {
		recs = append(recs, &kgo.Record{Topic: "t", Partition: 0, Offset: o, LeaderEpoch: 3})
	}
	return batch.New(recs, nil)
}

// TestCheckpointerContiguous: the commit offset is the lowest offset whose
// record is not final, whatever order outcomes arrive in, and it never
// moves back.
func TestCheckpointerContiguous(t *testing.T) {
	var c checkpointer
	a, b, d := batchAt(0, 10), batchAt(10, 5), batchAt(15, 5)
	for _, x := range []*batch.Batch{a, b, d} {
		c.cut(x)
	}
	// The later batches finish first: nothing may be committed yet.
	if _, _, ok := c.final(d, d.Len()); ok {
		t.Fatal("committed past outstanding batches")
	}
	if _, _, ok := c.final(b, b.Len()); ok {
		t.Fatal("committed past the outstanding first batch")
	}
	// The first finishes: everything up to the end of the last is final.
	off, rec, ok := c.final(a, a.Len())
	if !ok || off != 20 || rec.LeaderEpoch != 3 {
		t.Fatalf("after all three: %d, %v, %v; want 20", off, rec, ok)
	}
	// A batch abandoned (its partition stopping) holds the offset.
	e, f := batchAt(20, 5), batchAt(25, 5)
	c.cut(e)
	c.cut(f)
	if _, _, ok := c.final(f, f.Len()); ok {
		t.Fatal("committed past an abandoned batch")
	}
	c.drop(map[string][]int32{"t": {0}})
	// Assigned again: state starts afresh from what is final now.
	g := batchAt(20, 5)
	c.cut(g)
	if off, _, ok := c.final(g, g.Len()); !ok || off != 25 {
		t.Fatalf("after drop: %d, %v; want 25", off, ok)
	}
}

// TestCheckpointerInOrder is today's case: one batch at a time, each
// final in turn, committing its end as MarkCommitRecords did.
func TestCheckpointerInOrder(t *testing.T) {
	var c checkpointer
	for first := int64(0); first < 100; first += 10 {
		b := batchAt(first, 10)
		c.cut(b)
		if off, _, ok := c.final(b, b.Len()); !ok || off != first+10 {
			t.Fatalf("batch at %d: %d, %v", first, off, ok)
		}
	}
}
