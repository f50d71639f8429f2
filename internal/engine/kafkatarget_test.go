package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// readCommitted reads every record of topic a read_committed consumer
// sees, until none arrived for quiet.
func readCommitted(t *testing.T, addrs []string, topic string, quiet time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		fs := cl.PollFetches(ctx)
		cancel()
		if fs.NumRecords() == 0 {
			return out
		}
		out = append(out, fs.Records()...)
	}
}

// perKeyInOrder checks that each key's values appear in the order they
// were produced in (value "p<P>-<i>": i rises per key and partition), with
// repeats allowed only of a value already seen.
func perKeyInOrder(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	last := map[string]int{}
	for _, r := range recs {
		var p, i int
		if _, err := fmt.Sscanf(string(r.Value), "p%d-%d", &p, &i); err != nil {
			t.Fatalf("value %q", r.Value)
		}
		k := fmt.Sprintf("%d/%s", p, r.Key)
		if prev, ok := last[k]; ok && i < prev {
			t.Fatalf("key %s: value %d after %d", k, i, prev)
		}
		last[k] = i
	}
}

// A Kafka target copies a topic into another, with keys and headers, and
// a restart in the middle loses nothing (AT_LEAST_ONCE).
func TestKafkaTargetAtLeastOnceThroughARestart(t *testing.T) {
	const parts, n = 3, 200
	c := newCluster(t, "in", parts)
	createTopic(t, c.ListenAddrs(), "out", 2)
	produce(t, c.ListenAddrs(), "in", parts, n, time.Time{})
	db := filepath.Join(t.TempDir(), "s.db")
	h := startEngine(t, c, db)
	p := h.create(pipe.Spec{Name: "copy", Topics: []string{"in"}, BatchSize: 25, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target: pipe.Target{Kafka: &pipe.KafkaTarget{Topic: "out"}}})
	waitFor(t, 30*time.Second, "some records committed", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return got[0]+got[1]+got[2] > 0
	})
	h.stop()
	h = startEngine(t, c, db)
	waitFor(t, 30*time.Second, "the group committed to the end", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return got[0] == n && got[1] == n && got[2] == n
	})
	out := readCommitted(t, h.addrs, "out", time.Second)
	seen := map[string]bool{}
	for _, r := range out {
		seen[string(r.Value)] = true
		if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
			t.Fatalf("record %s: headers %v, want the source's", r.Value, r.Headers)
		}
	}
	if len(seen) != parts*n {
		t.Fatalf("%d distinct records in the output (of %d read), want %d", len(seen), len(out), parts*n)
	}
	perKeyInOrder(t, out)
	ctx := context.Background()
	got, err := h.eng.GetPipe(ctx, "copy")
	if err != nil || strings.HasPrefix(got.Status.LastProcessingResult, pipe.ProblemPrefix) {
		t.Fatalf("pipe %+v, %v", got.Status, err)
	}
}

// EXACTLY_ONCE: through repeated stops mid-stream, a read_committed
// reader of the output sees every source record exactly once.
func TestKafkaTargetExactlyOnceThroughRestarts(t *testing.T) {
	const parts, n = 2, 300
	c := newCluster(t, "in", parts)
	createTopic(t, c.ListenAddrs(), "out", 2)
	produce(t, c.ListenAddrs(), "in", parts, n, time.Time{})
	db := filepath.Join(t.TempDir(), "s.db")
	member := func(cfg *engine.Config) { cfg.Member = "m1" }
	h := startEngine(t, c, db, member)
	p := h.create(pipe.Spec{Name: "eos", Topics: []string{"in"}, BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target: pipe.Target{Kafka: &pipe.KafkaTarget{Topic: "out", Delivery: pipe.ExactlyOnce}}})
	for range 3 {
		time.Sleep(150 * time.Millisecond)
		h.stop()
		h = startEngine(t, c, db, member)
	}
	waitFor(t, 60*time.Second, "the group committed to the end", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return got[0] == n && got[1] == n
	})
	out := readCommitted(t, h.addrs, "out", time.Second)
	count := map[string]int{}
	for _, r := range out {
		count[string(r.Value)]++
	}
	dups := 0
	for _, c := range count {
		if c > 1 {
			dups++
		}
	}
	if len(count) != parts*n || dups != 0 || len(out) != parts*n {
		t.Fatalf("read_committed output: %d records, %d distinct, %d duplicated; want each of %d exactly once", len(out), len(count), dups, parts*n)
	}
	perKeyInOrder(t, out)
}

// EXACTLY_ONCE through produce failures: while the output topic refuses
// writes, transactions abort, the pipe shows why, and nothing reaches a
// read_committed reader twice once it takes them again.
func TestKafkaTargetExactlyOnceThroughProduceFailures(t *testing.T) {
	const parts, n = 2, 100
	c := newCluster(t, "in", parts)
	createTopic(t, c.ListenAddrs(), "out", 1)
	produce(t, c.ListenAddrs(), "in", parts, n, time.Time{})
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "out", Err: kerr.TopicAuthorizationFailed, Count: -1})
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "eos", Topics: []string{"in"}, BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target: pipe.Target{Kafka: &pipe.KafkaTarget{Topic: "out", Delivery: pipe.ExactlyOnce}}})
	ctx := context.Background()
	waitFor(t, 30*time.Second, "the pipe to show the refused writes", func() bool {
		got, err := h.eng.GetPipe(ctx, "eos")
		return err == nil && strings.Contains(got.Status.LastProcessingResult, "EXACTLY_ONCE transaction aborted") &&
			strings.Contains(got.Status.LastProcessingResult, "WRITE")
	})
	if got := committed(t, h.addrs, p.UUID); got[0]+got[1] != 0 {
		t.Fatalf("offsets %v committed while every produce failed", got)
	}
	fault.Remove()
	waitFor(t, 30*time.Second, "the group committed to the end", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return got[0] == n && got[1] == n
	})
	out := readCommitted(t, h.addrs, "out", time.Second)
	seen := map[string]int{}
	for _, r := range out {
		seen[string(r.Value)]++
	}
	if len(out) != parts*n || len(seen) != parts*n {
		t.Fatalf("read_committed: %d records, %d distinct, want %d once each", len(out), len(seen), parts*n)
	}
	waitFor(t, 10*time.Second, "the problem to clear", func() bool {
		got, err := h.eng.GetPipe(ctx, "eos")
		return err == nil && got.Status.LastProcessingResult == pipe.ResultOK
	})
}
