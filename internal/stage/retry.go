package stage

import (
	"errors"
	"math/rand/v2"
	"time"

	"context"

	"github.com/sluice-dev/sluice/internal/batch"
)

// RetryPolicy says how failed records are retried: from the first record
// that is not final, after an exponential backoff with jitter or the
// target's Retry-After, whichever is longer (capped at MaxRetryAfter).
type RetryPolicy struct {
	// MaxRetries is the retries after the first attempt; negative is
	// unlimited.
	MaxRetries int
	// MaxRecordAge stops retrying a record older than this; 0 is
	// unlimited.
	MaxRecordAge time.Duration
	// InitialBackoff (default 200 ms) doubles per retry up to MaxBackoff
	// (default 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxRetryAfter caps a target's Retry-After (default 5 min), so a
	// misbehaving target cannot park a partition for days.
	MaxRetryAfter time.Duration
	// GiveUp says the stage before takes records whose limits ran out (a
	// failure destination, or a discard the user chose): they are answered
	// GaveUp. Without it they are retried on, and the Observer is told, so
	// nothing leaves the pipe undelivered unless the user chose where.
	GiveUp bool
	// Now is the clock for record ages; nil is time.Now.
	Now func() time.Time
}

// errUnfinished stands for a failure the handler did not explain.
var errUnfinished = errors.New("the target left records unfinished without saying why")

// Retry is the retry policy as a stage. An attempt that makes progress
// (its first record final) starts the count anew for the record that
// failed next, since the count is about the record holding the partition
// up. A record the target marked as never deliverable (a Condition on a
// Failed outcome) skips the remaining retries when GiveUp is set.
func Retry(p RetryPolicy, obs Observer) batch.Stage {
	p = p.withDefaults()
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			res := batch.PendingAll(b)
			from, attempt := 0, 0
			reported := false
			for {
				sub := b.Slice(from, b.Len())
				r := next(ctx, sub)
				res.Merge(from, r)
				k := r.Final()
				if k > 0 {
					obs.Delivered(sub, attempt+1)
					attempt, reported = 0, false
				}
				if k == sub.Len() || ctx.Err() != nil || b.IsStopping() {
					return res
				}
				first := from + k
				attempt++
				o := res.At(first)
				err := o.Err
				if err == nil {
					err = errUnfinished
				}
				failing := b.Slice(first, b.Len())
				obs.Failed(failing, attempt, err)
				if cond, permanent := p.limit(o, attempt, b.Records[first].Timestamp); cond != "" {
					if p.GiveUp {
						giveUp(&res, first, cond, permanent, attempt)
						return res
					}
					// A limit that ran out is shown as such; a record the
					// target can never take shows the target's reason.
					if !reported && !permanent {
						obs.Exhausted(failing, attempt, err)
						reported = true
					}
				}
				delay := p.backoff(attempt)
				if ra := batch.RetryAfter(err); ra > 0 {
					delay = max(delay, min(ra, p.MaxRetryAfter))
				}
				obs.Waiting(failing, attempt+1, p.Now().Add(delay))
				if !b.Sleep(ctx, delay) {
					return res
				}
				from = first
			}
		}
	}
}

// limit says whether a record whose attempt number attempt just failed
// with outcome o is done with retrying, and why; permanent says the target
// marked it so, rather than a limit running out.
func (p RetryPolicy) limit(o batch.Outcome, attempt int, ts time.Time) (cond batch.Condition, permanent bool) {
	switch {
	case o.Condition != "":
		return o.Condition, true
	case p.MaxRetries >= 0 && attempt > p.MaxRetries:
		return batch.RetryAttemptsExhausted, false
	case p.MaxRecordAge > 0 && p.Now().Sub(ts) > p.MaxRecordAge:
		return batch.MaximumRecordAgeExceeded, false
	}
	return "", false
}

// giveUp answers the failed records from first on as GaveUp. When the
// target marked the first one permanent, only the records it marked give
// up and the others are Pending, so their own retries are not cut short;
// when a limit ran out, every failed record gives up (it failed as often).
func giveUp(res *batch.Result, first int, cond batch.Condition, permanent bool, attempts int) {
	for i := first; i < res.Len(); i++ {
		o := res.At(i)
		if o.Status != batch.Failed {
			continue
		}
		switch {
		case o.Condition != "":
			o.Status = batch.GaveUp
		case permanent:
			o.Status = batch.Pending
		default:
			o.Status, o.Condition = batch.GaveUp, cond
		}
		o.Attempts = attempts
		res.Set(i, o)
	}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 200 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 5 * time.Minute
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// backoff is the delay before retry number attempt: exponential, with the
// upper half jittered so partitions failing together spread out.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func jitter() float64 { return rand.Float64() }
