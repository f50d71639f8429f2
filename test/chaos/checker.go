// Package chaos is Sluice's reliability suite: real 3-broker Kafka clusters
// (franz-go's kfake), real HTTP targets (internal/sink), and the real engine,
// in-process or as the `sluice serve` binary, under target error storms,
// target timeouts, SIGKILLs, broker faults, consumer group rebalances and
// partitions added mid-run. Every scenario produces while it injects faults,
// tells a Checker about every record produced, every batch delivered and
// every fault injected, and fails unless the Checker finds the delivery
// contract held: nothing lost, first deliveries in the order the pipe's
// ordering promises (offset order per partition for PARTITION, per
// partition and key for KEY, none for NONE), and every duplicate explained
// by a fault, within a bound per fault.
//
// Short mode is the default and is what CI runs (the whole package in about
// two minutes under -race on two cores):
//
//	go test -race -count=1 ./test/chaos
//
// Long mode runs longer storms, more records and more kill cycles:
//
//	go test ./test/chaos -run . -v -count=1 -timeout 30m -args -chaos.long
//
// Both print a summary table, one row per scenario, after the tests ran
// (go test shows a passing package's output with -v). A failing scenario
// names the engine's debug log it kept, and the checker's error lists the
// first broken promises with the faults' timeline.
//
// Faults the suite injects: target refusals (500, 503, Retry-After) and
// timeouts; SIGKILL of `sluice serve`; kfake faults on Fetch,
// OffsetCommit, Heartbeat and FindCoordinator, coordinator and partition
// leader moves; consumer group members joining, leaving and dying; and
// partitions added to the topic.
package chaos

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// CheckerConfig says what the Checker may assume about the system under
// test when it bounds duplicates.
type CheckerConfig struct {
	// Committed reads the group's committed offsets (kadm.FetchOffsets).
	// A fault records them when it begins; nil means faults know no
	// commits, so any offset counts as uncommitted.
	Committed func(ctx context.Context) (map[TP]int64, error)
	// InFlight is the longest a batch can take from being sent to being
	// accepted by the target: a batch in flight when a fault ends can be
	// accepted up to this long after it and still be redelivered because
	// of that fault.
	InFlight time.Duration
	// MinBatchTime is the least time the target spends on every batch (the
	// test sink's pacing delay). A partition has one batch in flight at a
	// time, so it finishes at most d/MinBatchTime+1 batches in any span d;
	// this turns "the batches finished since the last commit" into a
	// number. Required (>0) for faults other than timeouts.
	MinBatchTime time.Duration
	// CommitPeriod is the longest finished work may wait to be committed
	// when commits work: the source's commit interval plus a commit's
	// round trip under load.
	CommitPeriod time.Duration
	// Slack is extra duplicate batches allowed per partition and fault,
	// for what the formula does not model (a commit answered just after
	// the fault's committed offsets were read).
	Slack int

	// Ordering is the pipe's ordering, which says what order first
	// deliveries must keep (see Verify) and how duplicates are bounded
	// (see bound): pipe.OrderingPartition (or empty, the default),
	// pipe.OrderingKey or pipe.OrderingNone.
	Ordering string
	// Window, for KEY and NONE, is the most records a partition's worker
	// holds from its commit mark on: source.Config.MaxInFlightRecords,
	// 100 batches by default (at most 10,000 records). Required (>0) for
	// faults other than timeouts in those orderings.
	Window int
	// BatchSize, for KEY and NONE, turns Slack into records (default 1).
	BatchSize int
}

// concurrent reports whether the ordering lets a partition have several
// batches in flight (KEY or NONE): then the duplicates a fault explains are
// bounded in records, not batches.
func (c *Checker) concurrent() bool {
	return c.cfg.Ordering == pipe.OrderingKey || c.cfg.Ordering == pipe.OrderingNone
}

