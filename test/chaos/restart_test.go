package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// stallMeter watches the checker's accepted batches and measures how long
// deliveries stopped after a mark: when they resumed, and the longest gap
// between two of them since.
type stallMeter struct {
	c    *Checker
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	markAt  time.Time
	last    time.Time // the latest delivery (or the mark)
	resumed time.Time // the first delivery after the mark
	maxGap  time.Duration
}

func watchDeliveries(t *testing.T, c *Checker) *stallMeter {
	m := &stallMeter{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		seen := c.Deliveries()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case now := <-tick.C:
				n := c.Deliveries()
				if n == seen {
					continue
				}
				seen = n
				m.mu.Lock()
				if !m.markAt.IsZero() {
					if m.resumed.IsZero() {
						m.resumed = now
					}
					m.maxGap = max(m.maxGap, now.Sub(m.last))
				}
				m.last = now
				m.mu.Unlock()
			}
		}
	}()
	t.Cleanup(m.Stop)
	return m
}

// Mark starts measuring at at.
func (m *stallMeter) Mark(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.markAt, m.last, m.resumed, m.maxGap = at, at, time.Time{}, 0
}

// Stop ends the watch; Result reads what it measured.
func (m *stallMeter) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// Result is the time from the mark to the first delivery after it (-1 if
// none) and the longest time without a delivery since the mark.
func (m *stallMeter) Result() (resume, longest time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.resumed.IsZero() {
		return -1, time.Since(m.markAt)
	}
	return m.resumed.Sub(m.markAt), max(m.maxGap, time.Since(m.last))
}

// TestKillLoop is how Kubernetes or systemd treat a process: SIGKILL
// `sluice serve` at random 3–8 s intervals, at least 25 times, restarting
// it on the same data dir each time, while records are produced and the
// target fails one call in five. Nothing may be lost. Each restart takes
// the killed process's place in the consumer group (static membership), so
// deliveries resume within seconds of the last restart instead of after
// the group's rebalance timeout; the figures are printed with the summary.
func TestKillLoop(t *testing.T) {
	began := time.Now()
	const topic, parts, group, session = "killloop", 4, "chaos-killloop", 6 * time.Second
	cl := newCluster(t, topic, parts)
	// As TestSIGKILL: a kill may redeliver what was in flight and what
	// finished within a commit interval (plus its round trip).
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 300 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, func(*sink.Event) sink.Decision {
		if rand.IntN(5) == 0 {
			c.Count("target-500")
			return sink.Decision{Status: 500}
		}
		return sink.Decision{}
	})
	config, api := serveConfigSession(t, session.String())
	p := startProc(t, "sluice", config, api)
	p.CLI("pipes", "create", "killloop", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
		"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
	// 800 records/s: what the pipe delivers with one call in five failing
	// and backing off, so the backlog after the last kill stays small.
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 2, 10*time.Millisecond, c)
	progress(t, c, 40, 30*time.Second, "before the first kill")
	meter := watchDeliveries(t, c)

	kills := mode(25, 60)
	var lastKill, lastStart time.Time
	for i := 0; i < kills; i++ {
		// Pacing, not synchronisation: the loop kills on a timer
		// whether or not the process got anywhere, as a crash loop does.
		time.Sleep(3*time.Second + time.Duration(rand.IntN(5000))*time.Millisecond)
		f := c.Begin("sigkill")
		lastKill = time.Now()
		p.Signal(syscall.SIGKILL)
		f.End(0)
		p = startProc(t, "sluice", config, api)
		lastStart = time.Now()
		// From the restart: a batch accepted just before the kill may
		// be counted a tick later.
		meter.Mark(lastStart)
	}
	// Keep producing after the last restart, so a stall shows as lag.
	waitFor(t, 5*time.Minute, "deliveries after the last restart", func() bool {
		resume, _ := meter.Result()
		return resume >= 0
	})
	time.Sleep(10 * time.Second)
	resume, longest := meter.Result()
	restart := lastStart.Sub(lastKill)
	figure(t, "%d SIGKILLs 3–8 s apart; after the last, deliveries resumed %.2f s after the restarted process answered (%.2f s after the kill), longest stall %.2f s; goal: within the %s session + 5 s",
		kills, resume.Seconds(), (restart + resume).Seconds(), (restart + longest).Seconds(), session)
	allDelivered(t, prod, c, 90*time.Second)
	p.Signal(syscall.SIGTERM)
	meter.Stop()
	// Not a timing test: the bound is what the pile-up of dead members
	// this scenario guards against looks like (franz-go's 60 s rebalance
	// timeout), far from the seconds a restart takes.
	if restart+longest > time.Minute {
		t.Errorf("deliveries stalled for %s after the last kill: the group waited for dead members", (restart + longest).Round(time.Second))
	}
	finish(t, c, began)
}

