package source

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func committedAt(topic string, partition int32, offset int64) map[string]map[int32]kgo.EpochOffset {
	return map[string]map[int32]kgo.EpochOffset{topic: {partition: {Epoch: -1, Offset: offset}}}
}

// TestDoneMarksCountRecordsNotOffsets: a commit settles the batches it
// covers, counted in records (offset gaps do not count), once; spans stay
// bounded while commits fail, without changing the total.
func TestDoneMarksCountRecordsNotOffsets(t *testing.T) {
	var d doneMarks
	tp := topicPartition{"t", 0}
	d.add(tp, 10, 10) // offsets 0–9
	d.add(tp, 25, 12) // 10–24 with 3 transaction markers or compacted records
	d.add(topicPartition{"t", 1}, 5, 5)
	if n := d.settle(committedAt("t", 0, 10)); n != 10 {
		t.Fatalf("settled %d, want the first batch's 10", n)
	}
	if n := d.settle(committedAt("t", 0, 10)); n != 0 {
		t.Fatalf("settled %d again", n)
	}
	if n := d.settle(committedAt("t", 0, 25)); n != 12 {
		t.Fatalf("settled %d, want 12 records, not 15 offsets", n)
	}
	d.drop(map[string][]int32{"t": {1}})
	if n := d.settle(committedAt("t", 1, 5)); n != 0 {
		t.Fatalf("a dropped partition settled %d", n)
	}

	for i := int64(1); i <= 1000; i++ {
		d.add(tp, 25+i, 1)
	}
	if got := len(d.spans[tp]); got > maxDoneSpans {
		t.Fatalf("%d spans kept, want at most %d", got, maxDoneSpans)
	}
	if n := d.settle(committedAt("t", 0, 1025)); n != 1000 {
		t.Fatalf("settled %d after merging, want 1000", n)
	}
	if len(d.spans) != 0 {
		t.Fatalf("spans left: %v", d.spans)
	}
}
