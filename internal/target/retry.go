package target

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluice-dev/sluice/internal/source"
)

// RetryPolicy says how a failed batch is retried. The batch is retried whole,
// after an exponential backoff with jitter or the target's Retry-After,
// whichever is longer (capped at MaxRetryAfter).
type RetryPolicy struct {
	// MaxRetries is the retries after the first attempt; negative is
	// unlimited.
	MaxRetries int
	// MaxRecordAge stops retrying once the batch's oldest record is older;
	// 0 is unlimited.
	MaxRecordAge time.Duration
	// InitialBackoff (default 200 ms) doubles per retry up to MaxBackoff
	// (default 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxRetryAfter caps a target's Retry-After (default 5 min), so a
	// misbehaving target cannot park a partition for days.
	MaxRetryAfter time.Duration
}

// Hooks let the engine observe deliveries without the policy knowing about
// status or metrics. Any may be nil.
type Hooks struct {
	// Failed is called after each failed attempt (attempt counts from 1).
	Failed func(b *source.Batch, attempt int, err error)
	// Waiting is called when the next attempt of a failed batch is
	// scheduled, with when it will start.
	Waiting func(b *source.Batch, nextAttempt int, at time.Time)
	// Exhausted is called when the policy's limits run out. It returns true
	// when the batch was handed elsewhere (a failure destination), which
	// makes its outcome final; false keeps retrying, so nothing is dropped.
	Exhausted func(ctx context.Context, b *source.Batch, attempts int, err error) bool
	// Delivered is called when the target accepted the batch.
	Delivered func(b *source.Batch, attempts int)
}

// Retrying wraps a Target with a RetryPolicy.
type Retrying struct {
	Target Target
	Policy RetryPolicy
	Hooks  Hooks
	now    func() time.Time
}

// Handle delivers b until it succeeds or is handed elsewhere (nil), or the
// partition stops (source.ErrStopping). It has the source.Handler shape.
func (r *Retrying) Handle(ctx context.Context, b *source.Batch) error {
	p := r.Policy.withDefaults()
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	exhaustedReported := false
	for attempt := 1; ; attempt++ {
		err := r.Target.Deliver(ctx, b)
		if err == nil {
			if r.Hooks.Delivered != nil {
				r.Hooks.Delivered(b, attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return source.ErrStopping
		}
		if r.Hooks.Failed != nil {
			r.Hooks.Failed(b, attempt, err)
		}
		if !exhaustedReported && p.exhausted(attempt, b, now()) {
			if r.Hooks.Exhausted != nil && r.Hooks.Exhausted(ctx, b, attempt, err) {
				return nil
			}
			exhaustedReported = true
		}
		delay := p.backoff(attempt)
		var te *Error
		if errors.As(err, &te) && te.RetryAfter > 0 {
			delay = max(delay, min(te.RetryAfter, p.MaxRetryAfter))
		}
		if r.Hooks.Waiting != nil {
			r.Hooks.Waiting(b, attempt+1, now().Add(delay))
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-b.Stopping():
			t.Stop()
			return source.ErrStopping
		case <-ctx.Done():
			t.Stop()
			return source.ErrStopping
		}
		// select picks at random among ready cases: a partition that began
		// stopping as the backoff ran out must not start another attempt.
		select {
		case <-b.Stopping():
			return source.ErrStopping
		default:
		}
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
	return p
}

// exhausted reports whether attempt failed attempts use up the policy.
func (p RetryPolicy) exhausted(attempts int, b *source.Batch, now time.Time) bool {
	if p.MaxRetries >= 0 && attempts > p.MaxRetries {
		return true
	}
	if p.MaxRecordAge > 0 && now.Sub(b.Records[0].Timestamp) > p.MaxRecordAge {
		return true
	}
	return false
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

// ExhaustedProblem is the status shown while a batch whose retries ran out
// keeps retrying because no failure destination is configured.
func ExhaustedProblem(attempts int, err error) string {
	return fmt.Sprintf("retries exhausted after %d attempts and no failure destination is configured, so the batch keeps being retried: %s",
		attempts, ProblemOf(err))
}
