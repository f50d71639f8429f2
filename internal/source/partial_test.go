package source

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
)

// A handler that answers only a batch's first records final gets the rest
// again, from its first record, in a new batch; the commit covers exactly
// the final records, and nothing is delivered twice or skipped.
func TestPartialResultRedeliversTheRest(t *testing.T) {
	const topic, parts, n = "partial", 2, 200
	addrs := newCluster(t, topic, parts)
	produce(t, addrs, topic, parts, n, 20, labeled(50))
	cfg := testConfig(addrs, topic, "g-partial")

	var (
		mu    sync.Mutex
		seen  = map[int32][]int64{} // first offsets of the batches, in order
		final = map[int32]int64{}   // the next offset each partition expects
		bad   []string
	)
	h := func(_ context.Context, b *batch.Batch) batch.Result {
		mu.Lock()
		defer mu.Unlock()
		if b.FirstOffset() != final[b.Partition] {
			bad = append(bad, fmt.Sprintf("partition %d: batch starts at %d, want %d", b.Partition, b.FirstOffset(), final[b.Partition]))
		}
		seen[b.Partition] = append(seen[b.Partition], b.FirstOffset())
		res := batch.PendingAll(b)
		// Half of each batch (at least one record) is final: delivered, or
		// every third record filtered, so mixed final statuses count too.
		k := max(1, b.Len()/2)
		for i := range k {
			st := batch.Delivered
			if b.Records[i].Offset%3 == 0 {
				st = batch.Filtered
			}
			res.Set(i, batch.Outcome{Status: st})
		}
		final[b.Partition] = b.Records[k-1].Offset + 1
		return res
	}
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 30*time.Second, "every record final", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return final[0] == n && final[1] == n
	})
	waitFor(t, 10*time.Second, "the commits to cover every record", func() bool {
		c, err := fetchCommitted(addrs, "g-partial", topic)
		return err == nil && c[0] == n && c[1] == n
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Error(b)
	}
	if len(seen[0]) < n/cfg.BatchSize*2 {
		t.Errorf("partition 0 took %d batches; halving batches of %d should take at least %d", len(seen[0]), cfg.BatchSize, n/cfg.BatchSize*2)
	}
}
