package chaos

import (
	"bytes"
	"context"
	encbinary "encoding/binary" // binary is the sluice binary here
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/destination"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// Poison records: their value starts with poisonPrefix, and the target
// refuses (500) every batch holding one, so only the failure destination
// can take them.
const (
	poisonPrefix = "poison"
	poisonEvery  = 500 // one record in this many, per partition
	// poisonRetries is the pipe's retry.maximumRetryAttempts: a poison
	// record is tried 1+poisonRetries times before it is dead-lettered.
	poisonRetries = 2
	// poisonHeader is a header every produced record carries, which a
	// failure destination message must keep.
	poisonHeader = "chaos-seq"
)

// isPoison says whether the idx-th record produced to partition part is
// poison: one in poisonEvery, at a different phase in each partition so
// they do not come at once, and in partition 1 two in a row, so bisect
// and retries meet a poison record right after a dead-lettered one.
func isPoison(part int32, idx int) bool {
	at := (idx + 61*int(part)) % poisonEvery
	return at == poisonEvery/2 || (part == 1 && at == poisonEvery/2+1)
}

func hasPoison(value []byte) bool { return bytes.HasPrefix(value, []byte(poisonPrefix)) }

// poisonRec is a poison record as produced.
type poisonRec struct {
	key, value []byte
	headers    []kgo.RecordHeader
}

// poisonBook stands between the sink and the checker. The checker demands
// that every produced offset be delivered and that first deliveries come
// in offset order, with no gaps; a poison record is never delivered, its
// place is taken by its dead-lettering. So when the sink accepts a batch
// whose first record comes right after poison records not seen yet, the
// book hands those poison records to the checker as the head of that
// batch: the checker then checks the order of everything around them,
// and the test checks separately (from the failure destination) that each
// was dead-lettered before that batch arrived. A delivered batch holding
// a record right after a poison one without starting there (the poison
// one skipped, not dead-lettered) finds no poison to fill the gap and
// breaks the checker's order.
type poisonBook struct {
	c *Checker

	mu     sync.Mutex
	poison map[TP]map[int64]poisonRec
	// passed is when the first batch after each poison record arrived at
	// the sink: its dead-lettering must come before.
	passed map[TP]map[int64]time.Time
	// delivered lists poison records the sink accepted (never, since the
	// target refuses them; kept as a check of the test itself).
	delivered []string
	// refusedAlone counts, by record, the target's refusals of a batch
	// of one poison record. Every attempt at a poison record ends in one
	// (bisect halves down to it, and never tries the half after it), so
	// each dead-lettering follows 1+poisonRetries of them.
	refusedAlone map[TP]map[int64]int
	// last is told (without blocking) of every 1+poisonRetries-th of
	// them: likely a poison record's last attempt, which its
	// dead-lettering and then its commit follow within a commit
	// interval, a moment to kill the process in.
	last chan struct{}
}

func newPoisonBook(c *Checker) *poisonBook {
	return &poisonBook{c: c, poison: map[TP]map[int64]poisonRec{}, passed: map[TP]map[int64]time.Time{}, last: make(chan struct{}, 1),
		refusedAlone: map[TP]map[int64]int{}}
}

// produced records an acknowledged record; poison ones are kept apart.
func (pb *poisonBook) produced(r *kgo.Record) {
	pb.c.Produced(r)
	if !hasPoison(r.Value) {
		return
	}
	pb.mu.Lock()
	defer pb.mu.Unlock()
	tp := TP{r.Topic, r.Partition}
	if pb.poison[tp] == nil {
		pb.poison[tp] = map[int64]poisonRec{}
	}
	pb.poison[tp][r.Offset] = poisonRec{key: bytes.Clone(r.Key), value: bytes.Clone(r.Value), headers: slices.Clone(r.Headers)}
}

// accepted is the sink's OnBatch: it tells the checker of the batch, with
// the poison records it comes right after in front, once.
func (pb *poisonBook) accepted(recs []sink.Record) {
	var order []TP
	by := map[TP][]sink.Record{}
	for _, r := range recs {
		tp := TP{r.Topic, r.Partition}
		if _, ok := by[tp]; !ok {
			order = append(order, tp)
		}
		by[tp] = append(by[tp], r)
	}
	var all []sink.Record
	pb.mu.Lock()
	for _, tp := range order {
		rs := by[tp]
		for _, r := range rs {
			if hasPoison(r.Value) {
				pb.delivered = append(pb.delivered, fmt.Sprintf("%s@%d", tp, r.Offset))
			}
		}
		var before []sink.Record
		for o := rs[0].Offset - 1; o >= 0; o-- {
			p, ok := pb.poison[tp][o]
			if _, seen := pb.passed[tp][o]; !ok || seen {
				break
			}
			if pb.passed[tp] == nil {
				pb.passed[tp] = map[int64]time.Time{}
			}
			pb.passed[tp][o] = rs[0].Received
			before = append(before, sink.Record{Topic: tp.Topic, Partition: tp.Partition, Offset: o, Key: p.key, Value: p.value, Received: rs[0].Received})
		}
		slices.Reverse(before)
		all = append(all, before...)
		all = append(all, rs...)
	}
	pb.mu.Unlock()
	pb.c.Delivered(all)
}

// decide is the target: 500 for a batch holding a poison record.
func (pb *poisonBook) decide(ev *sink.Event) sink.Decision {
	recs, err := sink.Decode(ev, time.Now())
	if err != nil {
		return sink.Decision{} // the sink answers 400 for it
	}
	for _, r := range recs {
		if hasPoison(r.Value) {
			pb.c.Count("target-500-poison")
			if len(recs) == 1 {
				tp := TP{r.Topic, r.Partition}
				pb.mu.Lock()
				if pb.refusedAlone[tp] == nil {
					pb.refusedAlone[tp] = map[int64]int{}
				}
				pb.refusedAlone[tp][r.Offset]++
				last := pb.refusedAlone[tp][r.Offset]%(1+poisonRetries) == 0
				pb.mu.Unlock()
				if last {
					select {
					case pb.last <- struct{}{}:
					default:
					}
				}
			}
			return sink.Decision{Status: 500}
		}
	}
	return sink.Decision{}
}

// newPoisonSink is newSink with the book between the sink and the checker.
func newPoisonSink(t *testing.T, pb *poisonBook) *httptest.Server {
	t.Helper()
	s := sink.New()
	s.Keep = false
	s.OnBatch = pb.accepted
	s.Decide = func(ev *sink.Event) sink.Decision {
		start := time.Now()
		d := pb.decide(ev)
		// Paced as newSink paces: a refusal takes sinkDelay too, so the
		// checker's MinBatchTime holds for every call.
		if rest := sinkDelay - time.Since(start); rest > 0 {
			d.Delay += rest
		}
		return d
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// poisonProducer is the harness's producer with marked values: it writes
// perRound records to each partition every pace until stopped, one in
// poisonEvery of them poison, each with a poisonHeader, and tells the book
// of every record acknowledged. Its last round, written when it is
// stopped, has no poison, so every poison record has a record after it.
type poisonProducer struct {
	t     *testing.T
	addrs []string
	topic string
	parts int32
	pb    *poisonBook

	stop     chan struct{}
	done     chan struct{}
	err      error
	once     sync.Once
	reported sync.Once
}

func startPoisonProducer(t *testing.T, addrs []string, topic string, parts int32, perRound int, pace time.Duration, pb *poisonBook) *poisonProducer {
	t.Helper()
	p := &poisonProducer{t: t, addrs: addrs, topic: topic, parts: parts, pb: pb, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(perRound, pace)
	t.Cleanup(p.Stop)
	return p
}

func (p *poisonProducer) run(perRound int, pace time.Duration) {
	defer close(p.done)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		p.err = err
		return
	}
	defer cl.Close()
	idx := make([]int, p.parts)
	seq := 0
	for last := false; ; {
		select {
		case <-p.stop:
			last = true
		default:
		}
		var recs []*kgo.Record
		for part := int32(0); part < p.parts; part++ {
			for i := 0; i < perRound; i++ {
				seq++
				kind := "ok"
				if !last && isPoison(part, idx[part]) {
					kind = poisonPrefix
				}
				idx[part]++
				value := fmt.Appendf(nil, "%s %s-%d #%d ", kind, p.topic, part, seq)
				value = append(value, bytes.Repeat([]byte("v"), max(0, 100-len(value)))...)
				recs = append(recs, &kgo.Record{Topic: p.topic, Partition: part, Key: fmt.Appendf(nil, "k-%d-%d", part, seq), Value: value,
					Headers: []kgo.RecordHeader{{Key: poisonHeader, Value: strconv.AppendInt(nil, int64(seq), 10)}}})
			}
		}
		// Never canceled, as in the harness's producer: the checker must
		// learn the offset of every record written.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res := cl.ProduceSync(ctx, recs...)
		cancel()
		for _, r := range res {
			if r.Err != nil {
				p.err = fmt.Errorf("produce to %s-%d: %w", r.Record.Topic, r.Record.Partition, r.Err)
				return
			}
			p.pb.produced(r.Record)
		}
		if last {
			return
		}
		select { // pacing, not synchronisation
		case <-p.stop:
		case <-time.After(pace):
		}
	}
}

// Stop writes the last, poison-free round and waits; a produce error fails
// the test.
func (p *poisonProducer) Stop() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	if p.err != nil {
		p.reported.Do(func() { p.t.Errorf("producer: %v", p.err) })
	}
}

// dlqHold holds, when armed, the next produce request to the failure
// destination topic at the broker (kfake's SleepControl) and reports the
// sluice-source of each record in it, so the test can kill the process
// whose dead-lettering is in flight: the broker writes the records after
// the process died, which never learns they were written.
type dlqHold struct {
	mu      sync.Mutex
	release chan struct{} // non-nil while armed
	hit     chan []string
}

func holdDLQ(cl *kfake.Cluster, topic string, id kadm.TopicID) *dlqHold {
	h := &dlqHold{hit: make(chan []string, 1)}
	cl.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		srcs, ok := produceSources(req.(*kmsg.ProduceRequest), topic, id)
		if !ok {
			return nil, nil, false
		}
		h.mu.Lock()
		rel := h.release
		h.release = nil
		h.mu.Unlock()
		if rel != nil {
			h.hit <- srcs
			cl.SleepControl(func() { <-rel })
		}
		return nil, nil, false // the broker handles it, now or once released
	})
	return h
}

