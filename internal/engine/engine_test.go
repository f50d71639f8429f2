package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// newCluster starts a real in-process 3-broker Kafka with one topic.
func newCluster(t *testing.T, topic string, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce writes n records to each partition, values "p<P>-<i>", keys "k<i>".
func produce(t *testing.T, addrs []string, topic string, partitions int32, n int, ts time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("p%d-%d", p, i)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0xff, byte(i)}}}}
			if !ts.IsZero() {
				r.Timestamp = ts
			}
			recs = append(recs, r)
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type harness struct {
	t       *testing.T
	cluster *kfake.Cluster
	addrs   []string
	eng     *engine.Engine
	cancel  context.CancelFunc
	done    chan struct{}
	dbPath  string
}

var fast = engine.Tuning{
	SessionTimeout: 3 * time.Second, RebalanceTimeout: 5 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
	CommitInterval: 100 * time.Millisecond, StopGrace: time.Second,
	InitialBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
}

// startEngine runs an engine over the store at dbPath with fast timings;
// opts adjust its config.
func startEngine(t *testing.T, c *kfake.Cluster, dbPath string, opts ...func(*engine.Config)) *harness {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Tuning: fast}
	for _, o := range opts {
		o(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, cluster: c, addrs: c.ListenAddrs(), eng: eng, cancel: cancel, done: make(chan struct{}), dbPath: dbPath}
	go func() {
		defer close(h.done)
		_ = eng.Run(ctx)
		_ = st.Close()
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) create(spec pipe.Spec) pipe.Pipe {
	h.t.Helper()
	spec.BootstrapServers = h.addrs
	p, err := h.eng.CreatePipe(context.Background(), spec)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func committed(t *testing.T, addrs []string, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

func counts(partitions int32, n int64) map[int32]int64 {
	m := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		m[p] = n
	}
	return m
}

func delivered(s *sink.Sink, topic string, want map[int32]int64) func() bool {
	return func() bool {
		_, err := sink.Check(s.Records(), topic, want)
		return err == nil
	}
}

func ptr[T any](v T) *T { return &v }

func TestDeliversEveryRecordInOrderAndCommits(t *testing.T) {
	const topic, parts, n = "orders", 4, 300
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "orders", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 50,
		MaximumBatchingWindowInSeconds: ptr(0.05)})
	if p.Status.State != pipe.StateCreating || p.Status.LastProcessingResult != pipe.ResultNoRecords || p.GroupID() != p.UUID {
		t.Fatalf("new pipe: %+v", p)
	}
	waitFor(t, 30*time.Second, "every record", delivered(s, topic, counts(parts, n)))
	dups, err := sink.Check(s.Records(), topic, counts(parts, n))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d duplicates", dups)
	waitFor(t, 10*time.Second, "commits at the end of each partition", func() bool {
		got := committed(t, h.addrs, p.UUID)
		for q := int32(0); q < parts; q++ {
			if got[q] != n {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "status OK", func() bool {
		got, err := h.eng.GetPipe(context.Background(), "orders")
		return err == nil && got.Status.LastProcessingResult == pipe.ResultOK && got.Status.State == pipe.StateEnabled
	})
	// The event carries what was produced.
	r := s.Records()[0]
	if r.TimestampType != "CREATE_TIME" || !strings.HasPrefix(string(r.Key), "k") || len(r.Headers) != 1 || r.Headers[0].Value[0] != 0xff {
		t.Fatalf("record as delivered: %+v", r)
	}
	for _, r := range s.Records() {
		if want := fmt.Sprintf("p%d-%d", r.Partition, r.Offset); string(r.Value) != want {
			t.Fatalf("partition %d offset %d carries %q, want %q", r.Partition, r.Offset, r.Value, want)
		}
	}
}

func TestEveryRecordArrivesWhileTargetFailsHalfTheTime(t *testing.T) {
	const topic, parts, n = "flaky", 3, 200
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 9))
	s.Decide = func(*sink.Event) sink.Decision {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(2) == 0 {
			return sink.Decision{Status: 500}
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	h.create(pipe.Spec{Name: "flaky", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 20,
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 60*time.Second, "every record despite failures", delivered(s, topic, counts(parts, n)))
	if _, err := sink.Check(s.Records(), topic, counts(parts, n)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Rejected == 0 {
		t.Fatal("the target never failed; the test tested nothing")
	}
}

func TestRestartMidStreamLosesNothing(t *testing.T) {
	const topic, parts = "stream", 4
	c := newCluster(t, topic, parts)
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "s.db")

	// Produce in the background for the whole test.
	var produced atomic.Int64
	stopProducing := make(chan struct{})
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for round := 0; ; round++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			produce(t, c.ListenAddrs(), topic, parts, 10, time.Time{})
			produced.Add(10)
			time.Sleep(5 * time.Millisecond)
		}
	}()

	h := startEngine(t, c, db)
	h.create(pipe.Spec{Name: "stream", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 25,
		MaximumBatchingWindowInSeconds: ptr(0.01)})
	for restart := 0; restart < 3; restart++ {
		before := s.Stats().Accepted
		waitFor(t, 20*time.Second, "progress before restart", func() bool { return s.Stats().Accepted > before+100 })
		h.stop()
		h = startEngine(t, c, db)
	}
	close(stopProducing)
	<-prodDone
	n := produced.Load()
	waitFor(t, 30*time.Second, "every record after restarts", delivered(s, topic, counts(parts, n)))
	dups, err := sink.Check(s.Records(), topic, counts(parts, n))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records per partition, %d duplicates across 3 restarts", n, dups)
}

func TestStartingPositions(t *testing.T) {
	const parts = 2
	t.Run("LATEST skips what was there before", func(t *testing.T) {
		c := newCluster(t, "latest", parts)
		produce(t, c.ListenAddrs(), "latest", parts, 50, time.Time{})
		s := sink.New()
		srv := httptest.NewServer(s)
		defer srv.Close()
		h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
		h.create(pipe.Spec{Name: "latest", Topics: []string{"latest"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
			StartingPosition: pipe.Latest, MaximumBatchingWindowInSeconds: ptr(0.0)})
		// The group joins asynchronously: keep producing until new
		// records arrive on both partitions.
		waitFor(t, 30*time.Second, "new records", func() bool {
			produce(t, c.ListenAddrs(), "latest", parts, 1, time.Time{})
			got := map[int32]bool{}
			for _, r := range s.Records() {
				got[r.Partition] = true
			}
			return len(got) == parts
		})
		for _, r := range s.Records() {
			if r.Offset < 50 {
				t.Fatalf("LATEST delivered old record %d of partition %d", r.Offset, r.Partition)
			}
		}
	})
	t.Run("AT_TIMESTAMP starts at the first record at or after it", func(t *testing.T) {
		c := newCluster(t, "ts", parts)
		t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		produce(t, c.ListenAddrs(), "ts", parts, 30, t0)
		produce(t, c.ListenAddrs(), "ts", parts, 20, t0.Add(30*time.Minute))
		s := sink.New()
		srv := httptest.NewServer(s)
		defer srv.Close()
		h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
		h.create(pipe.Spec{Name: "ts", Topics: []string{"ts"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
			StartingPosition: pipe.AtTimestamp, StartingPositionTimestamp: ptr(t0.Add(10 * time.Minute)), MaximumBatchingWindowInSeconds: ptr(0.0)})
		waitFor(t, 30*time.Second, "records after the timestamp", func() bool { return s.Stats().Accepted >= parts*20 })
		for _, r := range s.Records() {
			if r.Offset < 30 {
				t.Fatalf("AT_TIMESTAMP delivered record %d of partition %d, older than the timestamp", r.Offset, r.Partition)
			}
		}
	})
	for _, pos := range []pipe.StartingPosition{pipe.Latest, pipe.TrimHorizon} {
		t.Run("committed offset wins over "+string(pos), func(t *testing.T) {
			c := newCluster(t, "resume", parts)
			produce(t, c.ListenAddrs(), "resume", parts, 100, time.Time{})
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
			if err != nil {
				t.Fatal(err)
			}
			var offs kadm.Offsets
			offs.AddOffset("resume", 0, 70, -1)
			offs.AddOffset("resume", 1, 40, -1)
			if err := kadm.NewClient(cl).CommitAllOffsets(context.Background(), "existing-group", offs); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			s := sink.New()
			srv := httptest.NewServer(s)
			defer srv.Close()
			h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
			h.create(pipe.Spec{Name: "resume", Topics: []string{"resume"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
				StartingPosition: pos, ConsumerGroupID: "existing-group", MaximumBatchingWindowInSeconds: ptr(0.0)})
			waitFor(t, 30*time.Second, "the records after the committed offsets", func() bool { return s.Stats().Accepted >= 30+60 })
			first := map[int32]int64{0: -1, 1: -1}
			for _, r := range s.Records() {
				if first[r.Partition] == -1 {
					first[r.Partition] = r.Offset
				}
			}
			if first[0] != 70 || first[1] != 40 {
				t.Fatalf("first delivered offsets %v, want 70 and 40 (the group's commits)", first)
			}
		})
	}
}

func TestBatchCuts(t *testing.T) {
	t.Run("by count and by window", func(t *testing.T) {
		c := newCluster(t, "cuts", 1)
		s := sink.New()
		var mu sync.Mutex
		var sizes []int
		var arrivals []time.Time
		s.OnBatch = func(recs []sink.Record) {
			mu.Lock()
			sizes = append(sizes, len(recs))
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
		}
		srv := httptest.NewServer(s)
		defer srv.Close()
		h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
		h.create(pipe.Spec{Name: "cuts", Topics: []string{"cuts"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10,
			MaximumBatchingWindowInSeconds: ptr(1.0), StartingPosition: pipe.TrimHorizon})
		produced := time.Now()
		produce(t, c.ListenAddrs(), "cuts", 1, 25, time.Time{})
		waitFor(t, 30*time.Second, "25 records", func() bool { return s.Stats().Accepted >= 25 })
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(sizes) != "[10 10 5]" {
			t.Fatalf("batch sizes %v, want [10 10 5]: two cut by count, the rest by the window", sizes)
		}
		if wait := arrivals[2].Sub(produced); wait < time.Second {
			t.Fatalf("the partial batch came %s after producing, before the 1 s window passed", wait)
		}
	})
	t.Run("by payload size", func(t *testing.T) {
		c := newCluster(t, "big", 1)
		s := sink.New()
		var mu sync.Mutex
		var sizes []int
		s.OnBatch = func(recs []sink.Record) { mu.Lock(); sizes = append(sizes, len(recs)); mu.Unlock() }
		srv := httptest.NewServer(s)
		defer srv.Close()
		cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		for i := 0; i < 20; i++ {
			// 1,500 raw bytes are 2,000 as base64: two fit in 5,000 bytes, three do not.
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "big", Value: make([]byte, 1500)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
		h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
		h.create(pipe.Spec{Name: "big", Topics: []string{"big"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 100,
			PayloadLimitBytes: 5000, MaximumBatchingWindowInSeconds: ptr(0.0)})
		waitFor(t, 30*time.Second, "20 records", func() bool { return s.Stats().Accepted >= 20 })
		mu.Lock()
		defer mu.Unlock()
		for _, n := range sizes {
			if n > 2 {
				t.Fatalf("batch sizes %v: a batch of %d passes the 5,000 byte payload limit", sizes, n)
			}
		}
	})
	t.Run("a record over the payload limit fails with a clear status", func(t *testing.T) {
		c := newCluster(t, "huge", 2)
		s := sink.New()
		srv := httptest.NewServer(s)
		defer srv.Close()
		cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := cl.ProduceSync(context.Background(),
			&kgo.Record{Topic: "huge", Partition: 0, Value: make([]byte, 10000)},
			&kgo.Record{Topic: "huge", Partition: 1, Value: []byte("small")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
		h.create(pipe.Spec{Name: "huge", Topics: []string{"huge"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
			PayloadLimitBytes: 5000, MaximumBatchingWindowInSeconds: ptr(0.0)})
		waitFor(t, 30*time.Second, "the problem in the status", func() bool {
			p, err := h.eng.GetPipe(context.Background(), "huge")
			return err == nil && strings.Contains(p.Status.LastProcessingResult, "PROBLEM: record huge-0 offset 0 is") &&
				strings.Contains(p.Status.LastProcessingResult, "over the pipe's payload limit of 5000 bytes")
		})
		// The other partition is not held up by it.
		waitFor(t, 10*time.Second, "the small record", func() bool { return s.Stats().Accepted == 1 })
		if got := committed(t, h.addrs, h.mustGet("huge").UUID); got[0] != 0 {
			t.Fatalf("the oversized record was committed (%v) although it was never delivered", got)
		}
	})
}

func (h *harness) mustGet(name string) pipe.Pipe {
	p, err := h.eng.GetPipe(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func TestRebalanceWhenASecondConsumerJoins(t *testing.T) {
	const topic, parts = "shared", 6
	c := newCluster(t, topic, parts)
	s := sink.New()
	var fromA, fromB atomic.Int64
	mux := httptest.NewServer(s)
	defer mux.Close()
	a := httptest.NewServer(countingProxy(s, &fromA))
	defer a.Close()
	b := httptest.NewServer(countingProxy(s, &fromB))
	defer b.Close()

	produce(t, c.ListenAddrs(), topic, parts, 100, time.Time{})
	h1 := startEngine(t, c, filepath.Join(t.TempDir(), "a.db"))
	h1.create(pipe.Spec{Name: "shared", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: a.URL}}, ConsumerGroupID: "shared-group",
		BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 30*time.Second, "the first consumer to deliver", func() bool { return fromA.Load() >= parts*100 })

	h2 := startEngine(t, c, filepath.Join(t.TempDir(), "b.db"))
	h2.create(pipe.Spec{Name: "shared", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: b.URL}}, ConsumerGroupID: "shared-group",
		BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0)})
	// Keep producing until the second member has received a share.
	total := int64(100)
	waitFor(t, 60*time.Second, "the second consumer to get partitions", func() bool {
		produce(t, c.ListenAddrs(), topic, parts, 5, time.Time{})
		total += 5
		return fromB.Load() > 0
	})
	waitFor(t, 30*time.Second, "every record", delivered(s, topic, counts(parts, total)))
	dups, err := sink.Check(s.Records(), topic, counts(parts, total))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("A delivered %d, B %d, %d duplicates", fromA.Load(), fromB.Load(), dups)
}

// countingProxy counts records accepted through one of two target URLs
// that share a sink.
func countingProxy(s *sink.Sink, n *atomic.Int64) *sink.Sink {
	p := sink.New()
	p.Keep = false
	p.OnBatch = func(recs []sink.Record) {
		n.Add(int64(len(recs)))
		s.Add(recs)
	}
	return p
}

// TestUnreachableBrokerShowsProblemAndRecovers: a pipe whose cluster is
// down says so in its status, and delivers once the cluster is up.
func TestUnreachableBrokerShowsProblemAndRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Tuning: fast})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	defer func() { cancel(); <-done; st.Close() }()

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: "down", BootstrapServers: []string{addr}, Topics: []string{"t"},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)}); err != nil {
		t.Fatal(err)
	}
	result := func() string {
		p, err := eng.GetPipe(ctx, "down")
		if err != nil {
			t.Fatal(err)
		}
		return p.Status.LastProcessingResult
	}
	waitFor(t, 30*time.Second, "a connection problem in the status", func() bool {
		return strings.HasPrefix(result(), "PROBLEM: Connection error. Please check your event source connection configuration.") &&
			strings.Contains(result(), addr)
	})

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(1, "t"),
		kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	produce(t, c.ListenAddrs(), "t", 1, 5, time.Time{})
	waitFor(t, 30*time.Second, "delivery after the cluster came up", func() bool { return s.Stats().Accepted >= 5 })
	waitFor(t, 10*time.Second, "the problem to clear", func() bool { return result() == pipe.ResultOK })
}

func TestCreateValidatesAndDisabledPipesDoNotConsume(t *testing.T) {
	c := newCluster(t, "quiet", 1)
	produce(t, c.ListenAddrs(), "quiet", 1, 10, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))

	_, err := h.eng.CreatePipe(context.Background(), pipe.Spec{Name: "x", UUID: "mine", BootstrapServers: h.addrs,
		Topics: []string{"quiet"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}})
	if err == nil || !strings.Contains(err.Error(), "uuid") {
		t.Fatalf("a client-chosen UUID must be refused, got %v", err)
	}
	if _, err := h.eng.CreatePipe(context.Background(), pipe.Spec{Name: "x"}); err == nil {
		t.Fatal("an invalid spec must be refused")
	}
	if _, err := h.eng.GetPipe(context.Background(), "x"); err == nil {
		t.Fatal("a refused pipe must not be stored")
	}

	p := h.create(pipe.Spec{Name: "quiet", Topics: []string{"quiet"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, Enabled: ptr(false)})
	if p.Status.State != pipe.StateDisabled {
		t.Fatalf("state %s, want Disabled", p.Status.State)
	}
	// A second, enabled pipe on the same topic proves the engine is
	// running; the disabled one must not have joined its group meanwhile.
	h.create(pipe.Spec{Name: "loud", Topics: []string{"quiet"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 30*time.Second, "the enabled pipe's deliveries", func() bool { return s.Stats().Accepted >= 10 })
	if s.Stats().Accepted != 10 {
		t.Fatalf("%d records delivered; the disabled pipe consumed too", s.Stats().Accepted)
	}
	if got := committed(t, h.addrs, p.UUID); len(got) != 0 {
		t.Fatalf("the disabled pipe's group committed %v", got)
	}

	// Deleting a running pipe stops its deliveries.
	if err := h.eng.DeletePipe(context.Background(), "loud"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted pipe to leave its group", func() bool {
		cl, _ := kgo.NewClient(kgo.SeedBrokers(h.addrs...))
		defer cl.Close()
		groups, err := kadm.NewClient(cl).DescribeGroups(context.Background())
		if err != nil {
			return false
		}
		for _, g := range groups {
			if len(g.Members) > 0 {
				return false
			}
		}
		return true
	})
	produce(t, c.ListenAddrs(), "quiet", 1, 5, time.Time{})
	// Another enabled pipe on the topic delivers the new records; the
	// deleted one must not deliver them too.
	h.create(pipe.Spec{Name: "later", Topics: []string{"quiet"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 30*time.Second, "the new pipe's deliveries", func() bool { return s.Stats().Accepted >= 25 })
	if got := s.Stats().Accepted; got != 25 {
		t.Fatalf("%d records delivered, want 10 + 15 from the new pipe only", got)
	}
}
