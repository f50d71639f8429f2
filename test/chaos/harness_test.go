package chaos

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
	"github.com/sluice-dev/sluice/test/testproc"
)

var long = flag.Bool("chaos.long", false, "run the long reliability suite: longer storms, more records, more kill cycles")

// binary is the sluice binary the process scenarios run.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	bin, remove, err := testproc.Build()
	if err != nil {
		panic(err)
	}
	binary = bin
	// Another build of sluice (an older commit, say) runs the process
	// scenarios instead, to measure a figure before and after a change.
	if other := os.Getenv("SLUICE_CHAOS_BINARY"); other != "" {
		binary = other
	}
	start := time.Now()
	code := m.Run()
	printSummary(time.Since(start))
	remove()
	os.Exit(code)
}

// mode picks the short or the long value.
func mode[T any](short, longer T) T {
	if *long {
		return longer
	}
	return short
}

// row is one scenario's line in the summary table.
type row struct {
	name string
	sum  Summary
	dur  time.Duration
	ok   bool
}

var (
	rowsMu sync.Mutex
	rows   []row
)

func printSummary(total time.Duration) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	fmt.Printf("\nreliability suite (%s mode), %s in all\n", mode("short", "long"), total.Round(time.Second))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tproduced\tdelivered\tlost\tduplicated\tdup batches\tworst fault (bound)\tduration\tresult\tfaults injected")
	for _, r := range rows {
		res := "ok"
		if !r.ok {
			res = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d (%d)\t%s\t%s\t%s\n", r.name, r.sum.Produced, r.sum.Delivered, r.sum.Lost,
			r.sum.Duplicated, r.sum.DuplicateBatches, r.sum.WorstFault, r.sum.WorstBound, r.dur.Round(100*time.Millisecond), res, r.sum.FaultsString())
	}
	w.Flush()
	for _, f := range figures {
		fmt.Println(f)
	}
}

// figures are scenario measurements printed after the table.
var figures []string

// figure records a measurement for the summary, and logs it.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := strings.TrimPrefix(t.Name(), "Test") + ": " + fmt.Sprintf(format, args...)
	t.Log(msg)
	rowsMu.Lock()
	figures = append(figures, msg)
	rowsMu.Unlock()
}

// finish verifies the checker, logs and records the scenario's row, and
// fails the test if the contract broke.
func finish(t *testing.T, c *Checker, began time.Time) {
	t.Helper()
	sum, err := c.Verify()
	dur := time.Since(began)
	t.Logf("%s: produced %d, delivered %d, lost %d, duplicated %d (%d batches, worst fault %d of bound %d), faults %s, %s",
		t.Name(), sum.Produced, sum.Delivered, sum.Lost, sum.Duplicated, sum.DuplicateBatches, sum.WorstFault, sum.WorstBound,
		sum.FaultsString(), dur.Round(100*time.Millisecond))
	rowsMu.Lock()
	rows = append(rows, row{name: strings.TrimPrefix(t.Name(), "Test"), sum: sum, dur: dur, ok: err == nil})
	rowsMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Produced == 0 {
		t.Fatal("nothing was produced: the scenario tested nothing")
	}
}

// newCluster starts a real in-process 3-broker Kafka with one topic. The
// low group minimum lets members use sessions of a second, so a killed
// member's partitions move on quickly.
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

// committedReader reads group's committed offsets with its own client, so
// the reads do not share connections (or faults' connection state) with
// the pipe.
func committedReader(t *testing.T, addrs []string, group string) func(context.Context) (map[TP]int64, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	return func(ctx context.Context) (map[TP]int64, error) {
		resp, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		if err := resp.Error(); err != nil {
			return nil, err
		}
		out := map[TP]int64{}
		resp.Each(func(o kadm.OffsetResponse) { out[TP{o.Topic, o.Partition}] = o.At })
		return out, nil
	}
}

// producer writes to a topic in the background, round after round, telling
// the checker each record's offset from the broker's acknowledgement.
type producer struct {
	t      *testing.T
	addrs  []string
	topic  string
	parts  atomic.Int32
	stop   chan struct{}
	done   chan struct{}
	err    error
	rounds atomic.Int64

	// keys, when set, is the recurring keys per partition (withKeys);
	// keylessEvery makes about one record in that many keyless.
	keys, keylessEvery int
}

