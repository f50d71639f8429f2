package source

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// checkpointer decides a partition's commit offset from the outcomes of
// its records: the lowest offset of a record in a batch that was cut but
// is not final yet or, with none outstanding, the end of the last final
// run. A batch whose first records are final leaves the rest outstanding.
// Outcomes may arrive in any order (per-key ordering will have several
// batches of a partition in flight); the offset never passes a record
// whose outcome is not final, and never moves back.
//
// Records still buffered come after every cut batch, so they cannot lower
// the offset. A batch abandoned when its partition stops stays outstanding
// until the partition's state is dropped: what it holds is not final.
type checkpointer struct {
	mu    sync.Mutex
	parts map[topicPartition]*partCheckpoint
}

type partCheckpoint struct {
	outstanding map[int64]int64 // first offset → end (exclusive) of batches cut, not final
	end         int64           // the end of the highest final batch, 0 before any
	last        *kgo.Record     // the last record of that batch, for its leader epoch
	marked      int64           // the offset last handed to the client to commit
}

// cut records a batch handed to the handler.
func (c *checkpointer) cut(b *batch.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.part(topicPartition{b.Topic, b.Partition})
	p.outstanding[b.FirstOffset()] = b.LastOffset() + 1
}

// final records that the outcomes of b's first n records are final (the
// rest stay outstanding) and returns the offset to mark for commit, with
// the record whose leader epoch goes with it, or ok false when the commit
// offset did not advance.
func (c *checkpointer) final(b *batch.Batch, n int) (offset int64, epochOf *kgo.Record, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.part(topicPartition{b.Topic, b.Partition})
	delete(p.outstanding, b.FirstOffset())
	if n < b.Len() {
		p.outstanding[b.Records[n].Offset] = b.LastOffset() + 1
	}
	if last := b.Records[n-1]; last.Offset+1 > p.end {
		p.end, p.last = last.Offset+1, last
	}
	next := p.end
	for first := range p.outstanding {
		next = min(next, first)
	}
	if next <= p.marked || p.last == nil {
		return 0, nil, false
	}
	p.marked = next
	return next, p.last, true
}

// drop forgets partitions that are no longer ours.
func (c *checkpointer) drop(tps map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp := range c.parts {
		if tps == nil || contains(tps[tp.topic], tp.partition) {
			delete(c.parts, tp)
		}
	}
}

func (c *checkpointer) part(tp topicPartition) *partCheckpoint {
	if c.parts == nil {
		c.parts = map[topicPartition]*partCheckpoint{}
	}
	p := c.parts[tp]
	if p == nil {
		p = &partCheckpoint{outstanding: map[int64]int64{}}
		c.parts[tp] = p
	}
	return p
}
