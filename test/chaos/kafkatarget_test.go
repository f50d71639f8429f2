package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/source"
	"github.com/sluice-dev/sluice/test/testproc"
)

// Kafka target scenarios: a pipe copies topic "in" to topic "out" (the
// kafka target) while `sluice serve` is SIGKILLed and restarted and a
// second member joins and leaves, and "out" is then read back and matched
// record by record against what the producer had acknowledged. The
// harness's Checker is not used: it checks HTTP batches by source offset,
// while here the output is another topic, matched by value.
const (
	ktSource   = "in"
	ktOut      = "out"
	ktParts    = 4
	ktOutParts = 3
	// ktKeys is the keys per source partition: few, so each key recurs
	// every few dozen records and per-key order is checked many times.
	ktKeys = 20
	// Headers every source record carries, which the produced record must
	// keep as they are (the trace header twice: order and repeats too).
	ktHeaderSeq   = "chaos-seq"
	ktHeaderTrace = "chaos-trace"
)

// ktRecord is a source record the broker acknowledged.
type ktRecord struct {
	part    int32
	offset  int64
	seq     int // per partition, from 0: the source order
	key     string
	value   string
	headers []kgo.RecordHeader
	acked   time.Time
}

func (r *ktRecord) String() string {
	return fmt.Sprintf("%s (%s-%d@%d, key %s, acknowledged %s)", r.value, ktSource, r.part, r.offset, r.key, r.acked.Format("15:04:05.000"))
}

// ktProducer writes keyed records to every source partition, perRound
// each every pace, and remembers every one the broker acknowledged.
type ktProducer struct {
	t     *testing.T
	addrs []string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	err   error

	mu    sync.Mutex
	acked map[string]*ktRecord // by value, unique
}

func startKTProducer(t *testing.T, addrs []string, perRound int, pace time.Duration) *ktProducer {
	t.Helper()
	p := &ktProducer{t: t, addrs: addrs, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]*ktRecord{}}
	go p.run(perRound, pace)
	t.Cleanup(p.Stop)
	return p
}

func (p *ktProducer) run(perRound int, pace time.Duration) {
	defer close(p.done)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		p.err = err
		return
	}
	defer cl.Close()
	seq := make([]int, ktParts)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		var recs []*kgo.Record
		for part := int32(0); part < ktParts; part++ {
			for range perRound {
				s := seq[part]
				seq[part]++
				// Keys are per partition, so one key's source order is
				// its partition's offset order.
				recs = append(recs, &kgo.Record{Topic: ktSource, Partition: part,
					Key:   fmt.Appendf(nil, "k%d-%02d", part, rand.IntN(ktKeys)),
					Value: fmt.Appendf(nil, "p%d-%07d", part, s),
					Headers: []kgo.RecordHeader{
						{Key: ktHeaderSeq, Value: strconv.AppendInt(nil, int64(s), 10)},
						{Key: ktHeaderTrace, Value: fmt.Appendf(nil, "%08x", rand.Uint32())},
						{Key: ktHeaderTrace, Value: []byte{}},
					}})
			}
		}
		// Never canceled, as the harness's producer: a record written
		// whose acknowledgement was not waited for would show in "out" as
		// a record never produced.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		res := cl.ProduceSync(ctx, recs...)
		cancel()
		now := time.Now()
		p.mu.Lock()
		for _, r := range res {
			if r.Err != nil {
				p.mu.Unlock()
				p.err = fmt.Errorf("produce to %s-%d: %w", r.Record.Topic, r.Record.Partition, r.Err)
				return
			}
			var part, s int
			fmt.Sscanf(string(r.Record.Value), "p%d-%d", &part, &s)
			p.acked[string(r.Record.Value)] = &ktRecord{part: r.Record.Partition, offset: r.Record.Offset, seq: s, key: string(r.Record.Key),
				value: string(r.Record.Value), headers: r.Record.Headers, acked: now}
		}
		p.mu.Unlock()
		select { // pacing, not synchronisation
		case <-p.stop:
			return
		case <-time.After(pace):
		}
	}
}

