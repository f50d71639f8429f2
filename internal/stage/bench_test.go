package stage

import (
	"context"
	"testing"

	"github.com/sluice-dev/sluice/internal/batch"
)

// BenchmarkChain is the cost the stages add to a delivered batch of 100
// records, against calling the target alone (b.N batches each).
func BenchmarkChain(b *testing.B) {
	tgt := func(_ context.Context, bt *batch.Batch) batch.Result { return batch.DeliveredAll(bt) }
	bt := batch.New(records(100, 0), nil)
	ctx := context.Background()
	b.Run("target alone", func(b *testing.B) {
		for b.Loop() {
			if tgt(ctx, bt).Final() != 100 {
				b.Fatal("not delivered")
			}
		}
	})
	p := fast
	p.GiveUp = true
	h := batch.Chain(tgt, OnFailure(nil, DestinationPolicy{}, Nop{}), Retry(p, Nop{}), Bisect(), Observe(Nop{}))
	b.Run("full chain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h(ctx, bt).Final() != 100 {
				b.Fatal("not delivered")
			}
		}
	})
}
