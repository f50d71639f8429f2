package source

import (
	"context"
	"github.com/sluice-dev/sluice/internal/batch"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLostPartitionsAbandonWithoutCommitting: when the group coordinator
// says the member is gone (its partitions already belong to someone else),
// the in-flight batch is abandoned at once, without the stop grace and
// without a commit; after rejoining, the batch is delivered again.
func TestLostPartitionsAbandonWithoutCommitting(t *testing.T) {
	const topic = "lost"
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	produce(t, addrs, topic, 1, 30, 10, labeled(16))

	var (
		mu       sync.Mutex
		attempts = map[int64]int{} // first offset → attempts
		canceled atomic.Bool
		block    = make(chan struct{})
	)
	cfg := testConfig(addrs, topic, "lost-group")
	cfg.StopGrace = time.Hour // lost must not wait for it
	r := start(t, cfg, func(ctx context.Context, b *batch.Batch) error {
		mu.Lock()
		attempts[b.FirstOffset()]++
		n := attempts[b.FirstOffset()]
		mu.Unlock()
		if b.FirstOffset() == 20 && n == 1 {
			select {
			case <-ctx.Done():
				canceled.Store(true)
				return errStopping
			case <-block:
			}
		}
		return nil
	})
	waitFor(t, 30*time.Second, "the batch at 20 in flight", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts[20] == 1
	})
	waitFor(t, 10*time.Second, "the first two batches committed", func() bool {
		return committed(t, addrs, "lost-group", topic)[0] == 20
	})

	// The coordinator forgets the member: its next heartbeat is refused.
	var refused atomic.Bool
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !refused.CompareAndSwap(false, true) {
			return nil, nil, false
		}
		resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	waitFor(t, 30*time.Second, "the in-flight attempt to be canceled", canceled.Load)
	if got := committed(t, addrs, "lost-group", topic)[0]; got != 20 {
		t.Fatalf("committed %d after losing the partition, want 20: the abandoned batch must not be committed", got)
	}
	waitFor(t, 30*time.Second, "the batch to be delivered again after rejoining", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts[20] >= 2
	})
	close(block)
	waitFor(t, 10*time.Second, "everything committed", func() bool {
		return committed(t, addrs, "lost-group", topic)[0] == 30
	})
	r.stop()
}