// Stop stops producing and waits; a produce error fails the test.
func (p *ktProducer) Stop() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	if p.err != nil {
		p.t.Errorf("producer: %v", p.err)
		p.err = nil
	}
}

func (p *ktProducer) records() map[string]*ktRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// ktRead is what one reader of a topic saw: its data records, in offset
// order per partition, and the transaction markers between them.
type ktRead struct {
	recs            []*kgo.Record
	commits, aborts int
}

// readToEnd reads topic from its start to its end offsets with a client of
// its own, read_committed or not. It keeps control records (transaction
// markers), so the reader knows where it is even when a partition ends in
// an aborted transaction or a marker: a read_committed consumer is never
// handed aborted records or markers otherwise, and would wait for ever for
// the offsets they take. A read_committed read first waits until every
// partition's last stable offset is its end offset (no transaction open),
// for up to txnWait: before that a read_committed fetch stops at the last
// stable offset.
func readToEnd(t *testing.T, addrs []string, topic string, committed bool, txnWait time.Duration) ktRead {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), txnWait+60*time.Second)
	defer cancel()
	adm := newAdmin(t, addrs)
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) map[int32]int64 {
		t.Helper()
		offs, err := f(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			t.Fatalf("listing the offsets of %s: %v", topic, err)
		}
		out := map[int32]int64{}
		offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	ends := list(adm.ListEndOffsets)
	if committed {
		deadline := time.Now().Add(txnWait)
		for {
			stable := list(adm.ListCommittedOffsets)
			ends = list(adm.ListEndOffsets)
			open := false
			for p, end := range ends {
				open = open || stable[p] != end
			}
			if !open {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the last stable offsets %v stay below the end offsets %v for %s: a transaction is still open", topic, stable, ends, txnWait)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	want := map[int32]int64{}
	for p, end := range ends {
		if end > 0 {
			want[p] = end
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords()}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out ktRead
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s (read_committed %v): %d records read, partitions %v (to their end offsets) not read to their end: %v",
				topic, committed, len(out.recs), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case !r.Attrs.IsControl():
				out.recs = append(out.recs, r)
			case len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 0: // version int16, type int16: 0 is abort
				out.aborts++
			default:
				out.commits++
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	// Per partition in offset order; the polls interleave partitions.
	slices.SortStableFunc(out.recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

// txnAborts reads sluice_transaction_aborts_total from a process's
// /metrics, summed over its pipes; ok is false when it cannot be read.
func txnAborts(p *testproc.Proc) (n int, ok bool) {
	req, err := http.NewRequest("GET", "http://"+p.API+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "sluice_transaction_aborts_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return n, false
		}
		n += int(v)
	}
	return n, sc.Err() == nil
}

// ktMember is one `sluice serve` of the scenario. Its config (and so its
// data directory, and the member name kept there) stays the same across
// restarts: the restarted process is the same static group member, with
// the same EXACTLY_ONCE transactional id, which aborts the transaction its
// killed predecessor left open.
type ktMember struct {
	name, config, api string
	proc              *testproc.Proc
	created           bool
	// memberName is the name the process claimed in its data directory:
	// its transactional ids are sluice-<memberName>-<pipe UUID>.
	memberName string
	// started is when the current process started; running is false
	// once it was signaled.
	started time.Time
	running bool
}

// TestKafkaTargetAtLeastOnceUnderKills: with delivery AT_LEAST_ONCE, every
// acknowledged source record reaches "out" at least once through
// SIGKILLs, restarts and rebalances, with its key and headers, nothing
// reaches it that was never produced, and per key the first copies come
// in source order.
func TestKafkaTargetAtLeastOnceUnderKills(t *testing.T) {
	runKafkaTargetUnderKills(t, pipe.AtLeastOnce)
}

// TestKafkaTargetExactlyOnceUnderKills: with delivery EXACTLY_ONCE, a
// read_committed reader of "out" sees every acknowledged source record
// exactly once through SIGKILLs, restarts and rebalances, in source order
// per key, with its key and headers.
func TestKafkaTargetExactlyOnceUnderKills(t *testing.T) {
	runKafkaTargetUnderKills(t, pipe.ExactlyOnce)
}

// runKafkaTargetUnderKills is both scenarios; see their docs. Each cycle:
// SIGKILL of a at a random point and its restart; b joins; SIGKILL of a
// while b holds half the partitions, and its restart; b leaves (SIGTERM
// or SIGKILL, alternately). Every fault is followed by progress: the group
// commits more source records.
func runKafkaTargetUnderKills(t *testing.T, delivery string) {
	began := time.Now()
	eos := delivery == pipe.ExactlyOnce
	group := "chaos-kafkatarget-" + strings.ToLower(delivery)
	cl := newCluster(t, ktSource, ktParts)
	addrs := cl.ListenAddrs()
	adm := newAdmin(t, addrs)
	created, err := adm.CreateTopic(context.Background(), ktOutParts, 3, nil, ktOut)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", ktOut, err)
	}
	committed := committedReader(t, addrs, group)
	committedSum := func() (int64, bool) {
		got, err := committed(context.Background())
		if err != nil {
			return 0, false
		}
		var n int64
		for _, o := range got {
			n += o
		}
		return n, true
	}
	settled := func(n int) func() bool {
		return func() bool { return groupSettled(context.Background(), adm, group, ktSource, n, ktParts) }
	}

	// The fault timeline, for a failure's message.
	var timeline []string
	event := func(format string, args ...any) {
		timeline = append(timeline, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
	faults := map[string]int{}
	kills, rebalances, aborts := 0, 0, 0
	abortsKnown := true
	// scrape adds a process's transaction aborts to the total before it
	// is signaled: the counter lives and dies with the process. A SIGKILL
	// loses what the process aborted since; the total is a lower bound.
	scrape := func(m *ktMember) {
		if !eos {
			return
		}
		n, ok := txnAborts(m.proc)
		aborts += n
		abortsKnown = abortsKnown && ok
	}

	newMember := func(name string) *ktMember {
		config, api := serveConfig(t)
		return &ktMember{name: name, config: config, api: api}
	}
	a, b := newMember("a"), newMember("b")
	start := func(m *ktMember) {
		t.Helper()
		// Info, not startProc's warn: an aborted transaction and its
		// reason are logged at info, what one needs to explain a
		// duplicate or a loss; a failed test prints every process's output.
		m.started = time.Now()
		m.proc = testproc.Start(t, binary, m.name, m.api, "serve", "--config", m.config, "--log-level", "info")
		m.running = true
		// serveConfig puts the data directory, where the member name is
		// kept, beside the config.
		id, err := os.ReadFile(filepath.Join(filepath.Dir(m.config), "member.id"))
		if err != nil {
			t.Fatalf("reading %s's member name: %v", m.name, err)
		}
		m.memberName = strings.TrimSpace(string(id))
		if m.created {
			return
		}
		args := []string{"pipes", "create", "copy", "--bootstrap-servers", strings.Join(addrs, ","), "--topic", ktSource,
			"--target", "kafka://" + ktOut, "--batch-size", "20", "--batching-window", "20ms", "--consumer-group-id", group}
		if eos {
			args = append(args, "--delivery", pipe.ExactlyOnce)
		}
		m.proc.CLI(args...)
		m.created = true
	}
	kill := func(m *ktMember, kind string) {
		t.Helper()
		scrape(m)
		event("SIGKILL %s (%s)", m.name, kind)
		m.proc.Signal(syscall.SIGKILL)
		m.running = false
		kills++
		faults[kind]++
	}
	members := 1
	join := func(m *ktMember) {
		t.Helper()
		event("%s joins", m.name)
		start(m)
		members++
		rebalances++
		faults["member-join"]++
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members after %s joined", members, m.name), settled(members))
		event("group settled with %d members", members)
	}
	leave := func(m *ktMember, sig syscall.Signal) {
		t.Helper()
		scrape(m)
		kind := "member-leave"
		if sig == syscall.SIGKILL {
			kind = "member-kill"
			kills++
		}
		event("%s leaves (%v)", m.name, sig)
		m.proc.Signal(sig)
		m.running = false
		members--
		rebalances++
		faults[kind]++
		waitFor(t, 60*time.Second, fmt.Sprintf("the group to settle with %d members after %s left (%v)", members, m.name, sig), settled(members))
		event("group settled with %d members", members)
	}
	// progress waits until the group committed n more source records:
	// for EXACTLY_ONCE, transactions that committed. Within 30 s, with one
	// exception Kafka's transactions impose: a member killed while it
	// committed offsets in a transaction, and not back, holds the group's
	// offsets unstable until the broker aborts its transaction after the
	// transaction timeout (a minute), and a consumer requiring stable
	// offsets (EXACTLY_ONCE) starts no partition meanwhile. For that, and
	// only that, short mode brings the member back (its transactional id
	// returns and aborts the transaction at once) and lets it leave again;
	// long mode waits until 30 s after the broker's timeout, which it
	// exercises so.
	//
	// A restarted process whose own transactional id still has its killed
	// predecessor's transaction open is a bug (its InitProducerID should
	// have aborted it): the first time, it is recorded as a failure and
	// waited out as well, so the run still gives its exactly-once verdict;
	// a second time ends the test, rather than wait a minute per kill.
	var stalls, stallBugs []string
	progress := func(n int64, what string) {
		t.Helper()
		before, _ := committedSum()
		began := time.Now()
		deadline := began.Add(30 * time.Second)
		extended := false
		var revived *ktMember
		for {
			if s, ok := committedSum(); ok && s >= before+n {
				if extended {
					stalls = append(stalls, fmt.Sprintf("%s: %.1f s", what, time.Since(began).Seconds()))
				}
				if revived != nil {
					leave(revived, syscall.SIGTERM)
				}
				return
			}
			if time.Now().After(deadline) {
				d := ktDiagnose(t, addrs, group, []*ktMember{a, b})
				switch {
				case !extended && d.ownOpen == "" && d.deadOpen != nil:
					extended = true
					t.Logf("no progress for 30 s %s: %s's open transaction holds the group's offsets unstable\n%s", what, d.dead.name, d.text)
					if mode(true, false) {
						event("no progress %s: %s's open transaction holds the group's offsets unstable; bringing %s back", what, d.dead.name, d.dead.name)
						revived = d.dead
						join(revived)
						deadline = time.Now().Add(30 * time.Second)
						continue
					}
					deadline = d.deadOpen.Add(source.DefaultTransactionTimeout + 30*time.Second)
					event("no progress %s: %s's open transaction holds the group's offsets unstable; waiting for the broker's transaction timeout", what, d.dead.name)
					continue
				case d.ownOpen != "" && len(stallBugs) == 0:
					extended = true
					deadline = d.ownStart.Add(source.DefaultTransactionTimeout + 30*time.Second)
					stallBugs = append(stallBugs, fmt.Sprintf("no progress for 30 s %s; %s%s", what, d.ownOpen, d.text))
					t.Logf("no progress for 30 s %s: %s%s", what, d.ownOpen, d.text)
					event("no progress %s: %swaiting for the broker to time out that transaction", what, d.ownOpen)
					continue
				}
				t.Fatalf("timed out after %.0f s waiting for the group to commit %d more source records %s\n%s%s\nearlier: %s\nfaults:\n  %s",
					time.Since(began).Seconds(), n, what, d.ownOpen, d.text, strings.Join(stallBugs, "\n"), strings.Join(timeline, "\n  "))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	start(a)
	// 400 records/s over 4 partitions, 20-record batches: a poll's
	// transaction holds a few batches per partition.
	prod := startKTProducer(t, addrs, 2, 20*time.Millisecond)
	progress(200, "before the first fault")

	cycles := mode(3, 8)
	for cycle := range cycles {
		time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond) // pacing: a random point of the stream
		kill(a, "sigkill")
		start(a)
		event("a restarted")
		progress(200, "after a's restart")

		join(b)
		progress(200, "with two members")
		time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond) // pacing
		kill(a, "sigkill-beside-b")
		start(a)
		event("a restarted")
		waitFor(t, 60*time.Second, "the group to settle with 2 members after a's restart", settled(2))
		progress(200, "after a's restart beside b")

		// Alternately, the last cycle always a SIGTERM: b's next start
		// (the same member name, so the same transactional id) aborts
		// what a killed b left open. After the last cycle nothing would,
		// and for EXACTLY_ONCE its open transaction would hold the
		// partitions of "out" it wrote to unstable for the broker's
		// transaction timeout (a minute), longer than short mode lasts.
		sig := syscall.SIGTERM
		if (cycles-1-cycle)%2 == 1 {
			sig = syscall.SIGKILL
		}
		leave(b, sig)
		progress(200, fmt.Sprintf("after b left (%v)", sig))
	}
	prod.Stop()
	if t.Failed() {
		t.FailNow()
	}
	acked := prod.records()

	// Every source record must be committed: the group's offsets reach
	// the end of every partition.
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, ktSource)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", ktSource, err)
	}
	end := map[TP]int64{}
	ends.Each(func(o kadm.ListedOffset) { end[TP{o.Topic, o.Partition}] = o.Offset })
	var got map[TP]int64
	var gotErr error
	reached := func() bool {
		if got, gotErr = committed(ctx); gotErr != nil {
			return false
		}
		for tp, e := range end {
			if got[tp] != e {
				return false
			}
		}
		return len(end) == ktParts
	}
	for deadline := time.Now().Add(90 * time.Second); !reached(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("90 s after the producer stopped the group's committed offsets are %v (err %v), %s ends at %v\nfaults:\n  %s",
				got, gotErr, ktSource, end, strings.Join(timeline, "\n  "))
		}
	}
	event("group committed to the end")
	scrape(a)
	a.proc.Signal(syscall.SIGTERM)
	event("a stopped (SIGTERM)")

	// For AT_LEAST_ONCE, read_committed reads the same as read_uncommitted
	// (no transactions); it is the reader the guarantee is about.
	read := readToEnd(t, addrs, ktOut, true, 30*time.Second)
	var uncommitted ktRead
	if eos {
		uncommitted = readToEnd(t, addrs, ktOut, false, 0)
	}

	// Match "out" against the acknowledged records.
	copies := map[string][]*kgo.Record{}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 40 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	outAt := func(r *kgo.Record) string {
		return fmt.Sprintf("%s-%d@%d (written %s, producer %d epoch %d)", ktOut, r.Partition, r.Offset,
			r.Timestamp.Format("15:04:05.000"), r.ProducerID, r.ProducerEpoch)
	}
	unknown := 0
	// firstSeq is each key's latest first copy: first copies must come
	// in source order, and for EXACTLY_ONCE every copy is a first one.
	firstSeq := map[string]int{}
	for _, r := range read.recs {
		v := string(r.Value)
		src, ok := acked[v]
		if !ok {
			unknown++
			problem("%s holds %q (key %q), which was never produced", outAt(r), v, r.Key)
			continue
		}
		copies[v] = append(copies[v], r)
		if string(r.Key) != src.key {
			problem("%s: %s has key %q, its source record %q", outAt(r), v, r.Key, src.key)
		}
		if !slices.EqualFunc(r.Headers, src.headers, func(x, y kgo.RecordHeader) bool {
			return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
		}) {
			problem("%s: %s has headers %s, its source record %s", outAt(r), v, showHeaders(r.Headers), showHeaders(src.headers))
		}
		if len(copies[v]) > 1 {
			continue
		}
		if prev, ok := firstSeq[src.key]; ok && src.seq < prev {
			problem("key %s: %s first appears at %s, after p%d-%07d", src.key, src, outAt(r), src.part, prev)
		}
		firstSeq[src.key] = max(firstSeq[src.key], src.seq)
	}
	var lost []*ktRecord
	duplicated, dupRecords := 0, 0
	var dupExamples []string
	for _, src := range acked {
		cs := copies[src.value]
		if len(cs) == 0 {
			lost = append(lost, src)
			continue
		}
		if len(cs) > 1 {
			duplicated += len(cs) - 1
			dupRecords++
			if len(dupExamples) < 10 {
				var at []string
				for _, c := range cs {
					at = append(at, outAt(c))
				}
				dupExamples = append(dupExamples, fmt.Sprintf("%s %d times: %s", src, len(cs), strings.Join(at, ", ")))
			}
		}
	}
	slices.SortFunc(lost, func(x, y *ktRecord) int {
		if x.part != y.part {
			return int(x.part - y.part)
		}
		return x.seq - y.seq
	})
	for i, src := range lost {
		if i == 10 {
			problem("… %d more lost", len(lost)-i)
			break
		}
		problem("lost: %s is not in %s", src, ktOut)
	}
	if eos {
		for _, d := range dupExamples {
			problem("duplicated: %s", d)
		}
	}
	for _, s := range stallBugs {
		problem("stalled: %s", s)
	}

	sum := Summary{Produced: len(acked), Delivered: len(copies), Lost: len(lost), Duplicated: duplicated, Faults: faults}
	rowsMu.Lock()
	rows = append(rows, row{name: strings.TrimPrefix(t.Name(), "Test"), sum: sum, dur: time.Since(began), ok: len(problems) == 0 && !t.Failed()})
	rowsMu.Unlock()
	if eos {
		abortsFig := "unknown"
		if abortsKnown {
			abortsFig = fmt.Sprintf("at least %d", aborts)
		}
		stalled := "none"
		if len(stalls) > 0 {
			stalled = strings.Join(stalls, "; ")
		}
		figure(t, "%d records over %d partitions (%d keys each) copied to %s (%d partitions): the read_committed reader saw %d, %d duplicates, %d lost, %d never produced; %d SIGKILLs, %d forced rebalances over %d cycles; transactions aborted: %s by sluice_transaction_aborts_total, %d abort markers and %d commit markers in %s, %d records of aborted transactions there; progress held up by a dead member's open transaction: %s",
			len(acked), ktParts, ktKeys, ktOut, ktOutParts, len(read.recs), duplicated, len(lost), unknown, kills, rebalances, cycles,
			abortsFig, uncommitted.aborts, uncommitted.commits, ktOut, len(uncommitted.recs)-len(read.recs), stalled)
	} else {
		figure(t, "%d records over %d partitions (%d keys each) copied to %s (%d partitions): %d records read, %d duplicates (of %d records), %d lost, %d never produced; %d SIGKILLs, %d forced rebalances over %d cycles",
			len(acked), ktParts, ktKeys, ktOut, ktOutParts, len(read.recs), duplicated, dupRecords, len(lost), unknown, kills, rebalances, cycles)
	}
	if len(problems) > 0 {
		t.Errorf("%s: the guarantee or the pipe's progress broke (%d records acknowledged, %d read from %s):\n  %s\nfaults:\n  %s",
			delivery, len(acked), len(read.recs), ktOut, strings.Join(problems, "\n  "), strings.Join(timeline, "\n  "))
	}
	if len(acked) == 0 || kills == 0 {
		t.Fatalf("%d records produced, %d kills: the scenario tested nothing", len(acked), kills)
	}
}

// ktDiagnosis is what ktDiagnose found.
type ktDiagnosis struct {
	text string
	// ownOpen, when not empty, says a running process's own
	// transactional id has a transaction open since before the process
	// started (since ownStart): the restarted process did not abort its
	// predecessor's.
	ownOpen  string
	ownStart *time.Time
	// deadOpen is the start of the oldest open transaction of a member
	// not running (dead), when the group's offsets are unstable.
	deadOpen *time.Time
	dead     *ktMember
}

// ktDiagnose describes what can hold the pipe up, for a failure's
// message: the group (members, assignments, committed offsets), whether
// its offsets are stable (a transaction that wrote offsets and did not end
// makes a consumer that requires stable offsets, as EXACTLY_ONCE does,
// wait), and the transactions the cluster knows, by member.
func ktDiagnose(t *testing.T, addrs []string, group string, members []*ktMember) ktDiagnosis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d ktDiagnosis
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		d.text = err.Error()
		return d
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var b strings.Builder
	if gs, err := adm.DescribeGroups(ctx, group); err != nil {
		fmt.Fprintf(&b, "group %s: %v\n", group, err)
	} else {
		g := gs[group]
		fmt.Fprintf(&b, "group %s: state %s, %d members\n", group, g.State, len(g.Members))
		for _, m := range g.Members {
			a, _ := m.Assigned.AsConsumer()
			var parts []string
			for _, tp := range a.Topics {
				parts = append(parts, fmt.Sprintf("%s%v", tp.Topic, tp.Partitions))
			}
			inst := ""
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(&b, "  member %s (instance %s): %s\n", m.MemberID, inst, strings.Join(parts, " "))
		}
	}
	if offs, err := adm.FetchOffsets(ctx, group); err != nil {
		fmt.Fprintf(&b, "committed offsets: %v\n", err)
	} else {
		var parts []string
		offs.Each(func(o kadm.OffsetResponse) {
			parts = append(parts, fmt.Sprintf("%s-%d@%d", o.Topic, o.Partition, o.At))
		})
		slices.Sort(parts)
		fmt.Fprintf(&b, "committed offsets: %s\n", strings.Join(parts, " "))
	}
	unstable := false
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = group, true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	req.Groups = append(req.Groups, rg)
	if resp, err := req.RequestWith(ctx, cl); err != nil {
		fmt.Fprintf(&b, "stable offsets: %v\n", err)
	} else {
		var errs []string
		code := func(c int16) {
			if err := kerr.ErrorForCode(c); err != nil {
				errs = append(errs, err.Error())
				unstable = unstable || errors.Is(err, kerr.UnstableOffsetCommit)
			}
		}
		code(resp.ErrorCode)
		for _, g := range resp.Groups {
			code(g.ErrorCode)
			for _, tp := range g.Topics {
				for _, p := range tp.Partitions {
					code(p.ErrorCode)
				}
			}
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				code(p.ErrorCode)
			}
		}
		slices.Sort(errs)
		fmt.Fprintf(&b, "offset fetch requiring stable offsets: errors %v\n", slices.Compact(errs))
	}
	txns, err := adm.DescribeTransactions(ctx)
	if err != nil {
		fmt.Fprintf(&b, "transactions: %v\n", err)
	}
	for _, tx := range txns.Sorted() {
		started := time.UnixMilli(tx.StartTimestamp)
		whose := "?"
		for _, m := range members {
			if m.memberName == "" || !strings.HasPrefix(tx.TxnID, "sluice-"+m.memberName+"-") {
				continue
			}
			whose = m.name
			if tx.State != "Ongoing" {
				break
			}
			switch {
			case m.running && started.Before(m.started):
				d.ownOpen = fmt.Sprintf("likely cause: %s's transactional id %s has had a transaction open since %s, before %s's process started at %s, "+
					"and the group's offsets are unstable %v: the restarted process did not abort its predecessor's transaction (producer %d, epoch %d unchanged)\n",
					m.name, tx.TxnID, started.Format("15:04:05.000"), m.name, m.started.Format("15:04:05.000"), unstable, tx.ProducerID, tx.ProducerEpoch)
				d.ownStart = &started
			case !m.running && unstable && (d.deadOpen == nil || started.Before(*d.deadOpen)):
				d.deadOpen, d.dead = &started, m
			}
			break
		}
		fmt.Fprintf(&b, "transaction %s (%s): %s, producer %d epoch %d, started %s, partitions %v, err %v\n", tx.TxnID, whose, tx.State,
			tx.ProducerID, tx.ProducerEpoch, started.Format("15:04:05.000"), tx.Topics.Sorted(), tx.Err)
	}
	d.text = b.String()
	return d
}
