package stage

import (
	"context"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Enricher answers the payload a batch's target gets instead of the
// records; nil means nothing to deliver.
type Enricher interface {
	Enrich(ctx context.Context, b *batch.Batch) ([]byte, error)
}

// Enrich is the Pipes enrichment stage: the handler after it gets the
// batch with the enricher's answer as its payload. A failed or timed-out
// enrichment fails the batch, so the retry stage around it retries it,
// counts it against the limits and, when they run out, hands the records
// to the failure destination; an answer of nothing makes the records
// final without a call to the target (Filtered: committed, counted).
func Enrich(e Enricher, obs Observer) batch.Stage {
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			payload, err := e.Enrich(ctx, b)
			if err != nil {
				return batch.FailedAll(b, err)
			}
			if payload == nil {
				obs.FilteredOut(b, b.Len())
				return batch.All(b.Len(), batch.Outcome{Status: batch.Filtered})
			}
			return next(ctx, b.WithPayload(payload))
		}
	}
}
