package stage

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Failure is records that gave up, as one hand-off to the destination:
// consecutive records of one partition with one condition.
type Failure struct {
	Topic     string
	Partition int32
	Records   []*kgo.Record
	Condition batch.Condition
	// Err is the last attempt's failure.
	Err      error
	Attempts int
}

// Destination receives failures. Send returns nil only once the records
// are durably accepted: the source commits them after it.
type Destination interface {
	Send(ctx context.Context, f Failure) error
	Close() error
}

// DestinationPolicy is how OnFailure retries a destination that fails:
// exponential backoff from InitialBackoff (default 200 ms) to MaxBackoff
// (default 30 s), for as long as the partition runs.
type DestinationPolicy struct {
	InitialBackoff, MaxBackoff time.Duration
}

// OnFailure makes the records the stages after it gave up on final: it
// hands them to dest (DeadLettered) or, with dest nil, drops them
// (Discarded, as the user chose); obs counts and logs both. A destination
// that refuses is retried with backoff and shown through obs, and nothing
// is dropped meanwhile: records it has not accepted stay GaveUp, so if the
// partition stops they are not committed and their next owner tries again.
func OnFailure(dest Destination, p DestinationPolicy, obs Observer) batch.Stage {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 200 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			res := next(ctx, b)
			if res.Count(batch.GaveUp) == 0 {
				return res
			}
			for i := 0; i < res.Len(); {
				o := res.At(i)
				if o.Status != batch.GaveUp {
					i++
					continue
				}
				j := i + 1
				for j < res.Len() && res.At(j).Status == batch.GaveUp && res.At(j).Condition == o.Condition {
					j++
				}
				status := batch.Discarded
				if dest != nil {
					f := Failure{Topic: b.Topic, Partition: b.Partition, Records: b.Records[i:j], Condition: o.Condition, Err: o.Err, Attempts: o.Attempts}
					if !send(ctx, b.Slice(i, j), dest, f, p, obs) {
						return res // stopping: the rest stays GaveUp, uncommitted
					}
					status = batch.DeadLettered
				}
				for k := i; k < j; k++ {
					done := res.At(k)
					done.Status = status
					res.Set(k, done)
				}
				obs.HandedOff(b.Slice(i, j), status, j-i, o.Condition, o.Err)
				i = j
			}
			return res
		}
	}
}

// send offers f until dest accepts it (true) or the partition stops.
func send(ctx context.Context, b *batch.Batch, dest Destination, f Failure, p DestinationPolicy, obs Observer) bool {
	d := p.InitialBackoff
	failed := false
	for {
		err := dest.Send(ctx, f)
		if err == nil {
			if failed {
				obs.DestinationFailed(b, nil)
			}
			return true
		}
		failed = true
		obs.DestinationFailed(b, err)
		if !b.Sleep(ctx, d/2+time.Duration(float64(d/2)*jitter())) {
			return false
		}
		d = min(2*d, p.MaxBackoff)
	}
}
