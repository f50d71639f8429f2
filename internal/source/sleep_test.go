package source

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

func runUntilIdle(t *testing.T, cfg Config, h func(context.Context, *batch.Batch) error, within time.Duration) (*Idle, error) {
	t.Helper()
	s, err := New(cfg, adapt(h))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	err = s.Run(ctx)
	var idle *Idle
	if errors.As(err, &idle) {
		return idle, nil
	}
	return nil, err
}

// TestIdleSourceSleeps: a source that delivered everything and then saw
// nothing for SleepAfter returns an *Idle naming, for every partition, the
// offset the group committed, and has left the group; an empty partition
// without a commit is watched from its start (TRIM_HORIZON).
func TestIdleSourceSleeps(t *testing.T) {
	addrs := newCluster(t, "t", 3)
	produce(t, addrs, "t", 2, 7, 7, labeled(10)) // partitions 0 and 1; 2 stays empty
	cfg := testConfig(addrs, "t", "g")
	cfg.SleepAfter = 700 * time.Millisecond
	var delivered int
	start := time.Now()
	idle, err := runUntilIdle(t, cfg, func(_ context.Context, b *batch.Batch) error {
		delivered += b.Len()
		return nil
	}, 30*time.Second)
	if err != nil || idle == nil {
		t.Fatalf("Run = %v, want an *Idle", err)
	}
	if delivered != 14 {
		t.Fatalf("delivered %d records before sleeping, want 14", delivered)
	}
	want := map[int32]int64{0: 7, 1: 7, 2: 0}
	if got := idle.Offsets["t"]; !maps.Equal(got, want) {
		t.Fatalf("idle offsets %v, want %v", got, want)
	}
	if c := committed(t, addrs, "g", "t"); c[0] != 7 || c[1] != 7 {
		t.Fatalf("committed %v, want 7 on partitions 0 and 1", c)
	}
	if idle.For < cfg.SleepAfter || time.Since(start) > 20*time.Second {
		t.Fatalf("idle for %s after %s, want at least %s", idle.For, time.Since(start), cfg.SleepAfter)
	}
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	groups, err := adm.DescribeGroups(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if m := groups["g"].Members; len(m) != 0 {
		t.Fatalf("the sleeping source is still in the group: %d members", len(m))
	}
}

// TestSharedSourcesSleepWithTheirShares: members sharing a group each
// sleep with the partitions they hold (whether together or one after the
// other, when the one left awake gets the sleeper's share), and together
// the sleepers watch every partition.
func TestSharedSourcesSleepWithTheirShares(t *testing.T) {
	addrs := newCluster(t, "t", 4)
	produce(t, addrs, "t", 4, 5, 5, labeled(10))
	cfg := testConfig(addrs, "t", "g")
	cfg.SleepAfter = time.Second
	nop := func(context.Context, *batch.Batch) error { return nil }
	type outcome struct {
		idle *Idle
		err  error
	}
	results := make(chan outcome, 2)
	for range 2 {
		go func() {
			idle, err := runUntilIdle(t, cfg, nop, 60*time.Second)
			results <- outcome{idle, err}
		}()
	}
	watched := map[int32]int64{}
	for range 2 {
		o := <-results
		if o.err != nil || o.idle == nil {
			t.Fatalf("Run = %v, want an *Idle", o.err)
		}
		if o.idle.Partitions["t"] != 4 {
			t.Fatalf("idle partitions %v, want t: 4", o.idle.Partitions)
		}
		t.Logf("a member slept watching %v", o.idle.Offsets["t"])
		maps.Copy(watched, o.idle.Offsets["t"])
	}
	if want := map[int32]int64{0: 5, 1: 5, 2: 5, 3: 5}; !maps.Equal(watched, want) {
		t.Fatalf("sleepers watch %v, want %v", watched, want)
	}
}

// TestMemberHoldingNothingStaysAwake: a member the group gave no partition
// has no share to watch, so it stays in the group for when it gets one.
func TestMemberHoldingNothingStaysAwake(t *testing.T) {
	addrs := newCluster(t, "t", 1)
	nop := func(context.Context, *batch.Batch) error { return nil }
	a := start(t, testConfig(addrs, "t", "g"), nop) // never sleeps
	waitFor(t, 20*time.Second, "the first member to hold the partition", func() bool { return len(a.s.held.snapshot()) == 1 })
	cfg := testConfig(addrs, "t", "g")
	cfg.SleepAfter = 300 * time.Millisecond
	idle, err := runUntilIdle(t, cfg, nop, 3*time.Second)
	if idle != nil || err != nil {
		t.Fatalf("Run = %v, %v; want the member holding nothing to run until its ctx ends", idle, err)
	}
}

// TestLatestWithoutCommitStaysAwake: a LATEST source with a partition that
// has no commit stays awake: after a rejoin the group would start that
// partition at the end again, past the record that woke it.
func TestLatestWithoutCommitStaysAwake(t *testing.T) {
	addrs := newCluster(t, "t", 1)
	cfg := testConfig(addrs, "t", "g")
	cfg.StartOffset = kgo.NewOffset().AtEnd()
	cfg.SleepAfter = 300 * time.Millisecond
	idle, err := runUntilIdle(t, cfg, func(context.Context, *batch.Batch) error { return nil }, 3*time.Second)
	if idle != nil || err != nil {
		t.Fatalf("Run = %v, %v; want it to run until its ctx ends", idle, err)
	}
}
