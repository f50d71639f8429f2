package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// The ordering scenarios' pipe: batches of 10 cut after 20 ms, up to 32 in
// flight across the pipe, to a target that takes orderingSinkDelay plus up
// to orderingSinkJitter per call, so a partition's backlog after a restart
// or a storm is delivered by several batches at once, and they finish out
// of order.
const (
	orderingBatch       = 10
	orderingConcurrency = 32
	orderingSinkDelay   = 5 * time.Millisecond
	orderingSinkJitter  = 10 * time.Millisecond
	// orderingWindow is the keyed worker's window the pipe gets by default
	// (source.Config.MaxInFlightRecords: 100 batches).
	orderingWindow = 100 * orderingBatch
	// orderingKeys is the recurring keys per partition and
	// orderingKeyless how rare a record without a key is (one in that
	// many): few keys, so each recurs every few dozen records and both
	// the per-key order and a keyless record's place are checked often.
	orderingKeys    = 30
	orderingKeyless = 50
)

// TestOrdering runs a KEY and a NONE pipe in `sluice serve` under the
// faults that redeliver: SIGKILLs with restarts (one during a target error
// storm, when finished batches wait behind refused ones in the window),
// members joining and leaving (SIGTERM) or dying (SIGKILL), and the
// storm itself, 500s and 429s (some with Retry-After) for a couple of
// seconds, which also halves the pipe's concurrency. Then nothing may be
// lost, the group's commits must reach the end of every partition, and the
// checker verifies the ordering's promise on first deliveries (KEY: per
// partition and key, and keyless records in their place; NONE: none) and
// bounds the duplicates in records (Checker.bound).
func TestOrdering(t *testing.T) {
	for _, ordering := range []string{pipe.OrderingKey, pipe.OrderingNone} {
		t.Run(ordering, func(t *testing.T) { orderingScenario(t, ordering) })
	}
}

