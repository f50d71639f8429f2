package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// TestTargetErrorStorm: the target refuses every call for a while, then a
// random 30% (500s, and 503s some with Retry-After), then recovers. A
// refused batch is not accepted, so nothing may be duplicated: the checker
// counts the refusals but lets them explain no redelivery.
func TestTargetErrorStorm(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "storm", 4, "chaos-storm"
	cl := newCluster(t, topic, parts)
	c := NewChecker(inProcessChecker(committedReader(t, cl.ListenAddrs(), group), 2*time.Second))
	const (
		down = iota
		flaky
		healthy
	)
	var phase atomic.Int32
	srv := newSink(t, c, func(*sink.Event) sink.Decision {
		switch phase.Load() {
		case down:
			c.Count("target-500")
			return sink.Decision{Status: 500}
		case flaky:
			switch n := rand.IntN(100); {
			case n < 15:
				c.Count("target-500")
				return sink.Decision{Status: 500}
			case n < 25:
				c.Count("target-503")
				return sink.Decision{Status: 503}
			case n < 30:
				// Retry-After is whole seconds: the partition waits
				// a second, longer than its own backoff.
				c.Count("target-503-retry-after")
				return sink.Decision{Status: 503, RetryAfter: 1}
			}
		}
		return sink.Decision{}
	})
	eng := startEngine(t, fastTuning)
	createPipe(t, eng, pipe.Spec{Name: "storm", BootstrapServers: cl.ListenAddrs(), Topics: []string{topic},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 50, MaximumBatchingWindowInSeconds: ptr(0.02), ConsumerGroupID: group})
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 10*time.Millisecond, c)

	time.Sleep(mode(3*time.Second, 10*time.Second)) // the storm's length: pacing
	if c.Deliveries() != 0 {
		t.Fatalf("%d batches accepted while the target refused everything", c.Deliveries())
	}
	phase.Store(flaky)
	time.Sleep(mode(3*time.Second, 20*time.Second))
	phase.Store(healthy)
	progress(t, c, 20, 30*time.Second, "after the target recovered")
	allDelivered(t, prod, c, 60*time.Second)
	finish(t, c, began)
}

// TestTargetSlowerThanItsTimeout: the target's timeout is 1 s and the
// target sometimes takes 1.5 s but still accepts the batch. The client gave
// up, so it retries the batch: each such timeout explains exactly one
// duplicate batch, and first deliveries stay in order.
func TestTargetSlowerThanItsTimeout(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "slow", 4, "chaos-slow"
	cl := newCluster(t, topic, parts)
	// A batch in flight is accepted at most 1.5 s after it was sent.
	c := NewChecker(inProcessChecker(committedReader(t, cl.ListenAddrs(), group), 2*time.Second))
	var slow atomic.Bool
	slow.Store(true)
	srv := newSink(t, c, func(ev *sink.Event) sink.Decision {
		if slow.Load() && rand.IntN(100) < 5 {
			c.Timeout("target-timeout", ev)
			// The slow target itself, not synchronisation. It
			// sleeps here rather than in Decision.Delay, which ends
			// when the client hangs up: a target that already
			// committed to the work finishes it.
			time.Sleep(1500 * time.Millisecond)
		}
		return sink.Decision{}
	})
	eng := startEngine(t, fastTuning)
	createPipe(t, eng, pipe.Spec{Name: "slow", BootstrapServers: cl.ListenAddrs(), Topics: []string{topic},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL, TimeoutSeconds: 1}}, BatchSize: 20, MaximumBatchingWindowInSeconds: ptr(0.02), ConsumerGroupID: group})
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 3, 10*time.Millisecond, c)
	time.Sleep(mode(6*time.Second, 60*time.Second)) // pacing: timeouts keep happening
	slow.Store(false)
	allDelivered(t, prod, c, 60*time.Second)
	sum, _ := c.Verify()
	if sum.Faults["target-timeout"] == 0 || sum.Duplicated == 0 {
		t.Fatalf("no timeout happened (%d timeouts, %d duplicates): the scenario tested nothing", sum.Faults["target-timeout"], sum.Duplicated)
	}
	finish(t, c, began)
}

