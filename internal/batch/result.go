package batch

import (
	"errors"
	"time"
)

// Status is where a record stands after a handler.
type Status uint8

// Statuses. The first three are not final: the record will be delivered
// again. The rest are final: the record may be committed.
const (
	// Pending: not attempted (a stage stopped before it), or to be
	// attempted again.
	Pending Status = iota
	// Failed: the last attempt failed; Outcome.Err says why.
	Failed
	// GaveUp: the retry limits ran out (Outcome.Condition says which); a
	// failure destination, or a discard the user chose, makes it final.
	GaveUp

	// Delivered: the target accepted the record.
	Delivered
	// Filtered: the pipe's filter left the record out.
	Filtered
	// DeadLettered: the failure destination accepted the record.
	DeadLettered
	// Discarded: dropped after its limits ran out, as the user chose.
	Discarded
)

// Final reports whether a record with this status may be committed.
func (s Status) Final() bool { return s >= Delivered }

func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case Failed:
		return "failed"
	case GaveUp:
		return "gave up"
	case Delivered:
		return "delivered"
	case Filtered:
		return "filtered"
	case DeadLettered:
		return "dead-lettered"
	case Discarded:
		return "discarded"
	}
	return "unknown"
}

// Condition is why a record is not retried further, named as the
// reference's failure destination records name it.
type Condition string

// Conditions.
const (
	RetryAttemptsExhausted     Condition = "RetryAttemptsExhausted"
	MaximumRecordAgeExceeded   Condition = "MaximumRecordAgeExceeded"
	MaximumPayloadSizeExceeded Condition = "MaximumPayloadSizeExceeded"
	// PoisonRecord is Sluice's own: the target marked the record as one it
	// will never accept, so it skips the remaining retries.
	PoisonRecord Condition = "PoisonRecord"
)

// Outcome is one record's status, with why when it was not delivered.
type Outcome struct {
	Status Status
	// Condition, on a Failed record, says retrying cannot help (the record
	// is poison or too large), so it goes to the failure destination at
	// once; on a GaveUp record, which limit ran out.
	Condition Condition
	// Err is the last attempt's failure.
	Err error
	// Attempts is how many times the record was tried, when known.
	Attempts int
}

// Result is the outcomes of a batch's records, in order. The zero Result
// has no records; a Result made by All stores one outcome for every record
// until a Set makes them differ, so the common case (all delivered) costs
// no allocation.
type Result struct {
	n   int
	all Outcome
	per []Outcome
}

// All is n records with the outcome o.
func All(n int, o Outcome) Result { return Result{n: n, all: o} }

// DeliveredAll is b's records, all delivered.
func DeliveredAll(b *Batch) Result { return All(b.Len(), Outcome{Status: Delivered}) }

// FailedAll is b's records, all failed with err.
func FailedAll(b *Batch, err error) Result { return All(b.Len(), Outcome{Status: Failed, Err: err}) }

// PendingAll is b's records, none attempted.
func PendingAll(b *Batch) Result { return All(b.Len(), Outcome{Status: Pending}) }

// Len is the number of records.
func (r Result) Len() int { return r.n }

// At is record i's outcome.
func (r Result) At(i int) Outcome {
	if r.per != nil {
		return r.per[i]
	}
	return r.all
}

// Set changes record i's outcome.
func (r *Result) Set(i int, o Outcome) {
	if r.per == nil {
		if o.Err == nil && r.all.Err == nil && o.Status == r.all.Status && o.Condition == r.all.Condition && o.Attempts == r.all.Attempts {
			return // unchanged; errors are not compared, since not every error type is comparable
		}
		r.per = make([]Outcome, r.n)
		for j := range r.per {
			r.per[j] = r.all
		}
	}
	r.per[i] = o
}

// Merge sets the outcomes of records [at, at+sub.Len()) to sub's, for a
// stage that handed a Slice of its batch on.
func (r *Result) Merge(at int, sub Result) {
	if at == 0 && sub.n == r.n {
		*r = sub
		return
	}
	for i := range sub.n {
		r.Set(at+i, sub.At(i))
	}
}

// Final is how many records from the start are final: what the source may
// commit.
func (r Result) Final() int {
	if r.per == nil {
		if r.all.Status.Final() {
			return r.n
		}
		return 0
	}
	for i, o := range r.per {
		if !o.Status.Final() {
			return i
		}
	}
	return r.n
}

// Count is how many records have status s.
func (r Result) Count(s Status) int {
	if r.per == nil {
		if r.all.Status == s {
			return r.n
		}
		return 0
	}
	n := 0
	for _, o := range r.per {
		if o.Status == s {
			n++
		}
	}
	return n
}

// Err is the first failure among the records that are not final, or nil.
func (r Result) Err() error {
	for i := range r.n {
		if o := r.At(i); !o.Status.Final() && o.Err != nil {
			return o.Err
		}
		if r.per == nil {
			break
		}
	}
	return nil
}

// A target's error may tell the policies more than that it failed; these
// interfaces are how, so that no policy knows any target's protocol.
type (
	// Throttle is an error whose target asked to be left alone for a
	// while (HTTP 429 or 503 with Retry-After, Lambda's
	// TooManyRequestsException).
	Throttle interface{ RetryAfter() time.Duration }
	// Unavailable is an error that says the target, not the records, is
	// at fault (unreachable, timed out): splitting the batch cannot help.
	Unavailable interface{ TargetUnavailable() bool }
)

// RetryAfter is the delay err asks for, or 0.
func RetryAfter(err error) time.Duration {
	var t Throttle
	if errors.As(err, &t) {
		return t.RetryAfter()
	}
	return 0
}

// TargetUnavailable reports whether err blames the target rather than the
// batch.
func TargetUnavailable(err error) bool {
	var u Unavailable
	return errors.As(err, &u) && u.TargetUnavailable()
}