// assignment reads which partitions of topic each member of group holds,
// by group instance id, and whether the group is Stable.
func assignment(ctx context.Context, adm *kadm.Client, group, topic string) (map[string][]int32, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, false, err
	}
	g, ok := gs[group]
	if !ok || g.Err != nil {
		return nil, false, fmt.Errorf("describe %s: %v", group, g.Err)
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		id := m.MemberID
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, tp := range a.Topics {
			if tp.Topic == topic {
				ps := slices.Clone(tp.Partitions)
				slices.Sort(ps)
				out[id] = ps
			}
		}
	}
	return out, g.State == "Stable", nil
}

// TestRestartKeepsPartitions restarts one of two `sluice serve` processes
// in one consumer group (SIGTERM, start): the restarted one takes back its
// own partitions and the other's never move, watched every few
// milliseconds through the restart. (Kafka lets a static member that
// rejoins a Stable group with the same protocol in without a rebalance;
// kfake also compares the join's metadata, which holds the partitions a
// cooperative member owned and so differs after a restart, and rebalances
// briefly. The sticky assignment then gives every member what it had, so
// the check is on partitions moved; the rebalance is reported.)
func TestRestartKeepsPartitions(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "restart", 6, "chaos-restart"
	cl := newCluster(t, topic, parts)
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 500 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, nil)
	adm := newAdmin(t, cl.ListenAddrs())

	// A session long enough for a restart: a static member that stopped
	// keeps its partitions this long, waiting for it.
	start := func(name string) (*testproc.Proc, string, string) {
		config, api := serveConfigSession(t, "20s")
		p := startProc(t, name, config, api)
		p.CLI("pipes", "create", "restart", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
			"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
		return p, config, api
	}
	a, _, _ := start("a")
	// a's id in the group: its group instance id, or (for a build without
	// static membership) its member id, which stays while it lives.
	waitFor(t, 60*time.Second, "the group to settle with a alone", func() bool {
		return groupSettled(context.Background(), adm, group, topic, 1, parts)
	})
	alone, _, err := assignment(context.Background(), adm, group, topic)
	if err != nil || len(alone) != 1 {
		t.Fatalf("assignment with a alone: %v, %v", alone, err)
	}
	var aID string
	for id := range alone {
		aID = id
	}
	b, bConfig, bAPI := start("b")
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 3, 10*time.Millisecond, c)
	waitFor(t, 60*time.Second, "the group to settle with 2 members", func() bool {
		return groupSettled(context.Background(), adm, group, topic, 2, parts)
	})
	before, _, err := assignment(context.Background(), adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 {
		t.Fatalf("assignment %v, want two members", before)
	}
	progress(t, c, 60, 30*time.Second, "with two members")
	var bID string
	for id := range before {
		if id != aID {
			bID = id
		}
	}

	// Watch a through the restart: it may never hold a partition it did
	// not hold before.
	var (
		watchMu  sync.Mutex
		moved    []string
		unstable int
	)
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			now, stable, err := assignment(context.Background(), adm, group, topic)
			if err != nil {
				continue
			}
			watchMu.Lock()
			if !stable {
				unstable++
			}
			for _, p := range now[aID] {
				if !slices.Contains(before[aID], p) {
					moved = append(moved, fmt.Sprintf("%s-%d", topic, p))
				}
			}
			watchMu.Unlock()
		}
	}()

	f := c.Begin("member-restart")
	b.Signal(syscall.SIGTERM)
	// Pacing: a restart under systemd or Kubernetes takes a moment, long
	// enough for a group to rebalance a departed member's partitions.
	time.Sleep(2 * time.Second)
	b = startProc(t, "b", bConfig, bAPI)
	progress(t, c, 60, 30*time.Second, "after b restarted")
	waitFor(t, 30*time.Second, "the group to settle with 2 members again", func() bool {
		return groupSettled(context.Background(), adm, group, topic, 2, parts)
	})
	f.End(0)
	close(stopWatch)
	<-watchDone
	after, _, err := assignment(context.Background(), adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	watchMu.Lock()
	if len(moved) > 0 {
		slices.Sort(moved)
		t.Errorf("the other member took partitions during the restart: %s", strings.Join(slices.Compact(moved), ", "))
	}
	looks := unstable
	watchMu.Unlock()
	if !slices.Equal(after[aID], before[aID]) {
		t.Errorf("the other member held %v before the restart and %v after", before[aID], after[aID])
	}
	for id, ps := range after {
		if id != aID && !slices.Equal(ps, before[bID]) {
			t.Errorf("the restarted member (%s) holds %v, it held %v before", id, ps, before[bID])
		}
	}
	allDelivered(t, prod, c, 60*time.Second)
	a.Signal(syscall.SIGTERM)
	b.Signal(syscall.SIGTERM)
	figure(t, "restarting one of 2 members moved 0 of %d partitions (the group was not Stable in %d looks 20 ms apart)", parts, looks)
	finish(t, c, began)
}