// arm holds the next request to the topic until release is closed.
func (h *dlqHold) arm() (release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.release = make(chan struct{})
	return h.release
}

// disarm stops holding the next request, if none was held yet.
func (h *dlqHold) disarm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.release = nil
}

// produceSources lists the sluice-source headers of req's records to
// topic (named, or from Produce v13 on, by its id); ok is false if req
// writes nothing to topic. The destination writes uncompressed batches; a
// compressed one is listed as "?".
func produceSources(req *kmsg.ProduceRequest, topic string, id kadm.TopicID) (srcs []string, ok bool) {
	for _, t := range req.Topics {
		if t.Topic != topic && (t.TopicID == [16]byte{} || t.TopicID != id) {
			continue
		}
		ok = true
		for _, p := range t.Partitions {
			raw := p.Records
			for len(raw) >= 12 {
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(raw); err != nil || len(raw) < 12+int(rb.Length) {
					return append(srcs, "?"), true
				}
				raw = raw[12+int(rb.Length):] // FirstOffset and Length, then Length bytes
				if rb.Attributes&0x07 != 0 {
					srcs = append(srcs, "?")
					continue
				}
				recs := rb.Records
				for range rb.NumRecords {
					l, n := encbinary.Varint(recs)
					if n <= 0 || len(recs) < n+int(l) {
						return append(srcs, "?"), true
					}
					var r kmsg.Record
					if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
						return append(srcs, "?"), true
					}
					recs = recs[n+int(l):]
					for _, hd := range r.Headers {
						if hd.Key == destination.HeaderSource {
							srcs = append(srcs, string(hd.Value))
						}
					}
				}
			}
		}
	}
	return srcs, ok
}

