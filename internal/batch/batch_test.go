package batch

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func recs(n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{Topic: "t", Partition: 3, Offset: int64(10 + i)}
	}
	return out
}

func TestResultFinalPrefixAndMerge(t *testing.T) {
	b := New(recs(5), nil)
	r := DeliveredAll(b)
	if r.Final() != 5 || r.Count(Delivered) != 5 || r.per != nil {
		t.Fatalf("all delivered: final %d, stored per record %v", r.Final(), r.per != nil)
	}
	r.Set(2, Outcome{Status: Delivered}) // unchanged: still one outcome for all
	if r.per != nil {
		t.Fatal("setting the same outcome allocated")
	}
	boom := errors.New("boom")
	r.Set(3, Outcome{Status: Failed, Err: boom})
	if r.Final() != 3 || r.Err() != boom || r.Count(Failed) != 1 {
		t.Fatalf("final %d, err %v", r.Final(), r.Err())
	}
	sub := b.Slice(3, 5)
	if sub.FirstOffset() != 13 || sub.Len() != 2 || sub.Topic != "t" || sub.Partition != 3 {
		t.Fatalf("slice = %d records from %d", sub.Len(), sub.FirstOffset())
	}
	r.Merge(3, DeliveredAll(sub))
	if r.Final() != 5 {
		t.Fatalf("after merging the retried slice, final %d", r.Final())
	}
	if PendingAll(b).Final() != 0 || FailedAll(b, boom).Err() != boom {
		t.Fatal("constructors")
	}
	for s, final := range map[Status]bool{Pending: false, Failed: false, GaveUp: false, Delivered: true, Filtered: true, DeadLettered: true, Discarded: true} {
		if s.Final() != final {
			t.Errorf("%s.Final() = %v", s, s.Final())
		}
	}
}

type slowDown struct{}

func (slowDown) Error() string             { return "slow down" }
func (slowDown) RetryAfter() time.Duration { return 3 * time.Second }

func TestErrorInterfaces(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", slowDown{})
	if RetryAfter(err) != 3*time.Second || TargetUnavailable(err) {
		t.Fatalf("RetryAfter %v, TargetUnavailable %v", RetryAfter(err), TargetUnavailable(err))
	}
}
