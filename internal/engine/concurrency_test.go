package engine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// keyTarget is a slow target journaling first deliveries per key, which
// throttles (429) while throttle is set.
type keyTarget struct {
	*httptest.Server
	throttle atomic.Bool
	inFlight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	seen     map[string]bool
	last     map[string]int64 // partition/key → last offset first delivered
	bad      []string
}

func newKeyTarget(t *testing.T, delay time.Duration) *keyTarget {
	kt := &keyTarget{seen: map[string]bool{}, last: map[string]int64{}}
	kt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := kt.inFlight.Add(1)
		defer kt.inFlight.Add(-1)
		for p := kt.peak.Load(); n > p && !kt.peak.CompareAndSwap(p, n); p = kt.peak.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		time.Sleep(delay)
		if kt.throttle.Load() {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		var ev struct {
			Records map[string][]struct {
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
				Key       string `json:"key"`
			} `json:"records"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		kt.mu.Lock()
		defer kt.mu.Unlock()
		for _, recs := range ev.Records {
			for _, x := range recs {
				id := fmt.Sprintf("%d@%d", x.Partition, x.Offset)
				if kt.seen[id] {
					continue
				}
				kt.seen[id] = true
				k, _ := base64.StdEncoding.DecodeString(x.Key)
				pk := fmt.Sprintf("%d/%s", x.Partition, k)
				if l, ok := kt.last[pk]; ok && l > x.Offset {
					kt.bad = append(kt.bad, fmt.Sprintf("key %s: %d after %d", pk, x.Offset, l))
				}
				kt.last[pk] = x.Offset
			}
		}
	}))
	t.Cleanup(kt.Close)
	return kt
}

func (kt *keyTarget) count() int {
	kt.mu.Lock()
	defer kt.mu.Unlock()
	return len(kt.seen)
}

// A KEY pipe on a slow target runs many batches of a partition at once,
// keeps every key's records in offset order, halves its concurrency when
// the target throttles and raises it again after, and commits to the end.
func TestKeyOrderingScalesAndBacksOff(t *testing.T) {
	const parts, n = 2, 4000 // keys k0…k(n-1) per partition: all distinct
	c := newCluster(t, "in", parts)
	produce(t, c.ListenAddrs(), "in", parts, n, time.Time{})
	kt := newKeyTarget(t, 20*time.Millisecond)
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "keyed", Topics: []string{"in"}, BatchSize: 5, MaximumBatchingWindowInSeconds: ptr(0.0),
		Ordering: pipe.OrderingKey, MaximumConcurrency: 32,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: kt.URL}}})
	ctx := context.Background()
	waitFor(t, 30*time.Second, "the concurrency to grow", func() bool {
		d, err := h.eng.Describe(ctx, "keyed")
		return err == nil && d.Concurrency != nil && d.Concurrency.Current >= 16
	})
	kt.throttle.Store(true)
	waitFor(t, 30*time.Second, "the concurrency to fall on throttling", func() bool {
		d, err := h.eng.Describe(ctx, "keyed")
		return err == nil && d.Concurrency.LastChange != nil && d.Concurrency.LastChange.Reason == "throttled" && d.Concurrency.Current <= 8
	})
	kt.throttle.Store(false)
	// More records, so there is a backlog when the cooldown ends however
	// fast the rest went.
	produce(t, c.ListenAddrs(), "in", parts, n, time.Time{})
	waitFor(t, 30*time.Second, "the concurrency to grow again after the cooldown", func() bool {
		d, err := h.eng.Describe(ctx, "keyed")
		return err == nil && d.Concurrency.LastChange.Reason == "backlog"
	})
	waitFor(t, 60*time.Second, "every record delivered and committed", func() bool {
		if kt.count() != 2*parts*n {
			return false
		}
		got := committed(t, h.addrs, p.UUID)
		return got[0] == 2*n && got[1] == 2*n
	})
	d, err := h.eng.Describe(ctx, "keyed")
	if err != nil || d.Concurrency.LastChange == nil {
		t.Fatalf("describe %+v, %v", d.Concurrency, err)
	}
	kt.mu.Lock()
	defer kt.mu.Unlock()
	if len(kt.bad) > 0 {
		t.Fatalf("%d per-key order violations, e.g. %s", len(kt.bad), kt.bad[0])
	}
	if peak := kt.peak.Load(); peak <= parts {
		t.Fatalf("at most %d calls in flight: KEY order should exceed one per partition", peak)
	}
	t.Logf("peak %d calls in flight; concurrency now %d (last change %+v)", kt.peak.Load(), d.Concurrency.Current, *d.Concurrency.LastChange)
}
