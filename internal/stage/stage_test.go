package stage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// fast keeps retries quick; tests set the limits they exercise.
var fast = RetryPolicy{MaxRetries: -1, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

func records(n int, first int64) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "t", Partition: 0, Offset: first + int64(i), Timestamp: time.Now(), Value: []byte(fmt.Sprint(first + int64(i)))}
	}
	return recs
}

// poisonTarget fails any batch holding a poison offset, as a function
// that throws on one record fails its whole invocation; it journals every
// call and every record it accepted, in order.
type poisonTarget struct {
	mu        sync.Mutex
	poison    map[int64]bool
	calls     [][2]int64 // first and last offset of each call
	delivered []int64
	err       error
}

func (p *poisonTarget) deliver(_ context.Context, b *batch.Batch) batch.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, [2]int64{b.FirstOffset(), b.LastOffset()})
	for _, r := range b.Records {
		if p.poison[r.Offset] {
			err := p.err
			if err == nil {
				err = fmt.Errorf("record %d is poison", r.Offset)
			}
			return batch.FailedAll(b, err)
		}
	}
	for _, r := range b.Records {
		p.delivered = append(p.delivered, r.Offset)
	}
	return batch.DeliveredAll(b)
}

// journal is an Observer that records what it is told.
type journal struct {
	Nop
	mu        sync.Mutex
	failed    []int
	exhausted []int
	handed    map[batch.Status]int
	destErrs  []error
	waits     []time.Time
}

func (j *journal) Failed(_ *batch.Batch, attempt int, _ error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.failed = append(j.failed, attempt)
}

func (j *journal) Exhausted(_ *batch.Batch, attempts int, _ error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.exhausted = append(j.exhausted, attempts)
}

func (j *journal) Waiting(_ *batch.Batch, _ int, at time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.waits = append(j.waits, at)
}

func (j *journal) HandedOff(_ *batch.Batch, s batch.Status, n int, _ batch.Condition, _ error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.handed == nil {
		j.handed = map[batch.Status]int{}
	}
	j.handed[s] += n
}

func (j *journal) DestinationFailed(_ *batch.Batch, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.destErrs = append(j.destErrs, err)
}

func statuses(r batch.Result) []batch.Status {
	out := make([]batch.Status, r.Len())
	for i := range out {
		out[i] = r.At(i).Status
	}
	return out
}

func TestRetrySucceedsAfterFailures(t *testing.T) {
	calls := 0
	h := Retry(fast, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		if calls <= 3 {
			return batch.FailedAll(b, errors.New("down"))
		}
		return batch.DeliveredAll(b)
	})
	b := batch.New(records(5, 0), nil)
	if r := h(context.Background(), b); r.Final() != 5 || r.Count(batch.Delivered) != 5 || calls != 4 {
		t.Fatalf("result %v after %d calls, want 5 delivered after 4", statuses(r), calls)
	}
}

func TestRetryExhaustedWithoutDestinationKeepsRetrying(t *testing.T) {
	j := &journal{}
	p := fast
	p.MaxRetries = 2
	calls := 0
	h := Retry(p, j)(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		if calls <= 6 {
			return batch.FailedAll(b, errors.New("down"))
		}
		return batch.DeliveredAll(b)
	})
	r := h(context.Background(), batch.New(records(3, 0), nil))
	if r.Count(batch.Delivered) != 3 || calls != 7 {
		t.Fatalf("result %v after %d calls: without a destination the records must be retried until delivered", statuses(r), calls)
	}
	if !slices.Equal(j.exhausted, []int{3}) {
		t.Fatalf("Exhausted told %v, want once, after attempt 3 (the first plus 2 retries)", j.exhausted)
	}
}

