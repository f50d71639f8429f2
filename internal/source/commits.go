package source

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDoneSpans bounds the spans kept per partition while commits fail:
// beyond it the oldest two merge, which only delays counting the older one
// until a commit covers the newer, and never changes the total.
const maxDoneSpans = 64

// doneSpan is a batch marked done: its records end before offset end.
type doneSpan struct {
	end int64
	n   int
}

// doneMarks holds, per partition and in offset order, the batches marked
// done and not yet known committed. A commit covering offset o settles
// every span ending at or before o. Counting batches rather than offset
// differences keeps the count in records: offsets also number transaction
// markers and compacted-away records.
type doneMarks struct {
	mu    sync.Mutex
	spans map[topicPartition][]doneSpan
}

func (d *doneMarks) add(tp topicPartition, end int64, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.spans == nil {
		d.spans = map[topicPartition][]doneSpan{}
	}
	ss := append(d.spans[tp], doneSpan{end: end, n: n})
	if len(ss) > maxDoneSpans {
		ss[1].n += ss[0].n
		ss = ss[1:]
	}
	d.spans[tp] = ss
}

// settle removes the spans that committed covers and returns their records.
func (d *doneMarks) settle(committed map[string]map[int32]kgo.EpochOffset) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for tp, ss := range d.spans {
		eo, ok := committed[tp.topic][tp.partition]
		if !ok {
			continue
		}
		i := 0
		for i < len(ss) && ss[i].end <= eo.Offset {
			n += ss[i].n
			i++
		}
		if i == len(ss) {
			delete(d.spans, tp)
		} else if i > 0 {
			d.spans[tp] = ss[i:]
		}
	}
	return n
}

// empty says whether every batch marked done is known committed.
func (d *doneMarks) empty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.spans) == 0
}

// drop forgets the partitions' spans: they are no longer ours to commit.
func (d *doneMarks) drop(tps map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for tp := range d.spans {
		if contains(tps[tp.topic], tp.partition) {
			delete(d.spans, tp)
		}
	}
}

// commitMarked commits the marked offsets and reports the outcome.
func (s *Source) commitMarked(ctx context.Context) error {
	err := s.cl.CommitMarkedOffsets(ctx)
	s.committed(ctx, err)
	return err
}

// committed reports a commit's outcome. A commit that succeeded for some
// partitions and failed for others has updated the client's committed
// offsets for the former, so counting reads those rather than the error.
func (s *Source) committed(ctx context.Context, err error) {
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) && s.cfg.OnCommitError != nil {
		s.cfg.OnCommitError(err)
	}
	if n := s.done.settle(s.cl.CommittedOffsets()); n > 0 && s.cfg.OnCommitted != nil {
		s.cfg.OnCommitted(n)
	}
}

// autoCommitted is the callback of franz-go's backstop autocommit.
func (s *Source) autoCommitted(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil && resp != nil {
	outer:
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
					break outer
				}
			}
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("autocommit failed; the marks stay for the next commit", "err", err)
	}
	s.committed(context.Background(), err)
}
