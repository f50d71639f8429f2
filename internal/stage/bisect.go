package stage

import (
	"context"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Bisect splits a batch the target failed as a whole into halves and
// delivers each on its own, recursively, so a poison record ends up alone
// and the records before it are delivered (the reference's
// BisectBatchOnFunctionError). It stops at the first half that does not
// succeed, leaving the records after it Pending, so first deliveries stay
// in offset order. The splits are one attempt to the retry stage around
// it, so they do not count against MaximumRetryAttempts, as in the
// reference.
//
// It does not split when splitting cannot help: the target was
// unreachable or asked to be left alone (batch.Unavailable,
// batch.Throttle), or its answer already named the failed records.
func Bisect() batch.Stage {
	return func(next batch.Handler) batch.Handler {
		var h batch.Handler
		h = func(ctx context.Context, b *batch.Batch) batch.Result {
			r := next(ctx, b)
			if b.Len() < 2 || r.Count(batch.Failed) != b.Len() || ctx.Err() != nil || b.IsStopping() {
				return r
			}
			if o := r.At(0); o.Condition != "" || batch.TargetUnavailable(o.Err) || batch.RetryAfter(o.Err) > 0 {
				return r
			}
			mid := b.Len() / 2
			res := batch.PendingAll(b)
			left := h(ctx, b.Slice(0, mid))
			res.Merge(0, left)
			if left.Final() < mid {
				return res
			}
			res.Merge(mid, h(ctx, b.Slice(mid, b.Len())))
			return res
		}
		return h
	}
}
