package source

import (
	"context"
	"errors"
	"github.com/sluice-dev/sluice/internal/batch"
	"slices"
	"sync"
	"testing"
	"time"
)

// heldLog records what OnAssignment reported.
type heldLog struct {
	mu    sync.Mutex
	calls int
	held  map[string][]int32
}

func (h *heldLog) on(held map[string][]int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	h.held = held
}

func (h *heldLog) get(topic string) (calls int, ps []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps = slices.Clone(h.held[topic])
	slices.Sort(ps)
	return h.calls, ps
}

// TestStaticMemberRestartKeepsAssignment restarts one of two static
// members: the new incarnation takes its predecessor's partitions and the
// other member's assignment never changes. (A dynamic member leaves on
// stop, and the other one takes its partitions.)
func TestStaticMemberRestartKeepsAssignment(t *testing.T) {
	const topic, group = "static", "g-static"
	addrs := newCluster(t, topic, 4)
	produce(t, addrs, topic, 4, 20, 10, labeled(10))
	ok := func(context.Context, *batch.Batch) error { return nil }
	config := func(id string, log *heldLog) Config {
		cfg := testConfig(addrs, topic, group)
		cfg.InstanceID = id
		// Long enough that only a restart, never an expiry, explains
		// what the group does.
		cfg.SessionTimeout = 20 * time.Second
		cfg.OnAssignment = log.on
		return cfg
	}
	var aLog, bLog, b2Log heldLog
	a := start(t, config("a", &aLog), ok)
	b := start(t, config("b", &bLog), ok)
	split := func() bool {
		_, pa := aLog.get(topic)
		_, pb := bLog.get(topic)
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == 4
	}
	waitFor(t, 30*time.Second, "both members to hold partitions", split)
	// Settled: a cooperative rebalance takes two rounds.
	settled := func() bool {
		c1, _ := aLog.get(topic)
		time.Sleep(time.Second)
		c2, _ := aLog.get(topic)
		return c1 == c2 && split()
	}
	waitFor(t, 30*time.Second, "the group to settle", settled)
	aCalls, aHeld := aLog.get(topic)
	_, bHeld := bLog.get(topic)

	b.stop() // a static member does not leave the group
	b2 := start(t, config("b", &b2Log), ok)
	waitFor(t, 30*time.Second, "the restarted member to hold partitions", func() bool {
		_, p := b2Log.get(topic)
		return len(p) > 0
	})
	_, b2Held := b2Log.get(topic)
	if !slices.Equal(b2Held, bHeld) {
		t.Errorf("restarted member holds %v, its predecessor held %v: the restart moved partitions", b2Held, bHeld)
	}
	// Give a rebalance, if one were coming, time to reach the other member.
	time.Sleep(time.Second)
	if calls, held := aLog.get(topic); calls != aCalls || !slices.Equal(held, aHeld) {
		t.Errorf("the other member's assignment changed (%d calls, %v → %d calls, %v): the restart moved partitions",
			aCalls, aHeld, calls, held)
	}
	b2.stop()
	a.stop()
}

// TestStaticMemberFenced starts a second source with the first one's
// instance id: the newcomer takes over, and the first one's Run returns
// ErrFenced instead of rejoining and fencing the newcomer back.
func TestStaticMemberFenced(t *testing.T) {
	const topic, group = "fenced", "g-fenced"
	addrs := newCluster(t, topic, 2)
	produce(t, addrs, topic, 2, 20, 10, labeled(10))
	ok := func(context.Context, *batch.Batch) error { return nil }
	var firstLog, secondLog heldLog
	cfg := testConfig(addrs, topic, group)
	cfg.InstanceID = "twin"
	cfg.SessionTimeout = 20 * time.Second
	cfg.OnAssignment = firstLog.on
	first, err := New(cfg, adapt(ok))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(ctx) }()
	waitFor(t, 30*time.Second, "the first member to hold both partitions", func() bool {
		_, p := firstLog.get(topic)
		return len(p) == 2
	})

	cfg.OnAssignment = secondLog.on
	second := start(t, cfg, ok)
	select {
	case err := <-firstDone:
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("the fenced source's Run = %v, want ErrFenced", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first source was never fenced")
	}
	if _, p := firstLog.get(topic); len(p) != 0 {
		t.Errorf("the fenced source still reports holding %v", p)
	}
	waitFor(t, 30*time.Second, "the newcomer to hold both partitions", func() bool {
		_, p := secondLog.get(topic)
		return len(p) == 2
	})
	// It keeps them: the fenced one did not come back for them.
	time.Sleep(time.Second)
	if calls, p := secondLog.get(topic); len(p) != 2 {
		t.Errorf("the newcomer holds %v after %d changes, want both partitions", p, calls)
	}
	second.stop()
}

func TestDefaultRebalanceTimeout(t *testing.T) {
	cfg := testConfig([]string{"127.0.0.1:1"}, "t", "g")
	cfg.RebalanceTimeout = 0
	cfg.StopGrace = 0
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.RebalanceTimeout != DefaultStopGrace+10*time.Second {
		t.Errorf("default rebalance timeout = %s, want the stop grace plus 10s", cfg.RebalanceTimeout)
	}
}