func TestRetryGivesUpAtTheLimits(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     func(*RetryPolicy)
		age   time.Duration
		calls int
		cond  batch.Condition
	}{
		{"attempts", func(p *RetryPolicy) { p.MaxRetries = 2 }, 0, 3, batch.RetryAttemptsExhausted},
		{"zero retries", func(p *RetryPolicy) { p.MaxRetries = 0 }, 0, 1, batch.RetryAttemptsExhausted},
		{"record age", func(p *RetryPolicy) { p.MaxRecordAge = time.Minute }, 2 * time.Minute, 1, batch.MaximumRecordAgeExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := fast
			p.GiveUp = true
			c.p(&p)
			calls := 0
			h := Retry(p, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
				calls++
				return batch.FailedAll(b, errors.New("down"))
			})
			recs := records(4, 10)
			for _, r := range recs {
				r.Timestamp = time.Now().Add(-c.age)
			}
			r := h(context.Background(), batch.New(recs, nil))
			if calls != c.calls || r.Count(batch.GaveUp) != 4 {
				t.Fatalf("%d calls, result %v; want %d calls and every record given up", calls, statuses(r), c.calls)
			}
			if o := r.At(0); o.Condition != c.cond || o.Attempts != c.calls || o.Err == nil {
				t.Fatalf("outcome %+v, want condition %s after %d attempts with the error", o, c.cond, c.calls)
			}
		})
	}
}

// A record the target marks as never deliverable skips the retries; the
// other failed records keep theirs.
func TestRetryPermanentFailureSkipsRetries(t *testing.T) {
	p := fast
	p.GiveUp, p.MaxRetries = true, 5
	calls := 0
	h := Retry(p, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		r := batch.FailedAll(b, errors.New("down"))
		r.Set(0, batch.Outcome{Status: batch.Failed, Condition: batch.PoisonRecord, Err: errors.New("poison")})
		return r
	})
	r := h(context.Background(), batch.New(records(3, 0), nil))
	if calls != 1 || !slices.Equal(statuses(r), []batch.Status{batch.GaveUp, batch.Pending, batch.Pending}) || r.At(0).Condition != batch.PoisonRecord {
		t.Fatalf("%d calls, result %v (%+v); want one call, the poison record given up and the others pending", calls, statuses(r), r.At(0))
	}
}

// A partial answer commits the records before the first failure and
// retries from it; that progress starts the retry count anew.
func TestRetryFromFirstFailedRecord(t *testing.T) {
	p := fast
	p.MaxRetries = 1
	var firsts []int64
	h := Retry(p, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
		firsts = append(firsts, b.FirstOffset())
		r := batch.DeliveredAll(b)
		// Each call fails the record three after the first it was given,
		// until offset 9.
		if i := 3; b.Len() > i && b.Records[i].Offset < 9 {
			for k := i; k < b.Len(); k++ {
				r.Set(k, batch.Outcome{Status: batch.Failed, Err: errors.New("item failed")})
			}
		}
		return r
	})
	r := h(context.Background(), batch.New(records(10, 0), nil))
	if r.Count(batch.Delivered) != 10 || !slices.Equal(firsts, []int64{0, 3, 6}) {
		t.Fatalf("result %v, calls from %v; want all delivered, retried from 3 then 6", statuses(r), firsts)
	}
}

type throttled struct{ d time.Duration }

func (e throttled) Error() string             { return "throttled" }
func (e throttled) RetryAfter() time.Duration { return e.d }

func TestRetryHonoursAndCapsRetryAfter(t *testing.T) {
	j := &journal{}
	p := fast
	p.MaxRetryAfter = 80 * time.Millisecond
	calls := 0
	h := Retry(p, j)(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		if calls == 1 {
			return batch.FailedAll(b, throttled{time.Hour})
		}
		return batch.DeliveredAll(b)
	})
	start := time.Now()
	if r := h(context.Background(), batch.New(records(1, 0), nil)); r.Count(batch.Delivered) != 1 {
		t.Fatalf("result %v", statuses(r))
	}
	if took := time.Since(start); took < 80*time.Millisecond || took > 10*time.Second {
		t.Fatalf("retried after %s; want the Retry-After, capped at 80ms", took)
	}
}

