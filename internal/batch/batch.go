// Package batch is what a pipe's data path passes along: a batch of one
// partition's consecutive records, the per-record Result a handler answers
// with, and the Handler and Stage types every policy and target is built
// from. It does no I/O.
//
// The contract, which every stage keeps:
//
//   - A handler answers one Outcome per record of the batch it was given,
//     in the batch's order. Final outcomes (Delivered, Filtered,
//     DeadLettered, Discarded) let the source commit the record; any other
//     leaves it to be delivered again.
//   - The source commits a partition up to its first record that is not
//     final, and hands the records from there on to the handler again in a
//     new batch: a handler may stop early (the partition is stopping, or a
//     poison record was set aside) and loses nothing by it.
//   - A stage wraps the handler after it: it may call it any number of
//     times with the batch or a Slice of it, and merges what it learns into
//     the result it answers.
package batch

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Batch is a run of consecutive records of one partition.
type Batch struct {
	Topic     string
	Partition int32
	Records   []*kgo.Record
	// Oversized is set when the batch is a single record whose encoded size
	// alone passes the payload limit: it can never be delivered as is.
	Oversized bool
	// Size is the predicted encoded size of the batch as cut by the source
	// (the envelope plus each record); 0 when unknown, as for a Slice.
	Size int
	// Payload, when set, is the body the target gets instead of the
	// records' event: what an enrichment answered, or the records after
	// the input transformer. The outcomes are still the records'.
	Payload []byte

	stopping <-chan struct{}
	txn      Txn
}

// Txn is the Kafka transaction a batch is delivered in, when the pipe
// delivers EXACTLY_ONCE: a Kafka target produces through it, and the
// source commits the batch's offsets in the same transaction, so the
// records produced and the offsets consumed become visible together or
// not at all.
type Txn interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// NewInTxn is New for a batch delivered in the transaction txn.
func NewInTxn(recs []*kgo.Record, stop <-chan struct{}, txn Txn) *Batch {
	b := New(recs, stop)
	b.txn = txn
	return b
}

// Txn is the transaction the batch is delivered in, or nil.
func (b *Batch) Txn() Txn { return b.txn }

// New returns a batch of recs (all of one partition) whose Stopping
// channel is stop (nil never stops).
func New(recs []*kgo.Record, stop <-chan struct{}) *Batch {
	b := &Batch{Records: recs, stopping: stop}
	if len(recs) > 0 {
		b.Topic, b.Partition = recs[0].Topic, recs[0].Partition
	}
	return b
}

// Stopping is closed when the partition is being revoked or the pipe is
// shutting down: a handler should finish its current attempt but not start
// another. The ctx given with the batch is canceled a grace period later to
// abandon the attempt.
func (b *Batch) Stopping() <-chan struct{} { return b.stopping }

// IsStopping reports whether Stopping is closed.
func (b *Batch) IsStopping() bool {
	select {
	case <-b.stopping:
		return true
	default:
		return false
	}
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.Records) }

// FirstOffset is the offset of the batch's first record.
func (b *Batch) FirstOffset() int64 { return b.Records[0].Offset }

// LastOffset is the offset of the batch's last record.
func (b *Batch) LastOffset() int64 { return b.Records[len(b.Records)-1].Offset }

// Slice is the records [i, j) as a batch of their own, sharing b's
// Stopping channel and transaction. Its Size is unknown (0); Oversized carries over only
// when the slice is the whole batch.
func (b *Batch) Slice(i, j int) *Batch {
	if i == 0 && j == len(b.Records) {
		return b
	}
	return &Batch{Topic: b.Topic, Partition: b.Partition, Records: b.Records[i:j:j], stopping: b.stopping, txn: b.txn}
}

// Sleep waits d, and reports false if the batch began stopping or ctx ended
// first: a policy's backoff must not outlast its partition.
func (b *Batch) Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.stopping:
		return false
	case <-ctx.Done():
		return false
	}
	// select picks at random among ready cases: a partition that began
	// stopping as the wait ran out must not start another attempt.
	return !b.IsStopping() && ctx.Err() == nil
}

// Handler delivers a batch and answers each record's outcome. It must
// honour ctx and Stopping, and be safe for concurrent use by many
// partitions.
type Handler func(ctx context.Context, b *Batch) Result

// Stage is a policy wrapped around the handler after it.
type Stage func(next Handler) Handler

// Chain wraps h in stages, the first outermost: Chain(h, a, b) is a(b(h)).
func Chain(h Handler, stages ...Stage) Handler {
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i](h)
	}
	return h
}

// WithPayload is b with the body payload, sharing b's records and Stopping
// channel.
func (b *Batch) WithPayload(payload []byte) *Batch {
	c := *b
	c.Payload = payload
	return &c
}

// Subset is the records at the indexes idx (ascending) as a batch of
// their own, sharing b's Stopping channel: what a filter hands on.
func (b *Batch) Subset(idx []int) *Batch {
	if len(idx) == len(b.Records) {
		return b
	}
	recs := make([]*kgo.Record, len(idx))
	for i, j := range idx {
		recs[i] = b.Records[j]
	}
	return &Batch{Topic: b.Topic, Partition: b.Partition, Records: recs, stopping: b.stopping, txn: b.txn}
}