func orderingScenario(t *testing.T, ordering string) {
	began := time.Now()
	topic := "ordering-" + strings.ToLower(ordering)
	group := "chaos-" + topic
	const parts = 4
	cl := newCluster(t, topic, parts)
	committed := committedReader(t, cl.ListenAddrs(), group)
	// CommitPeriod: the binary's 100 ms commit interval plus a commit's
	// round trip and the target's answer on its way back, under load. In
	// KEY and NONE ordering the duplicates are bounded in records: the
	// window, plus what the target accepted from CommitPeriod before the
	// fault to its end (Checker.bound).
	c := NewChecker(CheckerConfig{Committed: committed, InFlight: time.Second, MinBatchTime: orderingSinkDelay,
		CommitPeriod: 500 * time.Millisecond, Slack: 2, Ordering: ordering, Window: orderingWindow, BatchSize: orderingBatch})

	var storm atomic.Bool
	var stormCalls, refused atomic.Int64
	srv, gauge := newGaugedSink(t, c, orderingSinkDelay, orderingSinkJitter, func(*sink.Event) sink.Decision {
		if !storm.Load() {
			return sink.Decision{}
		}
		stormCalls.Add(1)
		n := rand.IntN(100)
		if n < 35 {
			refused.Add(1)
		}
		switch {
		case n < 15:
			c.Count("target-500")
			return sink.Decision{Status: 500}
		case n < 30:
			c.Count("target-429")
			return sink.Decision{Status: 429}
		case n < 35:
			c.Count("target-429-retry-after")
			return sink.Decision{Status: 429, RetryAfter: 1}
		}
		return sink.Decision{}
	})
	adm := newAdmin(t, cl.ListenAddrs())
	members := 0
	settled := func() bool { return groupSettled(context.Background(), adm, group, topic, members, parts) }
	settle := func(what string) {
		t.Helper()
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members %s", members, what), settled)
	}
	// start runs a member with a store of its own and the pipe in it.
	start := func(name string) (*testproc.Proc, string, string) {
		t.Helper()
		config, api := serveConfig(t)
		p := startProc(t, name, config, api)
		p.CLI("pipes", "create", topic, "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
			"--target", srv.URL, "--batch-size", fmt.Sprint(orderingBatch), "--batching-window", "20ms",
			"--ordering", ordering, "--max-concurrency", fmt.Sprint(orderingConcurrency), "--consumer-group-id", group)
		members++
		return p, config, api
	}
	join := func(name string) *testproc.Proc {
		t.Helper()
		f := c.Begin("member-join")
		p, _, _ := start(name)
		settle("after " + name + " joined")
		f.End(0)
		return p
	}
	leave := func(p *testproc.Proc, sig syscall.Signal, kind string) {
		t.Helper()
		f := c.Begin(kind)
		p.Signal(sig)
		members--
		settle("after " + p.Name + " left")
		f.End(0)
	}

	a, aConfig, aAPI := start("a")
	settle("with a alone")
	// The commits, every 50 ms: none may pass a record the target has not
	// accepted (Checker.SampleCommits).
	sampling, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-sampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.SampleCommits(ctx)
			cancel()
		}
	}()
	stopSampling := func() {
		select {
		case <-sampling:
		default:
			close(sampling)
		}
		<-sampled
	}
	t.Cleanup(stopSampling)
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 3, 10*time.Millisecond, c, withKeys(orderingKeys, orderingKeyless))
	kills := 0
	// kill SIGKILLs a at a random point of the stream and restarts it on
	// its store: it takes its own place in the group back (static
	// membership) and resumes from the group's commits.
	kill := func() {
		t.Helper()
		// Pacing: land the kill at a random point of the stream.
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		f := c.Begin("sigkill")
		a.Signal(syscall.SIGKILL)
		f.End(0)
		kills++
		a = startProc(t, "a", aConfig, aAPI)
	}
	progress(t, c, 100, 30*time.Second, "before the first fault")

	for cycle := 0; cycle < mode(1, 5); cycle++ {
		kill()
		progress(t, c, 150, 30*time.Second, "after a restarted")
		kill()
		progress(t, c, 150, 30*time.Second, "after a restarted")

		b := join("b")
		progress(t, c, 100, 30*time.Second, "with two members")
		kill() // a dies while b holds half the partitions
		progress(t, c, 100, 30*time.Second, "after a restarted beside b")
		leave(b, syscall.SIGTERM, "member-leave")
		progress(t, c, 100, 30*time.Second, "after b left")

		// The storm, with a kill in it: refused batches are retried with
		// backoff while later ones of their partition finish, so the
		// window holds finished records behind unfinished ones, and the
		// commit must not pass them.
		storm.Store(true)
		time.Sleep(mode(1500*time.Millisecond, 5*time.Second)) // pacing: the storm's length
		kill()
		time.Sleep(mode(1500*time.Millisecond, 5*time.Second))
		storm.Store(false)
		progress(t, c, 150, 30*time.Second, "after the storm")

		cc := join("c")
		progress(t, c, 100, 30*time.Second, "with two members")
		leave(cc, syscall.SIGKILL, "member-kill")
		progress(t, c, 100, 30*time.Second, "after c died")
		kill()
		progress(t, c, 150, 30*time.Second, "after the last restart")
	}
	allDelivered(t, prod, c, 60*time.Second)
	committedToEnd(t, adm, committed, topic, parts, 30*time.Second)
	stopSampling()
	a.Signal(syscall.SIGTERM)

	sum, err := c.Verify()
	peak, peakPart, calls := gauge.result()
	figure(t, "%d records (%d produced without a key), %d duplicates in %d batches (worst fault %d records, bound %d), %d SIGKILLs of a, storm: %d of %d calls refused, %d target calls in all, peak %d batches in flight at the sink (%d of one partition), %d commit samples checked",
		sum.Produced, sum.Keyless, sum.Duplicated, sum.DuplicateBatches, sum.WorstFault, sum.WorstBound, kills, refused.Load(), stormCalls.Load(), calls, peak, peakPart, c.Samples())
	if ordering == pipe.OrderingKey && err == nil {
		figure(t, "%d (partition, key) sequences checked in offset order, %d keyless records checked in their place", sum.KeySequences, sum.Keyless)
	}
	if peakPart < 2 {
		t.Errorf("at most %d batch of a partition was in flight at once: the scenario did not test %s ordering's concurrency", peakPart, ordering)
	}
	finish(t, c, began)
}