func TestRetryStopsDuringBackoff(t *testing.T) {
	stop := make(chan struct{})
	p := fast
	p.InitialBackoff, p.MaxBackoff = time.Hour, time.Hour
	calls := 0
	h := Retry(p, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		time.AfterFunc(10*time.Millisecond, func() { close(stop) })
		return batch.FailedAll(b, errors.New("down"))
	})
	done := make(chan batch.Result)
	go func() { done <- h(context.Background(), batch.New(records(2, 0), stop)) }()
	select {
	case r := <-done:
		if r.Final() != 0 || calls != 1 {
			t.Fatalf("result %v after %d calls; want nothing final after one call", statuses(r), calls)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backoff did not end when the partition began stopping")
	}
}

// Bisect with retries and a destination: the poison record alone reaches
// the destination, every other record is delivered, and first deliveries
// are in offset order.
func TestBisectIsolatesPoison(t *testing.T) {
	tg := &poisonTarget{poison: map[int64]bool{13: true}}
	dest := &memDest{}
	j := &journal{}
	p := fast
	p.MaxRetries, p.GiveUp = 2, true
	h := batch.Chain(tg.deliver, OnFailure(dest, DestinationPolicy{InitialBackoff: time.Millisecond}, j), Retry(p, j), Bisect())
	recs := records(32, 0)
	var final []int64
	for len(recs) > 0 {
		r := h(context.Background(), batch.New(recs, nil))
		n := r.Final()
		if n == 0 {
			t.Fatalf("no progress: %v", statuses(r))
		}
		for i := range n {
			final = append(final, recs[i].Offset)
		}
		recs = recs[n:] // what the source does: the rest is cut anew
	}
	if len(final) != 32 {
		t.Fatalf("%d records final, want 32", len(final))
	}
	want := slices.DeleteFunc(slices.Collect(func(yield func(int64) bool) {
		for i := range int64(32) {
			if !yield(i) {
				return
			}
		}
	}), func(o int64) bool { return o == 13 })
	if !slices.Equal(tg.delivered, want) {
		t.Fatalf("delivered %v, want every offset but 13, once, in order", tg.delivered)
	}
	if len(dest.got) != 1 || len(dest.got[0].Records) != 1 || dest.got[0].Records[0].Offset != 13 || dest.got[0].Condition != batch.RetryAttemptsExhausted {
		t.Fatalf("destination got %+v, want offset 13 alone, RetryAttemptsExhausted", dest.got)
	}
	if j.handed[batch.DeadLettered] != 1 {
		t.Fatalf("HandedOff told %v", j.handed)
	}
}

// Bisect leaves alone a failure that splitting cannot help.
func TestBisectSkipsUnavailableTarget(t *testing.T) {
	calls := 0
	h := Bisect()(func(_ context.Context, b *batch.Batch) batch.Result {
		calls++
		return batch.FailedAll(b, unavailable{})
	})
	h(context.Background(), batch.New(records(8, 0), nil))
	if calls != 1 {
		t.Fatalf("%d calls; an unreachable target must not be bisected", calls)
	}
}

type unavailable struct{}

func (unavailable) Error() string           { return "unreachable" }
func (unavailable) TargetUnavailable() bool { return true }

// memDest is a destination in memory that refuses its first refuse
// sends.
type memDest struct {
	mu     sync.Mutex
	refuse int
	got    []Failure
}

func (m *memDest) Send(_ context.Context, f Failure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse > 0 {
		m.refuse--
		return errors.New("destination down")
	}
	m.got = append(m.got, f)
	return nil
}

func (m *memDest) Close() error { return nil }