// Fault is one injected fault: an instant (Checker.Fault) or a window
// (Checker.Begin … Fault.End). See Checker.Verify for what it explains.
type Fault struct {
	Kind  string
	Begin time.Time
	end   time.Time
	// Committed is the group's committed offsets when the fault began;
	// nil when they could not be read (then the last snapshot that could
	// is used, a lower bound because a correct source only moves commits
	// forward).
	Committed map[TP]int64
	// Requests is how many Kafka requests the fault answered, when known.
	Requests int
	// batch is set for a timeout fault: the batch the target accepted
	// after the client gave up on it.
	batch   *TP
	first   int64
	last    int64
	records int // the batch's records

	c *Checker
	// used counts duplicates attributed to the fault, by partition: batches
	// (PARTITION) or records (KEY, NONE).
	used map[TP]int
	// bounds caches bound by partition during a Verify.
	bounds map[TP]int
}

// End closes a window fault; requests is how many Kafka requests it
// answered (0 when not applicable).
func (f *Fault) End(requests int) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	f.end = time.Now()
	f.Requests += requests
}

// delivery is one accepted batch of one partition.
type delivery struct {
	seq      int
	tp       TP
	recs     []sink.Record
	received time.Time // when the target got the request
	accepted time.Time // when the target accepted it (OnBatch)
}

// Checker records what was produced, delivered and injected, and checks the
// delivery contract over it. Its methods are safe for concurrent use.
type Checker struct {
	cfg CheckerConfig

	mu         sync.Mutex
	produced   map[TP]map[int64][]byte // offset → key
	deliveries []delivery
	faults     []*Fault
	counted    map[string]int // faults that cannot cause redelivery
	lastSnap   map[TP]int64
	seq        int
	samples    []commitSample
}

// commitSample is the group's committed offsets as SampleCommits read
// them, and when the read had returned.
type commitSample struct {
	at        time.Time
	committed map[TP]int64
}

// NewChecker returns an empty Checker.
func NewChecker(cfg CheckerConfig) *Checker {
	return &Checker{cfg: cfg, produced: map[TP]map[int64][]byte{}, counted: map[string]int{}}
}

// Produced records a record the broker acknowledged, with the offset it
// was written at; call it from the produce promise when err is nil.
func (c *Checker) Produced(r *kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := TP{r.Topic, r.Partition}
	m := c.produced[tp]
	if m == nil {
		m = map[int64][]byte{}
		c.produced[tp] = m
	}
	m[r.Offset] = bytes.Clone(r.Key)
}

// Delivered records a batch the target accepted; it has the shape of
// sink.Sink.OnBatch.
func (c *Checker) Delivered(recs []sink.Record) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// An event could carry several partitions; the contract is per
	// partition, so each is its own delivery.
	var order []TP
	by := map[TP][]sink.Record{}
	for _, r := range recs {
		tp := TP{r.Topic, r.Partition}
		if _, ok := by[tp]; !ok {
			order = append(order, tp)
		}
		by[tp] = append(by[tp], r)
	}
	for _, tp := range order {
		rs := by[tp]
		c.seq++
		c.deliveries = append(c.deliveries, delivery{seq: c.seq, tp: tp, recs: rs, received: rs[0].Received, accepted: now})
	}
}

// snapshot reads the committed offsets, falling back to the last snapshot
// that worked (a lower bound).
func (c *Checker) snapshot() map[TP]int64 {
	if c.cfg.Committed == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.cfg.Committed(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return c.lastSnap
	}
	c.lastSnap = got
	return got
}

// SampleCommits reads the group's committed offsets (CheckerConfig.Committed)
// and keeps them for Verify, which checks that none had passed a record the
// target had not accepted by the time the read returned: a commit past
// unfinished work, which loses the record if the partition then moves. A
// scenario calls it every so often while it runs; a failed read is
// skipped.
func (c *Checker) SampleCommits(ctx context.Context) {
	if c.cfg.Committed == nil {
		return
	}
	got, err := c.cfg.Committed(ctx)
	if err != nil {
		return
	}
	at := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, commitSample{at: at, committed: got})
}

// Samples is how many commit samples were taken.
func (c *Checker) Samples() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.samples)
}

// Begin starts a window fault of kind: it reads the committed offsets now,
// so call it before injecting a fault that would stop that read (a
// FindCoordinator error). End the window when the fault is removed.
func (c *Checker) Begin(kind string) *Fault {
	snap := c.snapshot()
	f := &Fault{Kind: kind, Begin: time.Now(), Committed: snap, c: c, used: map[TP]int{}}
	f.end = f.Begin
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, f)
	return f
}

