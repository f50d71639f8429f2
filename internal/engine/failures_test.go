package engine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/redrive"
)

// poisonServer is a target that fails every batch holding a record whose
// value starts with POISON while broken is set, and journals what it took.
type poisonServer struct {
	*httptest.Server
	broken atomic.Bool
	mu     sync.Mutex
	took   map[string]int // value → times accepted
	order  map[int32][]int64
}

func newPoisonServer(t *testing.T) *poisonServer {
	ps := &poisonServer{took: map[string]int{}, order: map[int32][]int64{}}
	ps.broken.Store(true)
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Records map[string][]struct {
				Partition int32  `json:"partition"`
				Offset    int64  `json:"offset"`
				Value     string `json:"value"`
			} `json:"records"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type rec struct {
			p   int32
			off int64
			v   string
		}
		var recs []rec
		for _, rs := range ev.Records {
			for _, x := range rs {
				v, _ := base64.StdEncoding.DecodeString(x.Value)
				if ps.broken.Load() && strings.HasPrefix(string(v), "POISON") {
					http.Error(w, "cannot process "+string(v), http.StatusInternalServerError)
					return
				}
				recs = append(recs, rec{x.Partition, x.Offset, string(v)})
			}
		}
		ps.mu.Lock()
		defer ps.mu.Unlock()
		for _, x := range recs {
			ps.took[x.v]++
			ps.order[x.p] = append(ps.order[x.p], x.off)
		}
	}))
	t.Cleanup(ps.Close)
	return ps
}

func (ps *poisonServer) times(v string) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.took[v]
}

func (ps *poisonServer) distinct() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.took)
}

// producePoisoned writes n records per partition, keyed, whose values are
// "p<P>-<i>" except POISON at index poisonAt of partition 0.
func producePoisoned(t *testing.T, addrs []string, topic string, parts int32, n, poisonAt int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range parts {
		for i := range n {
			v := []byte(fmt.Sprintf("p%d-%d", p, i))
			if p == 0 && i == poisonAt {
				v = []byte("POISON")
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i)), Value: v})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func createTopic(t *testing.T, addrs []string, topic string, parts int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// A poison record is set apart by bisecting, reaches the kafka://
// destination with its key after its retries, its partition moves on and is
// committed to the end; after the target is fixed a redrive delivers it
// once, and a second redrive finds nothing left.
func TestPoisonGoesToKafkaDestinationAndRedrives(t *testing.T) {
	const topic, parts, n = "orders", 2, 40
	c := newCluster(t, topic, parts)
	createTopic(t, c.ListenAddrs(), "dlq", 1)
	ps := newPoisonServer(t)
	producePoisoned(t, c.ListenAddrs(), topic, parts, n, 17)
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "poison", Topics: []string{topic}, BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target:    pipe.Target{HTTP: &pipe.HTTPTarget{URL: ps.URL}},
		Retry:     pipe.RetryPolicy{MaximumRetryAttempts: ptr(1), BisectBatchOnError: true},
		OnFailure: pipe.OnFailure{Destination: "kafka://dlq"}})

	waitFor(t, 30*time.Second, "every other record delivered and the group committed to the end", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return ps.distinct() == parts*n-1 && got[0] == n && got[1] == n
	})
	if ps.times("POISON") != 0 {
		t.Fatal("the poison record was delivered")
	}
	ps.mu.Lock()
	for part, offs := range ps.order {
		for i := 1; i < len(offs); i++ {
			if offs[i] < offs[i-1] && !contains(offs[:i], offs[i]) {
				t.Errorf("partition %d: first deliveries out of order: %v", part, offs)
				break
			}
		}
	}
	ps.mu.Unlock()

	dlq := consumeAll(t, h.addrs, "dlq", 1)
	if len(dlq) != 1 || string(dlq[0].Key) != "k17" {
		t.Fatalf("dlq holds %d messages (first key %q), want the poison record alone with its key k17", len(dlq), keyOf(dlq))
	}
	var meta struct {
		RequestContext struct{ Condition string } `json:"requestContext"`
	}
	if err := json.Unmarshal(dlq[0].Value, &meta); err != nil || meta.RequestContext.Condition != "RetryAttemptsExhausted" {
		t.Fatalf("dlq message %s: condition %q, want RetryAttemptsExhausted (%v)", dlq[0].Value, meta.RequestContext.Condition, err)
	}

	ctx := context.Background()
	desc, err := h.eng.Describe(ctx, "poison")
	if l := desc.Failed.Last; err != nil || desc.Failed.DeadLettered != 1 || l == nil || l.FirstOffset != 17 || l.Condition != "RetryAttemptsExhausted" {
		t.Fatalf("describe shows failed %+v (last %+v), %v; want one record dead-lettered, orders-0 offset 17", desc.Failed, l, err)
	}
	dry, err := h.eng.Redrive(ctx, "poison", true, nil)
	if err != nil || dry.Read != 1 || dry.Delivered != 0 || len(dry.Partitions) != 1 || dry.Partitions[0].FirstOffset != 17 {
		t.Fatalf("dry run = %+v, %v; want one record of orders-0 at 17, none delivered", dry, err)
	}
	// The target is still broken: the redrive stops, saying why, and
	// records nothing.
	if _, err := h.eng.Redrive(ctx, "poison", false, nil); err == nil || !strings.Contains(err.Error(), "orders-0 offset 17") {
		t.Fatalf("redrive to a broken target = %v, want it to stop at orders-0 offset 17", err)
	}
	ps.broken.Store(false)
	var reports []redrive.Progress
	got, err := h.eng.Redrive(ctx, "poison", false, func(p redrive.Progress) { reports = append(reports, p) })
	if err != nil || got.Delivered != 1 || !got.Done || ps.times("POISON") != 1 || len(reports) == 0 {
		t.Fatalf("redrive = %+v, %v, %d reports; poison delivered %d times; want it delivered once", got, err, len(reports), ps.times("POISON"))
	}
	again, err := h.eng.Redrive(ctx, "poison", false, nil)
	if err != nil || again.Read != 0 || ps.times("POISON") != 1 {
		t.Fatalf("second redrive = %+v, %v; want nothing left to redrive", again, err)
	}
}

func contains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func keyOf(rs []*kgo.Record) string {
	if len(rs) == 0 {
		return ""
	}
	return string(rs[0].Key)
}

func consumeAll(t *testing.T, addrs []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		out = append(out, fs.Records()...)
	}
	// Anything more would show now.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	out = append(out, cl.PollFetches(ctx2).Records()...)
	return out
}

// A destination that is down holds the partition at the poison record:
// nothing past it is committed, the status says why, and once the
// destination exists the record goes there and the partition moves on.
// Then a file destination and an explicit discard each take the record.
func TestDestinationDownHoldsThePartition(t *testing.T) {
	const topic, n = "held", 20
	c := newCluster(t, topic, 1)
	ps := newPoisonServer(t)
	producePoisoned(t, c.ListenAddrs(), topic, 1, n, 5)
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "held", Topics: []string{topic}, BatchSize: 4, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target:    pipe.Target{HTTP: &pipe.HTTPTarget{URL: ps.URL}},
		Retry:     pipe.RetryPolicy{MaximumRetryAttempts: ptr(0), BisectBatchOnError: true},
		OnFailure: pipe.OnFailure{Destination: "kafka://later"}})
	var last string
	waitFor(t, 30*time.Second, "the destination's problem in the status", func() bool {
		got, err := h.eng.GetPipe(context.Background(), "held")
		last = got.Status.LastProcessingResult
		return err == nil && strings.Contains(last, "PROBLEM: the failure destination refused records of held-0 from offset 5")
	})
	if got := committed(t, h.addrs, p.UUID); got[0] > 5 {
		t.Fatalf("committed %v past the record the destination has not taken", got)
	}
	createTopic(t, h.addrs, "later", 1)
	waitFor(t, 30*time.Second, "the partition to move on once the destination exists", func() bool {
		return committed(t, h.addrs, p.UUID)[0] == n && ps.distinct() == n-1
	})
	if msgs := consumeAll(t, h.addrs, "later", 1); len(msgs) != 1 {
		t.Fatalf("destination holds %d messages, want 1", len(msgs))
	}
}

func TestFileDestinationAndDiscard(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		on   pipe.OnFailure
	}{
		{"file", pipe.OnFailure{Destination: "file://" + filepath.Join(dir, "dlq.jsonl")}},
		{"discard", pipe.OnFailure{Discard: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := "fd-" + c.name
			kc := newCluster(t, topic, 1)
			ps := newPoisonServer(t)
			producePoisoned(t, kc.ListenAddrs(), topic, 1, 12, 3)
			h := startEngine(t, kc, filepath.Join(t.TempDir(), "s.db"))
			p := h.create(pipe.Spec{Name: c.name, Topics: []string{topic}, BatchSize: 4, MaximumBatchingWindowInSeconds: ptr(0.0),
				Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: ps.URL}},
				Retry:  pipe.RetryPolicy{MaximumRetryAttempts: ptr(0), BisectBatchOnError: true}, OnFailure: c.on})
			waitFor(t, 30*time.Second, "the rest delivered and committed", func() bool {
				return committed(t, h.addrs, p.UUID)[0] == 12 && ps.distinct() == 11
			})
			if c.name == "file" {
				b, err := os.ReadFile(filepath.Join(dir, "dlq.jsonl"))
				if err != nil || strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), `"condition":"RetryAttemptsExhausted"`) {
					t.Fatalf("file destination holds %q (%v), want one failure record", b, err)
				}
				// The console's peek shows the record and moves nothing.
				for range 2 {
					peek, err := h.eng.PeekFailures(context.Background(), c.name, 10)
					if err != nil || len(peek.Records) != 1 || peek.More || peek.Records[0].Value == nil || *peek.Records[0].Value != "POISON" || peek.Records[0].Offset != 3 {
						t.Fatalf("peek = %+v, %v; want the one poison record at offset 3", peek, err)
					}
				}
				// The history counts what was delivered and what failed,
				// and the lag measured once everything was committed.
				waitFor(t, 30*time.Second, "lag 0 in the history", func() bool {
					hist, err := h.eng.History(context.Background(), c.name, time.Hour)
					if err != nil {
						t.Fatal(err)
					}
					var sent, failed int64
					for i := range hist.Delivered {
						sent, failed = sent+hist.Delivered[i], failed+hist.Failed[i]
					}
					last := hist.Lag[len(hist.Lag)-1]
					return sent == 11 && failed == 1 && last != nil && *last == 0 && len(hist.Partitions) == 1
				})
				ov, err := h.eng.Overview(context.Background(), time.Hour)
				if err != nil || len(ov.Pipes) != 1 || ov.Pipes[0].Name != c.name || ov.Pipes[0].Lag == nil || len(ov.Pipes[0].LagSeries) != 60 {
					t.Fatalf("overview = %+v, %v", ov, err)
				}
				ps.broken.Store(false)
				got, err := h.eng.Redrive(context.Background(), c.name, false, nil)
				if err != nil || got.Delivered != 1 || ps.times("POISON") != 1 {
					t.Fatalf("redrive from the file = %+v, %v", got, err)
				}
				if again, err := h.eng.Redrive(context.Background(), c.name, false, nil); err != nil || again.Read != 0 {
					t.Fatalf("second redrive = %+v, %v; want nothing left", again, err)
				}
			}
		})
	}
}

// A filter delivers only the matching records, in order; the others are
// committed and counted, and a batch filtered to nothing makes no call.
func TestFilterDeliversOnlyMatches(t *testing.T) {
	const topic, n = "filtered", 30
	c := newCluster(t, topic, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		status := "pending"
		if i%3 == 0 {
			status = "shipped"
		}
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf(`{"status":%q,"i":%d}`, status, i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	ps := newPoisonServer(t)
	ps.broken.Store(false)
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	p := h.create(pipe.Spec{Name: "filtered", Topics: []string{topic}, BatchSize: 2, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target:         pipe.Target{HTTP: &pipe.HTTPTarget{URL: ps.URL}},
		FilterCriteria: &pipe.FilterCriteria{Filters: []pipe.Filter{{Pattern: `{"value":{"status":["shipped"]}}`}}}})
	waitFor(t, 30*time.Second, "the matching records delivered and everything committed", func() bool {
		return ps.distinct() == n/3 && committed(t, h.addrs, p.UUID)[0] == n
	})
	ps.mu.Lock()
	got := slices.Clone(ps.order[0])
	ps.mu.Unlock()
	if len(got) != n/3 || !slices.IsSorted(got) || got[0] != 0 || got[len(got)-1] != 27 {
		t.Fatalf("delivered offsets %v, want 0, 3, …, 27 once each", got)
	}
	d, err := h.eng.Describe(context.Background(), "filtered")
	if err != nil || d.FilteredOut != n-n/3 {
		t.Fatalf("describe filteredOut = %d, %v; want %d", d.FilteredOut, err, n-n/3)
	}
}

// A pipe with format pipes sends the EventBridge Pipes event: a flat
// array of records, each with its eventSourceKey.
func TestPipesFormat(t *testing.T) {
	const topic = "pf"
	c := newCluster(t, topic, 1)
	producePoisoned(t, c.ListenAddrs(), topic, 1, 5, -1)
	bodies := make(chan []byte, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	h.create(pipe.Spec{Name: "pf", Topics: []string{topic}, MaximumBatchingWindowInSeconds: ptr(0.0), Format: pipe.FormatPipes,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}})
	var recs []struct {
		EventSourceKey string `json:"eventSourceKey"`
		Offset         int64  `json:"offset"`
	}
	select {
	case b := <-bodies:
		if err := json.Unmarshal(b, &recs); err != nil || len(recs) == 0 || recs[0].EventSourceKey != "pf-0" || recs[0].Offset != 0 {
			t.Fatalf("body %s: %v", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
}