// TestSIGKILL kills `sluice serve` with SIGKILL every few seconds while
// records are produced, and restarts it on the same store. Each restart
// resumes from the group's committed offsets once the dead member's 1 s
// session expired, redelivering at most what was in flight or finished
// within the commit interval.
func TestSIGKILL(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "kill", 4, "chaos-kill"
	cl := newCluster(t, topic, parts)
	// The binary's commit interval is the default 100 ms; 200 ms more for
	// a commit's round trip to a broker slowed by -race, so a kill may
	// redeliver 1 + 30 + 2 batches per partition. Kills come at least
	// ~100 batches per partition apart, so a source that committed only
	// on franz-go's 5 s backstop, or resumed from an older offset, fails
	// the bound.
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 300 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, nil)
	config, api := serveConfig(t)
	p := startProc(t, "sluice", config, api)
	p.CLI("pipes", "create", "kill", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
		"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 10*time.Millisecond, c)

	kills := mode(10, 30)
	for i := 0; i < kills; i++ {
		// The restarted member gets the partitions once the dead one's
		// session expired; then it delivers at least a second's worth
		// (4 partitions × 100 batches of 10 ms) before the next kill.
		progress(t, c, 400, 30*time.Second, fmt.Sprintf("before kill %d", i+1))
		// Pacing: land the kill at a random point of the stream.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		f := c.Begin("sigkill")
		p.Signal(syscall.SIGKILL)
		f.End(0)
		p = startProc(t, "sluice", config, api)
	}
	progress(t, c, 40, 30*time.Second, "after the last restart")
	allDelivered(t, prod, c, 60*time.Second)
	p.Signal(syscall.SIGTERM)
	finish(t, c, began)
}

// brokerFault is one kfake fault the broker scenario injects for a while.
type brokerFault struct {
	kind  string
	fault kfake.Fault
	// trigger makes the client send the faulted request, if it would not
	// on its own.
	trigger func(*kfake.Cluster)
}

// TestBrokerFaults injects Kafka-side faults with kfake while records
// flow: fetch errors, OffsetCommit errors, Heartbeat errors, FindCoordinator
// errors after the coordinator moved, and partition leader moves. Each
// window lasts until the fault answered requests and a pacing interval
// passed, then the pipe must make progress before the next.
func TestBrokerFaults(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "broker", 4, "chaos-broker"
	cl := newCluster(t, topic, parts)
	c := NewChecker(inProcessChecker(committedReader(t, cl.ListenAddrs(), group), 2*time.Second))
	srv := newSink(t, c, nil)
	eng := startEngine(t, fastTuning)
	createPipe(t, eng, pipe.Spec{Name: "broker", BootstrapServers: cl.ListenAddrs(), Topics: []string{topic},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 20, MaximumBatchingWindowInSeconds: ptr(0.01), ConsumerGroupID: group})
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 10*time.Millisecond, c)
	progress(t, c, 40, 30*time.Second, "before the first fault")

	faults := []brokerFault{
		{kind: "fetch-not-leader", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: kerr.NotLeaderForPartition}},
		{kind: "fetch-unknown-server-error", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Err: kerr.UnknownServerError}},
		{kind: "commit-coordinator-not-available", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group, Err: kerr.CoordinatorNotAvailable}},
		{kind: "commit-rebalance-in-progress", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group, Err: kerr.RebalanceInProgress}},
		{kind: "heartbeat-rebalance-in-progress", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: group, Err: kerr.RebalanceInProgress}},
		{kind: "heartbeat-unknown-member", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: group, Err: kerr.UnknownMemberID}},
		{kind: "find-coordinator-not-available", fault: kfake.Fault{Keys: []kmsg.Key{kmsg.FindCoordinator}, Group: group, Err: kerr.CoordinatorNotAvailable},
			// Coordinators move, so the client must find the new one.
			trigger: func(c *kfake.Cluster) { c.RehashCoordinators() }},
	}
	moves := newLeaderMover(t, cl, topic, c)
	rounds := mode(1, 5)
	window := mode(1500*time.Millisecond, 5*time.Second)
	for round := 0; round < rounds; round++ {
		for _, bf := range faults {
			fault := bf.fault
			fault.Count = -1 // until removed
			// Begin reads the committed offsets before the fault can
			// stop that read.
			f := c.Begin(bf.kind)
			h := cl.Fault(fault)
			if bf.trigger != nil {
				bf.trigger(cl)
			}
			waitFor(t, 30*time.Second, bf.kind+" answering a request", func() bool { return h.Hits() > 0 })
			time.Sleep(window) // pacing: the fault persists a while
			h.Remove()
			f.End(h.Hits())
			progress(t, c, 40, 30*time.Second, "after "+bf.kind)
		}
		// Leader moves: every partition to another broker, while
		// records are produced to and fetched from it.
		for p := int32(0); p < parts; p++ {
			f := c.Begin("leader-move")
			moves.move(t, p)
			f.End(0)
		}
		progress(t, c, 40, 30*time.Second, "after the leader moves")
	}
	allDelivered(t, prod, c, 60*time.Second)
	finish(t, c, began)
}