// Fault records an instant fault of kind (a SIGKILL, a leader move): Begin
// and End at once.
func (c *Checker) Fault(kind string) *Fault {
	f := c.Begin(kind)
	f.End(0)
	return f
}

// Timeout records that the target accepted the records of ev (one
// partition's batch) after the client's timeout: the client retries the
// batch, so it is delivered once more.
func (c *Checker) Timeout(kind string, ev *sink.Event) {
	recs, err := sink.Decode(ev, time.Now())
	if err != nil || len(recs) == 0 {
		return
	}
	tp := TP{recs[0].Topic, recs[0].Partition}
	f := &Fault{Kind: kind, Begin: time.Now(), batch: &tp, first: recs[0].Offset, last: recs[len(recs)-1].Offset, records: len(recs), c: c, used: map[TP]int{}}
	f.end = f.Begin
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, f)
}

// Count records a fault that cannot cause a redelivery, such as a target
// refusing a batch (a refused batch was not accepted, so its retry is its
// first delivery). It explains no duplicate.
func (c *Checker) Count(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counted[kind]++
}

// Missing is how many produced records have not been delivered yet; tests
// wait for it to reach 0.
func (c *Checker) Missing() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[TP]map[int64]bool{}
	for _, d := range c.deliveries {
		m := seen[d.tp]
		if m == nil {
			m = map[int64]bool{}
			seen[d.tp] = m
		}
		for _, r := range d.recs {
			m[r.Offset] = true
		}
	}
	n := 0
	for tp, offs := range c.produced {
		for o := range offs {
			if !seen[tp][o] {
				n++
			}
		}
	}
	return n
}

// Deliveries is how many batches were accepted so far; tests wait on it
// to see progress between faults.
func (c *Checker) Deliveries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deliveries)
}

// Summary is what Verify found.
type Summary struct {
	Produced   int // records acknowledged by the broker
	Delivered  int // distinct records the target accepted
	Lost       int // produced, never delivered
	Duplicated int // deliveries of a record after its first
	// DuplicateBatches is the delivered batches carrying a duplicate.
	DuplicateBatches int
	// Faults is the faults injected, by kind; FaultRequests the Kafka
	// requests they answered, by kind, where known.
	Faults        map[string]int
	FaultRequests map[string]int
	// WorstFault is the most duplicates one fault explained in one
	// partition, and WorstBound that fault's bound there: batches in
	// PARTITION ordering, records in KEY and NONE.
	WorstFault, WorstBound int
	// Keyless is the records produced without a key; KeySequences, in KEY
	// ordering, the (partition, key) sequences whose first deliveries were
	// checked for offset order (keyless records are checked for their
	// place in the partition).
	Keyless, KeySequences int
}