// dlqMessage is one message of the failure destination, read back.
type dlqMessage struct {
	tp     TP    // the source record's partition, from sluice-source
	offset int64 // and its offset
	at     time.Time
	rec    *kgo.Record
}

// readTopic consumes topic from its start to its end offsets as they are
// now, with a client of its own.
func readTopic(t *testing.T, addrs []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := newAdmin(t, addrs).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			listErr = o.Err
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if listErr != nil {
		t.Fatalf("end offsets of %s: %v", topic, listErr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %d messages read, partitions %v not read to their end: %v", topic, len(out), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// parseSource reads a sluice-source header, "topic-partition@offset".
func parseSource(s string) (TP, int64, bool) {
	tpPart, off, ok := strings.Cut(s, "@")
	i := strings.LastIndexByte(tpPart, '-')
	if !ok || i < 0 {
		return TP{}, 0, false
	}
	p, err1 := strconv.ParseInt(tpPart[i+1:], 10, 32)
	o, err2 := strconv.ParseInt(off, 10, 64)
	if err1 != nil || err2 != nil {
		return TP{}, 0, false
	}
	return TP{tpPart[:i], int32(p)}, o, true
}

func showHeaders(hs []kgo.RecordHeader) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s=%q", h.Key, h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkDLQMessage checks one failure destination message against the
// poison record it is about: the original key, the original headers then
// sluice-condition and sluice-source, and a failure record whose
// recordInfo and payload are that record, given up on after
// 1+poisonRetries attempts answered 500.
func checkDLQMessage(m dlqMessage, want poisonRec) []string {
	var bad []string
	where := fmt.Sprintf("dlq %d@%d (about %s@%d)", m.rec.Partition, m.rec.Offset, m.tp, m.offset)
	if !bytes.Equal(m.rec.Key, want.key) {
		bad = append(bad, fmt.Sprintf("%s: key %q, the record's is %q", where, m.rec.Key, want.key))
	}
	wantHeaders := append(slices.Clone(want.headers),
		kgo.RecordHeader{Key: destination.HeaderCondition, Value: []byte(batch.RetryAttemptsExhausted)},
		kgo.RecordHeader{Key: destination.HeaderSource, Value: fmt.Appendf(nil, "%s@%d", m.tp, m.offset)})
	if !slices.EqualFunc(m.rec.Headers, wantHeaders, func(a, b kgo.RecordHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
		bad = append(bad, fmt.Sprintf("%s: headers %s, want %s", where, showHeaders(m.rec.Headers), showHeaders(wantHeaders)))
	}
	var fr destination.Record
	if err := json.Unmarshal(m.rec.Value, &fr); err != nil {
		return append(bad, fmt.Sprintf("%s: value is not a failure record: %v", where, err))
	}
	if fr.RequestContext.Condition != batch.RetryAttemptsExhausted || fr.RequestContext.ApproximateInvokeCount != 1+poisonRetries {
		bad = append(bad, fmt.Sprintf("%s: condition %s after %d attempts, want %s after %d", where, fr.RequestContext.Condition,
			fr.RequestContext.ApproximateInvokeCount, batch.RetryAttemptsExhausted, 1+poisonRetries))
	}
	if fr.ResponseContext == nil || fr.ResponseContext.StatusCode != 500 {
		bad = append(bad, fmt.Sprintf("%s: responseContext %+v, want statusCode 500", where, fr.ResponseContext))
	}
	if ri := fr.KafkaBatchInfo.RecordInfo; ri == nil || ri.Topic != m.tp.Topic || ri.Partition != m.tp.Partition || ri.Offset != strconv.FormatInt(m.offset, 10) {
		bad = append(bad, fmt.Sprintf("%s: recordInfo %+v disagrees with %s", where, ri, destination.HeaderSource))
	}
	entries, err := destination.DecodeKafka(m.rec)
	switch {
	case err != nil:
		bad = append(bad, fmt.Sprintf("%s: payload: %v", where, err))
	case len(entries) != 1:
		bad = append(bad, fmt.Sprintf("%s: payload holds %d records, want 1", where, len(entries)))
	default:
		e := entries[0]
		if e.Topic != m.tp.Topic || e.Partition != m.tp.Partition || e.Offset != m.offset || !bytes.Equal(e.Key, want.key) ||
			!bytes.Equal(e.Value, want.value) || !slices.EqualFunc(e.Headers, want.headers, func(a, b kgo.RecordHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
			bad = append(bad, fmt.Sprintf("%s: payload is %s-%d@%d key %q value %q headers %s, not the poison record", where, e.Topic, e.Partition, e.Offset, e.Key, e.Value, showHeaders(e.Headers)))
		}
	}
	return bad
}

// TestPoisonRecordsUnderKills runs a pipe with a failure destination
// (onFailure.destination kafka://dlq, maximumRetryAttempts 2,
// bisectBatchOnError) against a target that refuses every batch holding a
// poison record, one record in 500 of each partition, while records are
// produced and `sluice serve` is SIGKILLed and restarted: at random, on a
// poison record's last attempt (so the kill lands around its
// dead-lettering and commit), and while the broker holds its write to dlq
// (the write lands after the process died). A second process joins the
// group and leaves it (SIGTERM or SIGKILL), and dlq refuses writes for a
// while. Then it reads dlq to its end and checks:
//
//   - the checker's contract over the records delivered, with each poison
//     record standing in the order where its dead-lettering took it (see
//     poisonBook): nothing lost, first deliveries in offset order, every
//     duplicate explained by a fault within its bound;
//   - every poison record was never delivered and is in dlq, each message
//     with the original key, headers and record, the condition, the
//     attempts and the target's status;
//   - no other record is in dlq (only poison records fail);
//   - each poison record's first dead-lettering came before the first
//     batch after it reached the target, and in offset order per
//     partition; each dead-lettering followed 1+maximumRetryAttempts
//     refusals of the record alone (none is written twice for one run of
//     retries), and a repeated one has a fault between the two (the
//     record was dead-lettered, not yet committed, and the partition
//     moved on or its process died);
//   - a record whose write to dlq was in flight when its process was
//     killed is dead-lettered again after the kill: it was not committed
//     before the destination acknowledged it;
//   - the group's committed offsets reach the end of every partition.
func TestPoisonRecordsUnderKills(t *testing.T) {
	began := time.Now()
	const topic, parts, group, dlq = "poison", 4, "chaos-poison", "dlq"
	cl := newCluster(t, topic, parts)
	addrs := cl.ListenAddrs()
	adm := newAdmin(t, addrs)
	created, err := adm.CreateTopic(context.Background(), 3, 3, nil, dlq)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", dlq, err)
	}
	// As TestRebalancesUnderLoad: processes commit every 100 ms, plus a
	// commit's round trip under load. A poison record holds its batch
	// for its retries (0.3–0.6 s of the binary's default backoff), and
	// what bisect delivered of the batch before it is committed only
	// after; but the partition finishes no other batch meanwhile, so the
	// bound in batches holds.
	committed := committedReader(t, addrs, group)
	c := NewChecker(CheckerConfig{Committed: committed, InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 500 * time.Millisecond, Slack: 2})
	pb := newPoisonBook(c)
	srv := newPoisonSink(t, pb)
	hold := holdDLQ(cl, dlq, created.ID)
	// inFlight are the kills of a process whose dead-lettering was in
	// flight: when, and of which records.
	type inFlightKill struct {
		at      time.Time
		sources []string
	}
	var inFlight []inFlightKill
	dlqRefused := 0
	settled := func(n int) func() bool {
		return func() bool { return groupSettled(context.Background(), adm, group, topic, n, parts) }
	}

	members := 0
	start := func(name, config, api string, create bool) *testproc.Proc {
		t.Helper()
		p := startProc(t, name, config, api)
		if create {
			p.CLI("pipes", "create", "poison", "--bootstrap-servers", strings.Join(addrs, ","), "--topic", topic,
				"--target", srv.URL, "--batch-size", "20", "--batching-window", "20ms", "--consumer-group-id", group,
				"--on-failure", "kafka://"+dlq, "--maximum-retry-attempts", strconv.Itoa(poisonRetries), "--bisect-on-error")
		}
		return p
	}
	kills, aimed := 0, 0
	aConfig, aAPI := serveConfig(t)
	kill := func(p *testproc.Proc, kind string) *testproc.Proc {
		t.Helper()
		f := c.Begin(kind)
		p.Signal(syscall.SIGKILL)
		f.End(0)
		kills++
		return start(p.Name, aConfig, aAPI, false)
	}
	join := func(name string) *testproc.Proc {
		t.Helper()
		f := c.Begin("member-join")
		config, api := serveConfig(t)
		p := start(name, config, api, true)
		members++
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members", members), settled(members))
		f.End(0)
		return p
	}
	leave := func(p *testproc.Proc, sig syscall.Signal, kind string) {
		t.Helper()
		f := c.Begin(kind)
		p.Signal(sig)
		if sig == syscall.SIGKILL {
			kills++
		}
		members--
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members", members), settled(members))
		f.End(0)
	}

	a := start("a", aConfig, aAPI, true)
	members++
	prod := startPoisonProducer(t, addrs, topic, parts, 2, 20*time.Millisecond, pb)
	progress(t, c, 100, 30*time.Second, "before the first fault")

	for cycle := 0; cycle < mode(3, 10); cycle++ {
		// A kill at a random point of the stream.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond) // pacing
		a = kill(a, "sigkill")
		progress(t, c, 100, 30*time.Second, "after a restart")

		// A kill aimed at a poison record's last attempt: once the
		// target refused it alone for the last time, within about a
		// commit interval, so the kill lands before its dead-lettering,
		// between that and its commit (its next owner dead-letters it
		// again), or after both.
		select {
		case <-pb.last:
		default:
		}
		select {
		case <-pb.last:
		case <-time.After(30 * time.Second):
			t.Fatal("no poison record was refused alone for 30 s: the pipe does not bisect, or makes no progress")
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond) // pacing: where around its dead-lettering the kill lands
		a = kill(a, "sigkill-poison")
		aimed++
		progress(t, c, 100, 30*time.Second, "after a restart")

		// A kill while a's dead-lettering is in flight: the broker holds
		// the produce to dlq, a dies, then the broker writes it. a never
		// learned the records were written, so it cannot have committed
		// them: its restart must dead-letter them again.
		release := hold.arm()
		var srcs []string
		select {
		case srcs = <-hold.hit:
		case <-time.After(30 * time.Second):
			hold.disarm()
			t.Fatal("nothing was dead-lettered for 30 s")
		}
		f := c.Begin("sigkill-dlq-in-flight")
		a.Signal(syscall.SIGKILL)
		f.End(0)
		close(release)
		kills++
		aimed++
		inFlight = append(inFlight, inFlightKill{at: f.Begin, sources: srcs})
		a = start(a.Name, aConfig, aAPI, false)
		progress(t, c, 100, 30*time.Second, "after a restart")

		// The destination refuses writes for a while (a missing ACL,
		// say): the poison records meanwhile wait, offered again with
		// backoff, and hold their partitions up; nothing is redelivered
		// for it, and nothing dropped.
		h := cl.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.TopicAuthorizationFailed, Count: -1})
		waitFor(t, 30*time.Second, dlq+" refusing a dead-lettering", func() bool { return h.Hits() > 0 })
		time.Sleep(mode(1500*time.Millisecond, 3*time.Second)) // pacing: the refusal lasts
		h.Remove()
		dlqRefused += h.Hits()
		c.Count("dlq-refuses-writes")
		progress(t, c, 100, 30*time.Second, "after "+dlq+" took writes again")

		// A second member takes half the partitions, a is killed while
		// they share them, and the second leaves.
		b := join("b")
		progress(t, c, 100, 30*time.Second, "with two members")
		a = kill(a, "sigkill")
		progress(t, c, 100, 30*time.Second, "after a restart beside b")
		if cycle%2 == 0 {
			leave(b, syscall.SIGTERM, "member-leave")
		} else {
			leave(b, syscall.SIGKILL, "member-kill")
		}
		progress(t, c, 100, 30*time.Second, "after b left")
	}
	prod.Stop()
	if t.Failed() {
		t.FailNow()
	}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	// A record missing after this is lost (the checker says which); the
	// failure destination is still read, to show where it went.
	for deadline := time.Now().Add(60 * time.Second); c.Missing() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := c.Missing(); n > 0 {
		problem("%d records neither delivered nor passed as poison 60 s after the producer stopped", n)
	} else {
		// Every poison record's place in the order was taken, and the
		// producer's last round has none: the group must commit up to
		// the end of every partition.
		ctx := context.Background()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
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
		for deadline := time.Now().Add(30 * time.Second); !reached() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if !reached() {
			problem("30 s after the last delivery the group's commits are %v (err %v), the partitions end at %v", got, err, end)
		}
	}
	a.Signal(syscall.SIGTERM)

	// The failure destination, read to its end.
	byPoison := map[TP]map[int64][]dlqMessage{}
	others := 0
	msgs := readTopic(t, addrs, dlq)
	for _, r := range msgs {
		var src, cond string
		for _, h := range r.Headers {
			switch h.Key {
			case destination.HeaderSource:
				src = string(h.Value)
			case destination.HeaderCondition:
				cond = string(h.Value)
			}
		}
		tp, off, ok := parseSource(src)
		if !ok {
			problem("dlq %d@%d: %s header %q is not topic-partition@offset", r.Partition, r.Offset, destination.HeaderSource, src)
			continue
		}
		m := dlqMessage{tp: tp, offset: off, at: r.Timestamp, rec: r}
		pb.mu.Lock()
		want, poison := pb.poison[tp][off]
		pb.mu.Unlock()
		if !poison {
			// Only poison records fail, so no fault explains another
			// record here: a batch refused for its poison record must
			// not take its neighbours with it.
			others++
			problem("dlq %d@%d holds %s@%d (condition %s), which is not poison", r.Partition, r.Offset, tp, off, cond)
			continue
		}
		for _, p := range checkDLQMessage(m, want) {
			problem("%s", p)
		}
		if byPoison[tp] == nil {
			byPoison[tp] = map[int64][]dlqMessage{}
		}
		byPoison[tp][off] = append(byPoison[tp][off], m)
	}

	c.mu.Lock()
	faults := slices.Clone(c.faults)
	c.mu.Unlock()
	// explained says whether a fault can have made a record be
	// dead-lettered twice: the first time before its commit, the second
	// by the partition's next owner (or its process restarted), which
	// resumed from the commit before it. The fault began before the later
	// one, and ended at most settle before the earlier one: the group's
	// moves a fault sets off (a killed member's 1 s session running out,
	// its restart rejoining, the rebalance after it) come up to seconds
	// after it. Timestamps are the producer's, in milliseconds.
	const settle = 5 * time.Second
	explained := func(earlier, later time.Time) bool {
		for _, f := range faults {
			c.mu.Lock()
			fEnd := f.end
			c.mu.Unlock()
			if !f.Begin.After(later.Add(time.Millisecond)) && !fEnd.Add(settle).Before(earlier) {
				return true
			}
		}
		return false
	}
	pb.mu.Lock()
	poisonTotal, deadLettered, repeats := 0, 0, 0
	for _, tp := range slices.SortedFunc(func(yield func(TP) bool) {
		for tp := range pb.poison {
			if !yield(tp) {
				return
			}
		}
	}, func(a, b TP) int { return int(a.Partition - b.Partition) }) {
		var prevOff int64 = -1
		var prevFirst time.Time
		for _, off := range slices.Sorted(func(yield func(int64) bool) {
			for o := range pb.poison[tp] {
				if !yield(o) {
					return
				}
			}
		}) {
			poisonTotal++
			ms := byPoison[tp][off]
			if len(ms) == 0 {
				problem("poison record %s@%d is not in %s", tp, off, dlq)
				continue
			}
			deadLettered++
			if alone := pb.refusedAlone[tp][off]; len(ms)*(1+poisonRetries) > alone {
				problem("poison record %s@%d dead-lettered %d times after %d attempts: each takes %d", tp, off, len(ms), alone, 1+poisonRetries)
			}
			slices.SortFunc(ms, func(a, b dlqMessage) int { return a.at.Compare(b.at) })
			first := ms[0].at
			if next, ok := pb.passed[tp][off]; !ok {
				problem("poison record %s@%d: no batch after it reached the target", tp, off)
			} else if first.After(next) {
				problem("poison record %s@%d first dead-lettered at %s, after the batch after it reached the target at %s",
					tp, off, first.Format("15:04:05.000"), next.Format("15:04:05.000"))
			}
			if prevOff >= 0 && first.Before(prevFirst) {
				problem("poison record %s@%d first dead-lettered at %s, before %s@%d (at %s)", tp, off, first.Format("15:04:05.000"),
					tp, prevOff, prevFirst.Format("15:04:05.000"))
			}
			prevOff, prevFirst = off, first
			for i := 1; i < len(ms); i++ {
				repeats++
				if !explained(ms[i-1].at, ms[i].at) {
					problem("poison record %s@%d dead-lettered again at %s (before: %s) with no fault between", tp, off,
						ms[i].at.Format("15:04:05.000"), ms[i-1].at.Format("15:04:05.000"))
				}
			}
		}
	}
	for _, d := range pb.delivered {
		problem("poison record %s was delivered", d)
	}
	for _, k := range inFlight {
		if len(k.sources) == 0 {
			problem("the produce to %s held at %s carried no %s headers", dlq, k.at.Format("15:04:05.000"), destination.HeaderSource)
		}
		for _, src := range k.sources {
			tp, off, ok := parseSource(src)
			if !ok {
				problem("the produce to %s held at %s carried %s %q", dlq, k.at.Format("15:04:05.000"), destination.HeaderSource, src)
				continue
			}
			if !slices.ContainsFunc(byPoison[tp][off], func(m dlqMessage) bool { return m.at.After(k.at) }) {
				problem("%s@%d was being dead-lettered when its process was killed at %s, and was not dead-lettered again after: it was committed before the destination took it",
					tp, off, k.at.Format("15:04:05.000"))
			}
		}
	}
	passedTotal := 0
	for _, m := range pb.passed {
		passedTotal += len(m)
	}
	pb.mu.Unlock()
	sum, _ := c.Verify()
	figure(t, "%d records over %d partitions, %d poison (1 in %d): %d dead-lettered in %d %s messages (%d repeats), %d other records there; %d SIGKILLs (%d aimed at a poison record's retries or its dead-lettering); %s refused %d writes; %d duplicate deliveries",
		sum.Produced, parts, poisonTotal, poisonEvery, deadLettered, len(msgs), dlq, repeats, others, kills, aimed, dlq, dlqRefused, sum.Duplicated)
	if len(problems) > 0 {
		c.mu.Lock()
		timeline := c.timeline()
		c.mu.Unlock()
		t.Errorf("failure destination contract broken (%d poison records, %d messages in %s):\n  %s\nfaults:\n  %s",
			poisonTotal, len(msgs), dlq, strings.Join(problems, "\n  "), timeline)
	}
	if poisonTotal == 0 || aimed == 0 {
		t.Fatalf("%d poison records produced, %d kills aimed at their retries: the scenario tested nothing", poisonTotal, aimed)
	}
	finishPoison(t, c, began, passedTotal)
}

// finishPoison is finish for a scenario whose checker was told of
// poison records that were dead-lettered, not delivered: the row counts
// only what the target accepted.
func finishPoison(t *testing.T, c *Checker, began time.Time, poison int) {
	t.Helper()
	sum, err := c.Verify()
	dur := time.Since(began)
	sum.Delivered -= poison
	t.Logf("%s: produced %d, delivered %d (besides %d poison records, dead-lettered), lost %d, duplicated %d (%d batches, worst fault %d of bound %d), faults %s, %s",
		t.Name(), sum.Produced, sum.Delivered, poison, sum.Lost, sum.Duplicated, sum.DuplicateBatches, sum.WorstFault, sum.WorstBound,
		sum.FaultsString(), dur.Round(100*time.Millisecond))
	rowsMu.Lock()
	rows = append(rows, row{name: strings.TrimPrefix(t.Name(), "Test"), sum: sum, dur: dur, ok: err == nil && !t.Failed()})
	rowsMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Produced == 0 {
		t.Fatal("nothing was produced: the scenario tested nothing")
	}
}