// committedToEnd waits until the group's commits reach the end offsets of
// every one of topic's parts partitions: everything delivered is also
// committed, by the running member and not by a shutdown.
func committedToEnd(t *testing.T, adm *kadm.Client, committed func(context.Context) (map[TP]int64, error), topic string, parts int, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	end := map[TP]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[TP{o.Topic, o.Partition}] = o.Offset })
	var got map[TP]int64
	reached := func() bool {
		if got, err = committed(ctx); err != nil {
			return false
		}
		for tp, e := range end {
			if got[tp] != e {
				return false
			}
		}
		return len(end) == parts
	}
	for deadline := time.Now().Add(timeout); !reached(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s after every record was delivered the group's commits are %v (err %v), the partitions end at %v", timeout, got, err, end)
		}
	}
}

// flightGauge counts the deliveries the target is handling at once, in all
// and per partition.
type flightGauge struct {
	mu       sync.Mutex
	now      int
	perPart  map[string]int
	peak     int
	peakPart int
	calls    int
}

func (g *flightGauge) enter(parts []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.now++
	g.peak = max(g.peak, g.now)
	for _, p := range parts {
		g.perPart[p]++
		g.peakPart = max(g.peakPart, g.perPart[p])
	}
}

func (g *flightGauge) leave(parts []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now--
	for _, p := range parts {
		g.perPart[p]--
	}
}

// result is the most deliveries in flight at once, the most of one
// partition, and the calls in all.
func (g *flightGauge) result() (peak, peakPart, calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak, g.peakPart, g.calls
}