// FaultsString renders Faults as "kind×n (r requests)", sorted.
func (s Summary) FaultsString() string {
	if len(s.Faults) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Faults)) {
		p := fmt.Sprintf("%s×%d", k, s.Faults[k])
		if r := s.FaultRequests[k]; r > 0 {
			p += fmt.Sprintf(" (%d req)", r)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// bound is the most duplicate batches fault f may explain in one partition.
//
// A timeout fault explains exactly one: the client retries the very batch
// the target accepted late, once per timeout.
//
// Any other fault can make the group resume a partition from its committed
// offset, redelivering what the partition finished but had not committed,
// plus the batch in flight. Commits start as soon as a batch finishes and
// at least CommitPeriod apart, so while commits work, a partition has at
// most CommitPeriod of finished batches uncommitted; a window fault can
// also hold commits back for its whole duration. A partition finishes at
// most one batch per MinBatchTime, hence
//
//	1 (in flight) + ceil((duration + CommitPeriod) / MinBatchTime) + Slack.
//
// With the suite's 10 ms sink and 100 ms commit interval that is a few
// dozen batches, far below what a source that resumed from an old offset,
// from 0, or committed only on franz-go's 5 s backstop would redeliver.
//
// In KEY and NONE ordering a partition has several batches in flight, so
// the bound counts records, not batches, and the formula above does not
// hold. A timeout fault explains its batch's records once. For any other
// fault, the partition resumes from a committed offset at least the
// commit mark of CommitPeriod before the fault began (while commits work;
// a window fault can hold them back for its duration, which the span below
// covers). The keyed worker marks the first record of its window that is
// not final, so the records at or past that mark that had been accepted
// by then were all in the window: at most Window of them, whether in
// flight or finished out of order behind an unfinished one. Every other
// record the fault can make the partition redeliver was accepted after
// that, in a batch sent before the fault ended (one sent after it is
// redelivered because of a later fault; the batches in flight at the end
// are accepted within InFlight). Hence, in records,
//
//	Window + |offsets of the partition accepted since Begin-CommitPeriod
//	          in batches the target received by end| + Slack*BatchSize.
//
// The second term is measured at the target rather than derived from the
// pipe's concurrency: concurrency × BatchSize × (span / MinBatchTime) is
// the most the partition could have finished (32 × 10 × 500 ms / 5 ms is
// 32,000 records for a kill in the ordering scenarios), a bound no source
// could fail, while what the target accepted in the span is what the
// partition did finish. (Distinct offsets: a record redelivered within the
// span counts once.) The window term dominates: with the default window
// of 100 batches a kill in those scenarios may explain some 1,150 records
// of a partition, about 4 s of its records, where it redelivers 100 or so.
// That is what a correct source may redeliver when a partition's head is
// stuck, so the bound cannot be tighter without knowing the worker's
// window; it still fails a source that redelivers beyond its window, and
// one that resumed from an older commit fails the committed-offset test
// of eligible. Commits that lag are bounded this way only; commits that
// run ahead of the work are what SampleCommits checks.
func (c *Checker) bound(f *Fault, tp TP) int {
	if c.concurrent() {
		return c.recordBound(f, tp)
	}
	if f.batch != nil {
		if *f.batch == tp {
			return 1
		}
		return 0
	}
	if c.cfg.MinBatchTime <= 0 {
		return 0
	}
	span := f.end.Sub(f.Begin) + c.cfg.CommitPeriod
	return 1 + int((span+c.cfg.MinBatchTime-1)/c.cfg.MinBatchTime) + c.cfg.Slack
}

// recordBound is bound for KEY and NONE ordering, in records; c.mu is held.
func (c *Checker) recordBound(f *Fault, tp TP) int {
	if f.batch != nil {
		if *f.batch == tp {
			return f.records
		}
		return 0
	}
	if c.cfg.Window <= 0 {
		return 0
	}
	if n, ok := f.bounds[tp]; ok {
		return n
	}
	from := f.Begin.Add(-c.cfg.CommitPeriod)
	accepted := map[int64]struct{}{}
	for _, d := range c.deliveries {
		if d.tp != tp || d.accepted.Before(from) || d.received.After(f.end) {
			continue
		}
		for _, r := range d.recs {
			accepted[r.Offset] = struct{}{}
		}
	}
	n := c.cfg.Window + len(accepted) + c.cfg.Slack*max(c.cfg.BatchSize, 1)
	if f.bounds == nil {
		f.bounds = map[TP]int{}
	}
	f.bounds[tp] = n
	return n
}

// units is what a duplicate batch redelivering n records takes of a
// fault's bound: one batch, or n records in KEY and NONE ordering.
func (c *Checker) units(n int) int {
	if c.concurrent() {
		return n
	}
	return 1
}

// Verify checks the delivery contract over everything recorded:
//
//   - No loss: every produced offset was delivered at least once, and each
//     delivery of an offset carries the key produced at that offset (an
//     offset never produced must not be delivered).
//   - Order, by CheckerConfig.Ordering. PARTITION: per partition, the first
//     delivery of each offset comes after the first deliveries of all lower
//     offsets. KEY: the same per partition and key; and a record produced
//     without a key keeps its place in the partition: its first delivery
//     comes after the first deliveries of every lower offset of the
//     partition, and no higher offset is first delivered before it. (A
//     batch's records count as delivered in their order in the batch.)
//     NONE: no order.
//   - Duplicates explained and bounded: a batch redelivering offsets must be
//     explained by a fault. A timeout fault explains a redelivery of the
//     batch it names, accepted after the fault. Another fault F explains a
//     batch redelivered after F began whose redelivered offsets were all
//     at or past F's committed offset for the partition (delivered but not
//     committed, or in flight) and had last been accepted no later than
//     InFlight after F ended. Each fault explains at most bound(F)
//     duplicate batches per partition (records, in KEY and NONE); a batch
//     goes to the latest eligible fault with room left (the eligible sets
//     only grow with time, so this greedy choice finds an assignment
//     whenever one exists). Counted in records, a batch's duplicates may be
//     shared by several eligible faults, latest first.
//
// It returns the summary and an error listing the first problems.
func (c *Checker) Verify() (Summary, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Summary{Faults: map[string]int{}, FaultRequests: map[string]int{}}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, offs := range c.produced {
		s.Produced += len(offs)
	}
	for _, f := range c.faults {
		s.Faults[f.Kind]++
		s.FaultRequests[f.Kind] += f.Requests
		f.used = map[TP]int{}
		f.bounds = nil
	}
	for _, offs := range c.produced {
		for _, key := range offs {
			if key == nil {
				s.Keyless++
			}
		}
	}
	var keyed *keyOrder
	if c.cfg.Ordering == pipe.OrderingKey {
		keyed = newKeyOrder(c.produced)
		s.KeySequences = keyed.nSequences
	}
	for k, n := range c.counted {
		s.Faults[k] += n
	}

	lastAccepted := map[TP]map[int64]time.Time{}
	next := map[TP]int64{} // per partition, the offset whose first delivery is due
	for _, d := range c.deliveries {
		seen := lastAccepted[d.tp]
		if seen == nil {
			seen = map[int64]time.Time{}
			lastAccepted[d.tp] = seen
		}
		var dups []int64
		var prevLatest time.Time
		for _, r := range d.recs {
			want, ok := c.produced[d.tp][r.Offset]
			switch {
			case !ok:
				problem("%s offset %d delivered but never produced", d.tp, r.Offset)
			case !bytes.Equal(want, r.Key):
				problem("%s offset %d delivered with key %q, produced with %q", d.tp, r.Offset, r.Key, want)
			}
			if prev, ok := seen[r.Offset]; ok {
				dups = append(dups, r.Offset)
				if prev.After(prevLatest) {
					prevLatest = prev
				}
				continue
			}
			switch c.cfg.Ordering {
			case pipe.OrderingNone:
			case pipe.OrderingKey:
				if ok {
					keyed.first(d.tp, r.Offset, want, d.seq, problem)
				}
			default:
				if r.Offset != next[d.tp] {
					problem("%s: first delivery of offset %d when %d was next (delivery #%d)", d.tp, r.Offset, next[d.tp], d.seq)
				}
				next[d.tp] = r.Offset + 1
			}
		}
		for _, r := range d.recs {
			seen[r.Offset] = d.accepted
		}
		if len(dups) == 0 {
			continue
		}
		s.Duplicated += len(dups)
		s.DuplicateBatches++
		if shares, why := c.explain(d, dups, prevLatest); shares != nil {
			for f, n := range shares {
				f.used[d.tp] += n
			}
		} else {
			problem("%s offsets %d–%d redelivered (delivery #%d at %s): %s", d.tp, dups[0], dups[len(dups)-1], d.seq, d.accepted.Format("15:04:05.000"), why)
		}
	}
	for tp, offs := range c.produced {
		var missing []int64
		for o := range offs {
			if _, ok := lastAccepted[tp][o]; !ok {
				missing = append(missing, o)
			}
		}
		s.Lost += len(missing)
		if len(missing) > 0 {
			sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
			problem("%s: %d of %d produced records never delivered (first missing offset %d)", tp, len(missing), len(offs), missing[0])
		}
	}
	for _, seen := range lastAccepted {
		s.Delivered += len(seen)
	}
	c.checkSamples(problem)
	for _, f := range c.faults {
		for tp, n := range f.used {
			if n > s.WorstFault {
				s.WorstFault, s.WorstBound = n, c.bound(f, tp)
			}
		}
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("delivery contract broken (%d produced, %d delivered, %d lost, %d duplicated; faults %s):\n  %s\nfaults:\n  %s",
			s.Produced, s.Delivered, s.Lost, s.Duplicated, s.FaultsString(), strings.Join(problems, "\n  "), c.timeline())
	}
	return s, nil
}

// checkSamples checks every commit sample against the first acceptances:
// a group's commit offset C for a partition says every record below C is
// final, and a record is final only after the target accepted it, so
// every produced offset below C must have been accepted (by this or any
// earlier owner) before the sample's read returned. c.mu is held.
func (c *Checker) checkSamples(problem func(string, ...any)) {
	if len(c.samples) == 0 {
		return
	}
	first := map[TP]map[int64]time.Time{}
	for _, d := range c.deliveries {
		m := first[d.tp]
		if m == nil {
			m = map[int64]time.Time{}
			first[d.tp] = m
		}
		for _, r := range d.recs {
			if _, ok := m[r.Offset]; !ok {
				m[r.Offset] = d.accepted
			}
		}
	}
	type prefix struct {
		offs   []int64
		latest []time.Time // the latest first acceptance of offs[:i+1]; zero once one was never accepted
	}
	prefixes := map[TP]prefix{}
	for tp, offs := range c.produced {
		p := prefix{offs: slices.Sorted(maps.Keys(offs))}
		var latest time.Time
		never := false
		for _, o := range p.offs {
			at, ok := first[tp][o]
			never = never || !ok
			if !never && at.After(latest) {
				latest = at
			}
			if never {
				p.latest = append(p.latest, time.Time{})
			} else {
				p.latest = append(p.latest, latest)
			}
		}
		prefixes[tp] = p
	}
	reported := map[TP]bool{}
	for _, smp := range c.samples {
		for tp, committed := range smp.committed {
			p, ok := prefixes[tp]
			if !ok || reported[tp] || committed <= 0 {
				continue
			}
			// The produced offsets below committed.
			n, _ := slices.BinarySearch(p.offs, committed)
			if n == 0 {
				continue
			}
			if l := p.latest[n-1]; !l.IsZero() && !l.After(smp.at) {
				continue
			}
			for _, o := range p.offs[:n] {
				at, ok := first[tp][o]
				if ok && !at.After(smp.at) {
					continue
				}
				when := "never"
				if ok {
					when = "first at " + at.Format("15:04:05.000")
				}
				problem("%s: the group's commit was at %d by %s, past offset %d, which the target had not accepted (accepted %s)",
					tp, committed, smp.at.Format("15:04:05.000"), o, when)
				reported[tp] = true
				break
			}
		}
	}
}

// timeline lists the faults that can explain duplicates, for a failure
// message; c.mu is held.
func (c *Checker) timeline() string {
	var lines []string
	for i, f := range c.faults {
		if i == 40 {
			lines = append(lines, fmt.Sprintf("… %d more", len(c.faults)-i))
			break
		}
		l := fmt.Sprintf("%s %s–%s", f.Kind, f.Begin.Format("15:04:05.000"), f.end.Format("15:04:05.000"))
		if f.batch != nil {
			l += fmt.Sprintf(" batch %s %d–%d", f.batch, f.first, f.last)
		} else {
			l += fmt.Sprintf(" committed %v", f.Committed)
		}
		if len(f.used) > 0 {
			l += fmt.Sprintf(" explained %v", f.used)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n  ")
}

// explain finds the faults that explain delivery d redelivering dups, whose
// previous deliveries were accepted at the latest at prevLatest, and what
// share of the batch's units each takes (one fault and one batch in
// PARTITION ordering); c.mu is held. Without them it says why.
func (c *Checker) explain(d delivery, dups []int64, prevLatest time.Time) (map[*Fault]int, string) {
	need := c.units(len(dups))
	shares := map[*Fault]int{}
	eligible, full := 0, 0
	for i := len(c.faults) - 1; i >= 0; i-- {
		f := c.faults[i]
		if !c.eligible(f, d, dups, prevLatest) {
			continue
		}
		eligible++
		room := c.bound(f, d.tp) - f.used[d.tp]
		if room <= 0 {
			full++
			continue
		}
		take := min(room, need)
		shares[f] = take
		need -= take
		if need == 0 {
			return shares, ""
		}
	}
	if need < c.units(len(dups)) {
		return nil, fmt.Sprintf("the %d faults that could explain it have room for %d of its %d duplicates", eligible, c.units(len(dups))-need, len(dups))
	}
	if eligible > 0 {
		return nil, fmt.Sprintf("the %d faults that could explain it have used their bound of duplicate batches", full)
	}
	return nil, "no fault explains it (none began before it with these offsets uncommitted or in flight)"
}

func (c *Checker) eligible(f *Fault, d delivery, dups []int64, prevLatest time.Time) bool {
	if f.batch != nil {
		if *f.batch != d.tp || f.Begin.After(d.accepted) {
			return false
		}
		for _, o := range dups {
			if o < f.first || o > f.last {
				return false
			}
		}
		return true
	}
	if f.Begin.After(d.received) || prevLatest.After(f.end.Add(c.cfg.InFlight)) {
		return false
	}
	if committed, ok := f.Committed[d.tp]; ok && committed >= 0 {
		for _, o := range dups {
			if o < committed {
				return false
			}
		}
	}
	return true
}

// keyOrder checks first deliveries in KEY ordering: per partition and key,
// in offset order; a record without a key after every lower offset of its
// partition and before every higher one.
type keyOrder struct {
	all     map[TP]*offsetSeq            // every produced offset
	keyless map[TP]*offsetSeq            // those produced without a key
	keys    map[TP]map[string]*offsetSeq // by key
	// nSequences is the (partition, key) sequences.
	nSequences int
}

func newKeyOrder(produced map[TP]map[int64][]byte) *keyOrder {
	k := &keyOrder{all: map[TP]*offsetSeq{}, keyless: map[TP]*offsetSeq{}, keys: map[TP]map[string]*offsetSeq{}}
	for tp, offs := range produced {
		all := slices.Sorted(maps.Keys(offs))
		var keyless []int64
		byKey := map[string][]int64{}
		for _, o := range all {
			if key := offs[o]; key == nil {
				keyless = append(keyless, o)
			} else {
				byKey[string(key)] = append(byKey[string(key)], o)
			}
		}
		k.all[tp] = newOffsetSeq(all)
		k.keyless[tp] = newOffsetSeq(keyless)
		k.keys[tp] = map[string]*offsetSeq{}
		for key, os := range byKey {
			k.keys[tp][key] = newOffsetSeq(os)
		}
		k.nSequences += len(byKey)
	}
	return k
}

// first checks the first delivery of offset o of tp, produced with key,
// in delivery #seq, and records it.
func (k *keyOrder) first(tp TP, o int64, key []byte, seq int, problem func(string, ...any)) {
	if key == nil {
		if low, ok := k.all[tp].lowest(); ok && low < o {
			problem("%s: first delivery of offset %d, produced without a key, before the first delivery of offset %d (delivery #%d)", tp, o, low, seq)
		}
		k.keyless[tp].deliver(o)
	} else {
		s := k.keys[tp][string(key)]
		if low, ok := s.lowest(); ok && low < o {
			problem("%s key %q: first delivery of offset %d before the first delivery of offset %d of the same key (delivery #%d)", tp, key, o, low, seq)
		}
		s.deliver(o)
		if low, ok := k.keyless[tp].lowest(); ok && low < o {
			problem("%s: first delivery of offset %d before the first delivery of offset %d, produced without a key (delivery #%d)", tp, o, low, seq)
		}
	}
	k.all[tp].deliver(o)
}

// offsetSeq is an ascending sequence of offsets and which were delivered.
type offsetSeq struct {
	offs []int64
	at   map[int64]int // offset → index
	done []bool
	low  int // the index of the lowest offset not delivered
}

func newOffsetSeq(offs []int64) *offsetSeq {
	s := &offsetSeq{offs: offs, at: make(map[int64]int, len(offs)), done: make([]bool, len(offs))}
	for i, o := range offs {
		s.at[o] = i
	}
	return s
}

// lowest is the lowest offset not delivered yet; false when all were.
func (s *offsetSeq) lowest() (int64, bool) {
	if s.low == len(s.offs) {
		return 0, false
	}
	return s.offs[s.low], true
}

// deliver records that o was delivered.
func (s *offsetSeq) deliver(o int64) {
	i, ok := s.at[o]
	if !ok {
		return
	}
	s.done[i] = true
	for s.low < len(s.offs) && s.done[s.low] {
		s.low++
	}
}
