package stage

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Filter hands on only the records match keeps; the others are Filtered
// (final: committed, counted, never delivered), as the reference's
// FilterCriteria drops them. A batch filtered to nothing makes no call.
func Filter(match func(*kgo.Record) bool, obs Observer) batch.Stage {
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			keep := make([]int, 0, b.Len())
			for i, r := range b.Records {
				if match(r) {
					keep = append(keep, i)
				}
			}
			if len(keep) == b.Len() {
				return next(ctx, b)
			}
			obs.FilteredOut(b, b.Len()-len(keep))
			res := batch.All(b.Len(), batch.Outcome{Status: batch.Filtered})
			if len(keep) == 0 {
				return res
			}
			sub := next(ctx, b.Subset(keep))
			for i, j := range keep {
				res.Set(j, sub.At(i))
			}
			return res
		}
	}
}
