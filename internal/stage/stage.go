// Package stage holds the policies of a pipe's data path, each a
// batch.Stage in a file of its own: filter (filter.go), retry (retry.go),
// bisect (bisect.go), the failure destination (destination.go) and
// observation (observe.go).
// Package chain puts them in order for a pipe's spec; none of them knows
// what the target is.
package stage

import (
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Observer is told what the stages do, so the runner can keep status and
// metrics without the stages knowing either. Every method must be cheap
// and safe for concurrent use; Nop implements it for tests and tools.
type Observer interface {
	// Attempting is told before each call to the target.
	Attempting(b *batch.Batch)
	// Attempted is told of each call to the target: how long it took and
	// what it answered. A call cut off because the partition is stopping
	// has a negative took: it is neither a success nor a failure.
	Attempted(b *batch.Batch, res batch.Result, took time.Duration)
	// Failed is told after each failed attempt (attempt counts from 1).
	Failed(b *batch.Batch, attempt int, err error)
	// Waiting is told when the next attempt of a failed batch is
	// scheduled, with when it will start.
	Waiting(b *batch.Batch, nextAttempt int, at time.Time)
	// Exhausted is told when the limits ran out and there is nowhere to
	// hand the records: they are retried on.
	Exhausted(b *batch.Batch, attempts int, err error)
	// Delivered is told when an attempt left the batch's first record
	// delivered: the target works again.
	Delivered(b *batch.Batch, attempts int)
	// HandedOff is told of records made final without delivery: status
	// DeadLettered (the destination took them) or Discarded.
	HandedOff(b *batch.Batch, status batch.Status, n int, cond batch.Condition, err error)
	// FilteredOut is told of records the filter left out.
	FilteredOut(b *batch.Batch, n int)
	// DestinationFailed is told when the failure destination refused
	// records; they are offered again after a backoff. nil clears it.
	DestinationFailed(b *batch.Batch, err error)
}

// Nop is an Observer that ignores everything.
type Nop struct{}

func (Nop) Attempting(*batch.Batch)                                           {}
func (Nop) Attempted(*batch.Batch, batch.Result, time.Duration)               {}
func (Nop) Failed(*batch.Batch, int, error)                                   {}
func (Nop) Waiting(*batch.Batch, int, time.Time)                              {}
func (Nop) Exhausted(*batch.Batch, int, error)                                {}
func (Nop) Delivered(*batch.Batch, int)                                       {}
func (Nop) HandedOff(*batch.Batch, batch.Status, int, batch.Condition, error) {}
func (Nop) DestinationFailed(*batch.Batch, error)                             {}
func (Nop) FilteredOut(*batch.Batch, int)                                     {}
