package source

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/scale"
)

// keyedValue keys record i of a partition by i mod keys ("k<i%keys>"), so
// a key's records are spread through the partition.
func produceKeyed(t *testing.T, addrs []string, topic string, parts int32, n, keys int, nullEvery int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range parts {
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i%keys), Value: labeled(10)(p, i)}
			if nullEvery > 0 && i%nullEvery == nullEvery-1 {
				r.Key = nil
			}
			recs = append(recs, r)
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// keyedJournal checks what a KEY or NONE source hands over: the most
// batches in flight at once, per key that first deliveries come in offset
// order, and per partition that a record without a key came after every
// record before it was first delivered and before every record after it.
type keyedJournal struct {
	mu        sync.Mutex
	inFlight  atomic.Int64
	peak      atomic.Int64
	seen      map[string]bool
	lastOfKey map[string]int64
	first     map[int32][]int64 // first deliveries per partition, in order
	errs      []string
}

func newKeyedJournal() *keyedJournal {
	return &keyedJournal{seen: map[string]bool{}, lastOfKey: map[string]int64{}, first: map[int32][]int64{}}
}

func (j *keyedJournal) handle(delay time.Duration, fail func(*kgo.Record) bool) func(context.Context, *batch.Batch) error {
	return func(ctx context.Context, b *batch.Batch) error {
		n := j.inFlight.Add(1)
		defer j.inFlight.Add(-1)
		for p := j.peak.Load(); n > p && !j.peak.CompareAndSwap(p, n); p = j.peak.Load() {
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, r := range b.Records {
			if fail != nil && fail(r) {
				return fmt.Errorf("refused %d", r.Offset)
			}
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		for _, r := range b.Records {
			id := fmt.Sprintf("%d@%d", r.Partition, r.Offset)
			if j.seen[id] {
				continue
			}
			j.seen[id] = true
			k := fmt.Sprintf("%d/%s", r.Partition, r.Key)
			if r.Key != nil {
				if last, ok := j.lastOfKey[k]; ok && last > r.Offset {
					j.errs = append(j.errs, fmt.Sprintf("key %s: %d first delivered after %d", k, r.Offset, last))
				}
				j.lastOfKey[k] = r.Offset
			}
			j.first[r.Partition] = append(j.first[r.Partition], r.Offset)
		}
		return nil
	}
}

func (j *keyedJournal) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.seen)
}

// In KEY order with a slow handler, a partition has many batches in
// flight, every key's records arrive in offset order (through failures
// that are retried), a record without a key keeps its place, everything
// arrives and the commits reach the end.
func TestKeyOrderingRunsDisjointKeysTogether(t *testing.T) {
	const topic, parts, n, keys = "keyed", 2, 600, 50
	addrs := newCluster(t, topic, parts)
	produceKeyed(t, addrs, topic, parts, n, keys, 97)
	cfg := testConfig(addrs, topic, "g-key")
	cfg.Ordering = OrderingKey
	cfg.Limiter = scale.NewLimiter(16)
	cfg.BatchSize = 5
	j := newKeyedJournal()
	var failed sync.Map
	fail := func(r *kgo.Record) bool { // each record's first attempt fails once in a while
		if rand.IntN(20) != 0 {
			return false
		}
		_, again := failed.LoadOrStore(fmt.Sprintf("%d@%d", r.Partition, r.Offset), true)
		return !again
	}
	start(t, cfg, retried(j.handle(20*time.Millisecond, fail)))
	waitFor(t, 60*time.Second, "every record delivered and committed", func() bool {
		if j.count() != parts*n {
			return false
		}
		c := committed(t, addrs, "g-key", topic)
		return c[0] == n && c[1] == n
	})
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.errs) > 0 {
		t.Fatalf("%d order violations, e.g. %v", len(j.errs), j.errs[0])
	}
	for p, offs := range j.first {
		for i, o := range offs {
			if (o+1)%97 != 0 {
				continue
			}
			// The record without a key: everything before it first, nothing after it earlier.
			for _, x := range offs[:i] {
				if x > o {
					t.Fatalf("partition %d: %d delivered before the keyless record %d", p, x, o)
				}
			}
			for _, x := range offs[i+1:] {
				if x < o {
					t.Fatalf("partition %d: %d delivered after the keyless record %d", p, x, o)
				}
			}
		}
	}
	if peak := j.peak.Load(); peak < 4 {
		t.Fatalf("at most %d batches were in flight at once; KEY order should run disjoint keys together", peak)
	}
}

// retried turns a failing handler into one that retries the batch until
// it succeeds, as the retry stage would.
func retried(h func(context.Context, *batch.Batch) error) func(context.Context, *batch.Batch) error {
	return func(ctx context.Context, b *batch.Batch) error {
		for {
			err := h(ctx, b)
			if err == nil || ctx.Err() != nil || b.IsStopping() {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// NONE order: the limiter is the only bound, and a stop mid-stream
// commits only what finished, so a second source delivers the rest.
func TestNoneOrderingStopsAndResumesWithoutLoss(t *testing.T) {
	const topic, n = "none", 400
	addrs := newCluster(t, topic, 1)
	produceKeyed(t, addrs, topic, 1, n, 7, 0)
	cfg := testConfig(addrs, topic, "g-none")
	cfg.Ordering = OrderingNone
	cfg.Limiter = scale.NewLimiter(8)
	cfg.BatchSize = 4
	j := newKeyedJournal()
	r := start(t, cfg, j.handle(15*time.Millisecond, nil))
	waitFor(t, 30*time.Second, "some records", func() bool { return j.count() > n/4 })
	r.stop()
	if peak := j.peak.Load(); peak > 8 || peak < 2 {
		t.Fatalf("peak in flight %d, want 2–8 (the limiter's)", peak)
	}
	start(t, cfg, j.handle(time.Millisecond, nil))
	waitFor(t, 30*time.Second, "every record delivered and committed", func() bool {
		return j.count() == n && committed(t, addrs, "g-none", topic)[0] == n
	})
}

// In PARTITION order the limiter bounds how many partitions deliver at
// once: with one token, one batch at a time across four partitions, and
// everything still arrives.
func TestPartitionOrderingHonoursTheLimiter(t *testing.T) {
	const topic, parts, n = "limited", 4, 40
	addrs := newCluster(t, topic, parts)
	produceKeyed(t, addrs, topic, parts, n, 5, 0)
	cfg := testConfig(addrs, topic, "g-limited")
	cfg.Limiter = scale.NewLimiter(1)
	j := newKeyedJournal()
	start(t, cfg, j.handle(5*time.Millisecond, nil))
	waitFor(t, 30*time.Second, "every record delivered", func() bool { return j.count() == parts*n })
	if peak := j.peak.Load(); peak != 1 {
		t.Fatalf("%d batches in flight at once with a limit of 1", peak)
	}
}
