package stage

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Observe tells obs of every call to the handler after it (the target):
// its duration and its answer. A call cut off because the partition is
// stopping is neither a success nor a failure, as for the retry stage: it
// is reported with a negative duration, so in-flight counts stay true.
func Observe(obs Observer) batch.Stage {
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			obs.Attempting(b)
			start := time.Now()
			r := next(ctx, b)
			if ctx.Err() != nil && r.Final() < b.Len() {
				obs.Attempted(b, r, -1)
				return r
			}
			obs.Attempted(b, r, time.Since(start))
			return r
		}
	}
}