// producerOption changes what a producer writes.
type producerOption func(*producer)

// withKeys makes the producer key each partition's records with one of
// keys recurring keys ("k-PARTITION-i", i < keys, at random), and leave
// about one record in keylessEvery without a key (none when 0): what KEY
// ordering is checked on, each key's records in order and a keyless
// record in its place in the partition. Without it every record has a key
// of its own.
func withKeys(keys, keylessEvery int) producerOption {
	return func(p *producer) { p.keys, p.keylessEvery = keys, keylessEvery }
}

// startProducer produces perRound records to each partition every pace,
// until stopped. Rounds are ProduceSync calls that are never canceled: a
// canceled produce could have written records whose offsets the checker
// never learns, which would look like deliveries of records never produced.
func startProducer(t *testing.T, addrs []string, topic string, parts int32, perRound int, pace time.Duration, c *Checker, opts ...producerOption) *producer {
	t.Helper()
	p := &producer{t: t, addrs: addrs, topic: topic, stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	p.parts.Store(parts)
	go p.run(perRound, pace, c)
	t.Cleanup(p.Stop)
	return p
}

// SetPartitions makes later rounds write to n partitions.
func (p *producer) SetPartitions(n int32) { p.parts.Store(n) }

func (p *producer) run(perRound int, pace time.Duration, c *Checker) {
	defer close(p.done)
	var cl *kgo.Client
	known := int32(0)
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	seq := 0
	value := bytes.Repeat([]byte("v"), 100)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if n := p.parts.Load(); n != known || cl == nil {
			// A new client loads the topic's metadata afresh, so it
			// knows partitions added since the last one started;
			// the manual partitioner fails records for partitions it
			// does not know.
			if cl != nil {
				cl.Close()
			}
			var err error
			cl, err = kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerLinger(0))
			if err != nil {
				p.err = err
				return
			}
			known = n
		}
		var recs []*kgo.Record
		for part := int32(0); part < known; part++ {
			for i := 0; i < perRound; i++ {
				seq++
				recs = append(recs, &kgo.Record{Topic: p.topic, Partition: part, Key: p.key(part, seq), Value: value})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res := cl.ProduceSync(ctx, recs...)
		cancel()
		for _, r := range res {
			if r.Err != nil {
				p.err = fmt.Errorf("produce to %s-%d: %w", r.Record.Topic, r.Record.Partition, r.Err)
				return
			}
			c.Produced(r.Record)
		}
		p.rounds.Add(1)
		// Pacing, not synchronisation: records keep arriving while
		// faults come and go.
		select {
		case <-p.stop:
			return
		case <-time.After(pace):
		}
	}
}

// key is the key of the seq-th record, written to part.
func (p *producer) key(part int32, seq int) []byte {
	if p.keys <= 0 {
		return fmt.Appendf(nil, "k-%d-%d", part, seq)
	}
	if p.keylessEvery > 0 && rand.IntN(p.keylessEvery) == 0 {
		return nil
	}
	return fmt.Appendf(nil, "k-%d-%d", part, rand.IntN(p.keys))
}

// Stop stops producing and waits; a produce error fails the test.
func (p *producer) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	if p.err != nil {
		p.t.Errorf("producer: %v", p.err)
	}
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

// progress waits until n more batches than now were delivered.
func progress(t *testing.T, c *Checker, n int, timeout time.Duration, what string) {
	t.Helper()
	before := c.Deliveries()
	waitFor(t, timeout, fmt.Sprintf("%d deliveries %s", n, what), func() bool { return c.Deliveries() >= before+n })
}

// allDelivered stops the producer and waits for every produced record.
func allDelivered(t *testing.T, p *producer, c *Checker, timeout time.Duration) {
	t.Helper()
	p.Stop()
	if t.Failed() {
		t.FailNow()
	}
	deadline := time.Now().Add(timeout)
	for c.Missing() > 0 {
		if time.Now().After(deadline) {
			_, err := c.Verify()
			t.Fatalf("%d records still undelivered after %s: %v", c.Missing(), timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sinkDelay paces every delivery. It is the checker's MinBatchTime: a
// partition finishes at most one batch per sinkDelay, which turns the
// commit interval into a bound on redeliveries.
const sinkDelay = 10 * time.Millisecond

// newSink serves a sink that reports every accepted batch to c. decide, if
// not nil, may refuse or slow a delivery; every delivery is paced by
// sinkDelay.
func newSink(t *testing.T, c *Checker, decide func(*sink.Event) sink.Decision) *httptest.Server {
	t.Helper()
	s := sink.New()
	s.Keep = false // the checker keeps what it needs
	s.OnBatch = c.Delivered
	s.Decide = func(ev *sink.Event) sink.Decision {
		start := time.Now()
		d := sink.Decision{}
		if decide != nil {
			d = decide(ev)
		}
		// The pacing is a Decision.Delay, which ends without accepting
		// when the client hangs up: the batch in flight when a process
		// is killed is not accepted, so a source that committed it
		// before delivery loses it and the checker sees the loss. A
		// decide that already took longer (a slow target) accepts
		// whether or not the client still waits.
		if rest := sinkDelay - time.Since(start); rest > 0 {
			d.Delay += rest
		}
		return d
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// fastTuning shortens the engine's group timings and backoffs so faults
// resolve in seconds; MetadataMaxAge of a second lets added partitions be
// noticed quickly.
var fastTuning = engine.Tuning{
	SessionTimeout: 3 * time.Second, RebalanceTimeout: 5 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
	CommitInterval: 100 * time.Millisecond, StopGrace: time.Second,
	InitialBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	MetadataMaxAge: time.Second,
}

// inProcessChecker is the checker config for the in-process engine with
// fastTuning. CommitPeriod is the 100 ms commit interval plus 400 ms for a
// commit's round trip on a loaded 2-core machine under -race.
func inProcessChecker(committed func(context.Context) (map[TP]int64, error), inFlight time.Duration) CheckerConfig {
	return CheckerConfig{Committed: committed, InFlight: inFlight, MinBatchTime: sinkDelay,
		CommitPeriod: 500 * time.Millisecond, Slack: 2}
}

// startEngine runs the real engine over a fresh sqlite store until the
// test ends.
func startEngine(t *testing.T, tun engine.Tuning) *engine.Engine {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Tuning: tun, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = eng.Run(ctx)
		_ = st.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return eng
}

// testLogger logs the engine at debug level, which includes the Kafka
// client's joins, assignments, offset resets and metadata changes, to a file
// named in the test's output when it fails: too much for the test log, what
// one needs to explain a broken contract.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	path := filepath.Join(os.TempDir(), "sluice-chaos-"+t.Name()+".log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("engine log: %s", path)
		} else {
			os.Remove(path)
		}
	})
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func createPipe(t *testing.T, eng *engine.Engine, spec pipe.Spec) {
	t.Helper()
	if _, err := eng.CreatePipe(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

var freeAddr = testproc.FreeAddr

// serveConfig writes a serve config with its own API address and data dir
// and a 1 s group session, so a killed member's partitions move on after a
// second.
func serveConfig(t *testing.T) (config, api string) {
	t.Helper()
	return serveConfigSession(t, "1s")
}

// serveConfigSession is serveConfig with the given group session timeout.
func serveConfigSession(t *testing.T, session string) (config, api string) {
	t.Helper()
	dir := t.TempDir()
	api = freeAddr(t)
	config = filepath.Join(dir, "sluice.yaml")
	body := fmt.Sprintf("apiAddr: %s\ndataDir: %s\ngroupSessionTimeout: %s\nlogFormat: json\n", api, dir, session)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, api
}

// startProc runs `sluice serve --config config` and waits until its API
// answers.
func startProc(t *testing.T, name, config, api string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, binary, name, api, "serve", "--config", config, "--log-level", "warn")
}

// newAdmin is an admin client of the cluster at addrs, closed when the
// test ends.
func newAdmin(t *testing.T, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// groupSettled reports whether group has n members, is Stable, and has every
// one of topic's parts partitions assigned.
func groupSettled(ctx context.Context, adm *kadm.Client, group, topic string, n, parts int) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false
	}
	g, ok := gs[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
		return false
	}
	assigned := 0
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false
		}
		for _, tp := range a.Topics {
			if tp.Topic == topic {
				assigned += len(tp.Partitions)
			}
		}
	}
	return assigned == parts
}