// leaderMover moves partition leaders the way a clean election does.
//
// kfake's MoveTopicPartition bumps the partition's leader epoch without
// recording where the new epoch starts, so until the new leader writes a
// batch, kfake answers OffsetForLeaderEpoch for the old epoch with
// UNDEFINED_EPOCH_OFFSET. A real broker never does after a clean election
// (its epoch cache records the new epoch's start offset when it becomes
// leader); franz-go reads that answer as an unclean election and resumes
// from ConsumeResetOffset, offset 0 for TRIM_HORIZON, which this suite saw
// as a full redelivery of the partition. So the mover holds the consumer's
// epoch validation (kfake's SleepControl) until the new leader has written
// a record in its epoch; then kfake answers as Kafka would.
type leaderMover struct {
	cl    *kfake.Cluster
	topic string
	c     *Checker
	prod  *kgo.Client

	mu    sync.Mutex
	gates map[int32]chan struct{} // partition → closed once written in its new epoch
}

func newLeaderMover(t *testing.T, cl *kfake.Cluster, topic string, c *Checker) *leaderMover {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	m := &leaderMover{cl: cl, topic: topic, c: c, prod: prod, gates: map[int32]chan struct{}{}}
	cl.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range req.(*kmsg.OffsetForLeaderEpochRequest).Topics {
			if rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				m.mu.Lock()
				gate := m.gates[rp.Partition]
				m.mu.Unlock()
				if gate != nil {
					cl.SleepControl(func() { <-gate })
				}
			}
		}
		return nil, nil, false // kfake answers, now that it can
	})
	return m
}