// A destination that refuses is retried; nothing is final until it takes
// the records, and the observer sees the problem and its end.
func TestOnFailureRetriesDestination(t *testing.T) {
	dest := &memDest{refuse: 3}
	j := &journal{}
	h := OnFailure(dest, DestinationPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, j)(func(_ context.Context, b *batch.Batch) batch.Result {
		r := batch.DeliveredAll(b)
		r.Set(1, batch.Outcome{Status: batch.GaveUp, Condition: batch.RetryAttemptsExhausted, Err: errors.New("down"), Attempts: 3})
		return r
	})
	r := h(context.Background(), batch.New(records(3, 0), nil))
	if !slices.Equal(statuses(r), []batch.Status{batch.Delivered, batch.DeadLettered, batch.Delivered}) {
		t.Fatalf("result %v", statuses(r))
	}
	if len(dest.got) != 1 || dest.got[0].Records[0].Offset != 1 || dest.got[0].Attempts != 3 {
		t.Fatalf("destination got %+v", dest.got)
	}
	if len(j.destErrs) != 4 || j.destErrs[3] != nil {
		t.Fatalf("DestinationFailed told %v, want 3 errors then nil", j.destErrs)
	}
}

// A destination that is down while the partition stops keeps the records
// not final: they are not committed, so nothing is lost.
func TestOnFailureStoppingKeepsRecords(t *testing.T) {
	dest := &memDest{refuse: 1 << 30}
	stop := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	h := OnFailure(dest, DestinationPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, Nop{})(func(_ context.Context, b *batch.Batch) batch.Result {
		return batch.All(b.Len(), batch.Outcome{Status: batch.GaveUp, Condition: batch.RetryAttemptsExhausted})
	})
	r := h(context.Background(), batch.New(records(2, 0), stop))
	if r.Final() != 0 {
		t.Fatalf("result %v; records the destination did not take must not be final", statuses(r))
	}
}

func TestOnFailureDiscard(t *testing.T) {
	j := &journal{}
	h := OnFailure(nil, DestinationPolicy{}, j)(func(_ context.Context, b *batch.Batch) batch.Result {
		return batch.All(b.Len(), batch.Outcome{Status: batch.GaveUp, Condition: batch.RetryAttemptsExhausted})
	})
	r := h(context.Background(), batch.New(records(4, 0), nil))
	if r.Count(batch.Discarded) != 4 || j.handed[batch.Discarded] != 4 {
		t.Fatalf("result %v, handed %v; want all 4 discarded and counted", statuses(r), j.handed)
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 10: time.Second} {
		for range 20 {
			if d := p.backoff(attempt); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
}

// The filter hands on only the records it keeps, maps their outcomes back
// to their places, and makes no call when it keeps none.
func TestFilter(t *testing.T) {
	var got [][]int64
	next := func(_ context.Context, b *batch.Batch) batch.Result {
		var offs []int64
		for _, r := range b.Records {
			offs = append(offs, r.Offset)
		}
		got = append(got, offs)
		res := batch.DeliveredAll(b)
		res.Set(b.Len()-1, batch.Outcome{Status: batch.Failed, Err: errors.New("last fails")})
		return res
	}
	odd := func(r *kgo.Record) bool { return r.Offset%2 == 1 }
	h := Filter(odd, Nop{})(next)
	r := h(context.Background(), batch.New(records(6, 0), nil))
	want := []batch.Status{batch.Filtered, batch.Delivered, batch.Filtered, batch.Delivered, batch.Filtered, batch.Failed}
	if !slices.Equal(statuses(r), want) || len(got) != 1 || !slices.Equal(got[0], []int64{1, 3, 5}) {
		t.Fatalf("result %v, calls %v; want %v after one call with 1, 3, 5", statuses(r), got, want)
	}
	if r.Final() != 5 {
		t.Fatalf("final %d, want the 5 before the failed record", r.Final())
	}
	got = nil
	none := Filter(func(*kgo.Record) bool { return false }, Nop{})(next)
	if r := none(context.Background(), batch.New(records(4, 0), nil)); r.Count(batch.Filtered) != 4 || len(got) != 0 {
		t.Fatalf("filtered to nothing: %v after %d calls", statuses(r), len(got))
	}
}