// newGaugedSink is newSink with a pacing delay of its own, delay plus a
// random part of jitter, and a gauge of the deliveries in flight, from a
// request's arrival to its answer (refused ones too).
func newGaugedSink(t *testing.T, c *Checker, delay, jitter time.Duration, decide func(*sink.Event) sink.Decision) (*httptest.Server, *flightGauge) {
	t.Helper()
	s := sink.New()
	s.Keep = false
	s.OnBatch = c.Delivered
	s.Decide = func(ev *sink.Event) sink.Decision {
		start := time.Now()
		d := decide(ev)
		// As in newSink: the pacing is a Decision.Delay, which ends
		// without accepting when the client hangs up.
		if rest := delay + rand.N(jitter) - time.Since(start); rest > 0 {
			d.Delay += rest
		}
		return d
	}
	g := &flightGauge{perPart: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ev struct {
			Records map[string]json.RawMessage `json:"records"`
		}
		var parts []string
		if json.Unmarshal(body, &ev) == nil {
			for k := range ev.Records {
				parts = append(parts, k)
			}
		}
		g.enter(parts)
		defer g.leave(parts)
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, g
}

// TestOrderingChecker feeds the checker deliveries that keep or break each
// ordering's promise, and duplicates within and past the KEY/NONE bound,
// so the scenarios' passing means what it says.
func TestOrderingChecker(t *testing.T) {
	const topic = "t"
	// Offsets 0–9: keys a b a nil b a c nil c a.
	keys := []string{"a", "b", "a", "", "b", "a", "c", "", "c", "a"}
	produce := func(c *Checker) {
		for o, k := range keys {
			r := &kgo.Record{Topic: topic, Partition: 0, Offset: int64(o)}
			if k != "" {
				r.Key = []byte(k)
			}
			c.Produced(r)
		}
	}
	deliver := func(c *Checker, offs ...int64) {
		var recs []sink.Record
		for _, o := range offs {
			r := sink.Record{Topic: topic, Partition: 0, Offset: o, Received: time.Now()}
			if k := keys[o]; k != "" {
				r.Key = []byte(k)
			}
			recs = append(recs, r)
		}
		c.Delivered(recs)
	}
	for _, tc := range []struct {
		name, ordering string
		batches        [][]int64
		want           string // in the error; "" for none
	}{
		{"partition in order", pipe.OrderingPartition, [][]int64{{0, 1, 2}, {3, 4, 5, 6, 7, 8, 9}}, ""},
		{"partition out of order", pipe.OrderingPartition, [][]int64{{0, 2}, {1, 3, 4, 5, 6, 7, 8, 9}}, "first delivery of offset 2 when 1 was next"},
		{"key: disjoint keys out of partition order", pipe.OrderingKey, [][]int64{{1, 0}, {2}, {3}, {6, 4, 5}, {7}, {9, 8}}, ""},
		{"key: a key out of order", pipe.OrderingKey, [][]int64{{0, 1}, {3}, {5, 4}, {2}, {6, 7, 8, 9}}, `key "a": first delivery of offset 5 before the first delivery of offset 2`},
		{"key: keyless before an earlier record", pipe.OrderingKey, [][]int64{{0, 2}, {3}, {1, 4, 5, 6, 7, 8, 9}}, "first delivery of offset 3, produced without a key, before the first delivery of offset 1"},
		{"key: a later record before a keyless one", pipe.OrderingKey, [][]int64{{0, 1, 2}, {4}, {3, 5, 6, 7, 8, 9}}, "first delivery of offset 4 before the first delivery of offset 3, produced without a key"},
		{"none: any order", pipe.OrderingNone, [][]int64{{9, 3}, {7, 0, 5}, {1, 2, 8, 6, 4}}, ""},
		{"none: a record lost", pipe.OrderingNone, [][]int64{{9, 3}, {7, 0, 5}, {1, 2, 8, 6}}, "1 of 10 produced records never delivered (first missing offset 4)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(CheckerConfig{Ordering: tc.ordering, Window: 4, BatchSize: 2, MinBatchTime: time.Millisecond})
			produce(c)
			for _, b := range tc.batches {
				deliver(c, b...)
			}
			_, err := c.Verify()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want no problem, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}

	// Commits: one past a record the target had not accepted when the
	// commit was read is a problem, one up to the accepted records is not.
	for _, tc := range []struct {
		accepted []int64
		want     string
	}{{[]int64{0, 1, 2, 3, 4}, ""}, {[]int64{0, 1, 2, 4}, "past offset 3, which the target had not accepted (accepted first at"}} {
		c := NewChecker(CheckerConfig{Ordering: pipe.OrderingKey, Window: 4, BatchSize: 2, MinBatchTime: time.Millisecond,
			Committed: func(context.Context) (map[TP]int64, error) { return map[TP]int64{{topic, 0}: 5}, nil }})
		produce(c)
		deliver(c, tc.accepted...)
		c.SampleCommits(context.Background())
		time.Sleep(10 * time.Millisecond) // pacing: the rest is accepted after the sample
		var rest []int64
		for o := range int64(len(keys)) {
			if !slices.Contains(tc.accepted, o) {
				rest = append(rest, o)
			}
		}
		deliver(c, rest...)
		if _, err := c.Verify(); (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("commit at 5 after offsets %v were accepted: want %q, got %v", tc.accepted, tc.want, err)
		}
	}

	// Duplicates in records: a kill with nothing committed explains the
	// window (4) plus what was accepted from CommitPeriod before it on
	// (offsets 6–9) plus Slack×BatchSize (2): 10 records, not 11.
	for _, tc := range []struct {
		redeliver []int64
		ok        bool
	}{{[]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, true}, {[]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9}, false}} {
		for _, ordering := range []string{pipe.OrderingKey, pipe.OrderingNone} {
			c := NewChecker(CheckerConfig{Ordering: ordering, Window: 4, BatchSize: 2, Slack: 1, CommitPeriod: 50 * time.Millisecond,
				InFlight: 50 * time.Millisecond, MinBatchTime: time.Millisecond})
			produce(c)
			deliver(c, 0, 1, 2, 3, 4, 5)
			time.Sleep(100 * time.Millisecond) // pacing: offsets 0–5 accepted longer than CommitPeriod before the kill
			deliver(c, 6, 7, 8, 9)
			c.Fault("sigkill")
			time.Sleep(100 * time.Millisecond) // pacing: the redeliveries come after InFlight
			// Two batches; the second redelivers 9 once more.
			deliver(c, tc.redeliver[:5]...)
			deliver(c, tc.redeliver[5:]...)
			sum, err := c.Verify()
			if tc.ok != (err == nil) {
				t.Fatalf("%s, redelivering %d records: bound %d, err %v", ordering, sum.Duplicated, sum.WorstBound, err)
			}
			if tc.ok && (sum.WorstFault != 10 || sum.WorstBound != 10) {
				t.Fatalf("%s: worst fault %d of bound %d, want 10 of 10", ordering, sum.WorstFault, sum.WorstBound)
			}
		}
	}
}