// move makes another broker the leader of partition p and writes a record
// there in the new epoch, then lets epoch validations through.
func (m *leaderMover) move(t *testing.T, p int32) {
	t.Helper()
	gate := make(chan struct{})
	m.mu.Lock()
	m.gates[p] = gate
	m.mu.Unlock()
	defer func() {
		close(gate)
		m.mu.Lock()
		delete(m.gates, p)
		m.mu.Unlock()
	}()
	leader := m.cl.LeaderFor(m.topic, p)
	if err := m.cl.MoveTopicPartition(m.topic, p, (leader+1)%3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.prod.ProduceSync(ctx, &kgo.Record{Topic: m.topic, Partition: p, Key: fmt.Appendf(nil, "k-%d-move", p)}).First()
	if err != nil {
		t.Fatalf("producing after moving partition %d: %v", p, err)
	}
	m.c.Produced(r)
}

// TestRebalancesUnderLoad runs the same pipe in a second and then a third
// `sluice serve` process (each with its own store, all in one consumer
// group) while records flow, then stops them: one with SIGTERM (finish
// and commit; as a static member it keeps its place until its 1 s session
// expires, waiting for a restart) and one with SIGKILL (the same, without
// the commit). Each fault is the window from the change to
// the group settling with every partition assigned.
func TestRebalancesUnderLoad(t *testing.T) {
	began := time.Now()
	const topic, parts, group = "rebalance", 6, "chaos-rebalance"
	cl := newCluster(t, topic, parts)
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 500 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, nil)
	adm := newAdmin(t, cl.ListenAddrs())
	settled := func(n int) func() bool {
		return func() bool { return groupSettled(context.Background(), adm, group, topic, n, parts) }
	}

	members := 0
	join := func(name string) *testproc.Proc {
		t.Helper()
		f := c.Begin("member-join")
		config, api := serveConfig(t)
		p := startProc(t, name, config, api)
		p.CLI("pipes", "create", "rebalance", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
			"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
		members++
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members", members), settled(members))
		f.End(0)
		return p
	}
	leave := func(p *testproc.Proc, sig syscall.Signal, kind string) {
		t.Helper()
		f := c.Begin(kind)
		p.Signal(sig)
		members--
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members", members), settled(members))
		f.End(0)
	}

	a := join("a")
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 3, 10*time.Millisecond, c)
	for cycle := 0; cycle < mode(2, 10); cycle++ {
		progress(t, c, 60, 30*time.Second, "with one member")
		b := join("b")
		progress(t, c, 60, 30*time.Second, "with two members")
		cc := join("c")
		progress(t, c, 60, 30*time.Second, "with three members")
		leave(b, syscall.SIGTERM, "member-leave")
		progress(t, c, 60, 30*time.Second, "after b left")
		leave(cc, syscall.SIGKILL, "member-kill")
	}
	progress(t, c, 60, 30*time.Second, "with one member again")
	allDelivered(t, prod, c, 60*time.Second)
	a.Signal(syscall.SIGTERM)
	finish(t, c, began)
}

// TestPartitionsAddedMidRun adds partitions to the topic while producing
// to them: the pipe must notice them (on its metadata refresh, a second in
// fastTuning) and deliver their records too.
func TestPartitionsAddedMidRun(t *testing.T) {
	began := time.Now()
	const topic, group = "grow", "chaos-grow"
	const parts, added = 3, 3
	cl := newCluster(t, topic, parts)
	c := NewChecker(inProcessChecker(committedReader(t, cl.ListenAddrs(), group), 2*time.Second))
	srv := newSink(t, c, nil)
	eng := startEngine(t, fastTuning)
	createPipe(t, eng, pipe.Spec{Name: "grow", BootstrapServers: cl.ListenAddrs(), Topics: []string{topic},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 20, MaximumBatchingWindowInSeconds: ptr(0.01), ConsumerGroupID: group})
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 10*time.Millisecond, c)
	progress(t, c, 40, 30*time.Second, "before partitions are added")

	admCl, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	f := c.Begin("partitions-added")
	resp, err := kadm.NewClient(admCl).CreatePartitions(context.Background(), added, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	f.End(0)
	prod.SetPartitions(parts + added)
	// The new partitions' records arrive within a few metadata refreshes
	// and a rebalance.
	waitFor(t, 20*time.Second, "deliveries from the added partitions", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, d := range c.deliveries {
			if d.tp.Partition >= parts {
				return true
			}
		}
		return false
	})
	time.Sleep(mode(2*time.Second, 20*time.Second)) // pacing: keep producing to all partitions
	allDelivered(t, prod, c, 60*time.Second)
	finish(t, c, began)
}
