package source

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/scale"
)

// Partition 0's batch holds the only token until partition 1's records are
// delivered; partition 1's (fewer than a batch, so they wait out the
// batching window first) fail TryAcquire, whose starvation report raises
// the limit to 2, as the controller's slow start does. A worker that took
// the limiter's Changed channel after TryAcquire missed that raise and
// slept until partition 0's batch ended: here, never.
func TestStarvedRaiseWakesTheWorker(t *testing.T) {
	const topic = "wake"
	addrs := newCluster(t, topic, 2)
	cfg := testConfig(addrs, topic, "g-wake")
	cfg.Ordering = OrderingKey
	lim := scale.NewLimiter(1)
	lim.OnStarved(func() { lim.SetLimit(2) })
	cfg.Limiter = lim
	cfg.BatchSize = 5
	cfg.Window = 200 * time.Millisecond
	holding := make(chan struct{}, 1)
	delivered1 := make(chan time.Time, 1000)
	released := make(chan struct{})
	start(t, cfg, func(ctx context.Context, b *batch.Batch) error {
		if b.Partition == 0 {
			select {
			case holding <- struct{}{}:
			default:
			}
			select {
			case <-released:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		}
		for range b.Records {
			delivered1 <- time.Now()
		}
		return nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 0, Key: []byte("a")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	<-holding
	var recs []*kgo.Record
	for i := 0; i < 3; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 1, Key: []byte{byte('a' + i)}})
	}
	sent := time.Now()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	defer close(released)
	var last time.Time
	for i := range recs {
		select {
		case last = <-delivered1:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of partition 1's records delivered: it waits for a token although the limit was raised to 2 when it asked", i)
		}
	}
	t.Logf("limit %d; partition 1's %d records delivered %.2f s after they were produced", lim.Limit(), len(recs), last.Sub(sent).Seconds())
}
