package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/source"
)

// fast keeps retries quick; tests override the limits they exercise.
var fast = RetryPolicy{MaxRetries: -1, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

// failFirst answers status for the first k requests and 200 after.
func failFirst(k, status int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= k {
			w.WriteHeader(status)
			fmt.Fprintf(w, "failure %d", n)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// hookLog records the hooks' calls; Exhausted answers with handedOff.
type hookLog struct {
	srv       *recorder
	handedOff bool

	mu              sync.Mutex
	failed          []int
	failedErrs      []error
	exhausted       []int
	exhaustedErr    error
	callsAtExhaust  int
	failedAtExhaust int
	delivered       []int
	onFailed        func(attempt int)
}

func (l *hookLog) hooks() Hooks {
	return Hooks{
		Failed: func(_ *source.Batch, attempt int, err error) {
			l.mu.Lock()
			l.failed = append(l.failed, attempt)
			l.failedErrs = append(l.failedErrs, err)
			f := l.onFailed
			l.mu.Unlock()
			if f != nil {
				f(attempt)
			}
		},
		Exhausted: func(_ context.Context, _ *source.Batch, attempts int, err error) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.exhausted = append(l.exhausted, attempts)
			l.exhaustedErr = err
			if l.srv != nil {
				l.callsAtExhaust = l.srv.calls()
			}
			l.failedAtExhaust = len(l.failed)
			return l.handedOff
		},
		Delivered: func(_ *source.Batch, attempts int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.delivered = append(l.delivered, attempts)
		},
	}
}

func (l *hookLog) snapshot() (failed, exhausted, delivered []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failed), slices.Clone(l.exhausted), slices.Clone(l.delivered)
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

// handleAsync runs r.Handle in a goroutine the test waits for with result.
func handleAsync(ctx context.Context, r *Retrying, b *source.Batch) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Handle(ctx, b) }()
	return done
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Handle did not return")
		return nil
	}
}

func TestRetryingSucceedsAfterFailures(t *testing.T) {
	for _, c := range []struct {
		k      int
		status int
	}{{0, 500}, {1, 500}, {3, 503}, {4, 429}} {
		t.Run(fmt.Sprintf("%d×%d", c.k, c.status), func(t *testing.T) {
			srv := newRecorder(t, failFirst(c.k, c.status))
			log := &hookLog{srv: srv}
			r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: fast, Hooks: log.hooks()}
			recs := records("orders", 2, 500, 3, 20)
			if err := r.Handle(context.Background(), source.NewBatch(recs, nil)); err != nil {
				t.Fatalf("Handle = %v, want nil", err)
			}
			failed, exhausted, delivered := log.snapshot()
			if !slices.Equal(failed, upTo(c.k)) {
				t.Errorf("Failed attempts = %v, want %v", failed, upTo(c.k))
			}
			if !slices.Equal(delivered, []int{c.k + 1}) {
				t.Errorf("Delivered attempts = %v, want [%d]", delivered, c.k+1)
			}
			if len(exhausted) != 0 {
				t.Errorf("Exhausted called with %v under unlimited retries", exhausted)
			}
			for i, err := range log.failedErrs {
				var te *Error
				if !errors.As(err, &te) || te.StatusCode != c.status || !strings.Contains(te.Problem, fmt.Sprintf("failure %d", i+1)) {
					t.Errorf("Failed err %d = %v", i+1, err)
				}
			}
			// The batch is retried whole: every attempt carries the same body.
			if n := srv.calls(); n != c.k+1 {
				t.Fatalf("server got %d requests, want %d", n, c.k+1)
			}
			for i := range c.k + 1 {
				checkEvent(t, srv.hit(i).body, recs)
			}
		})
	}
}

func TestRetryingExhaustedKeepsRetrying(t *testing.T) {
	srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
	log := &hookLog{srv: srv, handedOff: false}
	p := fast
	p.MaxRetries = 2
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
	stop := make(chan struct{})
	done := handleAsync(context.Background(), r, source.NewBatch(records("t", 0, 0, 1, 1), stop))

	// Nothing is dropped: with no failure destination the batch keeps going
	// to the target long after the retries ran out.
	srv.waitCalls(t, 10)
	close(stop)
	if err := result(t, done); !errors.Is(err, source.ErrStopping) {
		t.Fatalf("Handle = %v, want ErrStopping", err)
	}
	failed, exhausted, delivered := log.snapshot()
	if !slices.Equal(exhausted, []int{3}) {
		t.Errorf("Exhausted attempts = %v, want exactly [3]", exhausted)
	}
	if log.callsAtExhaust != 3 || log.failedAtExhaust != 3 {
		t.Errorf("Exhausted ran after %d requests and %d Failed calls, want 3 and 3", log.callsAtExhaust, log.failedAtExhaust)
	}
	if !strings.Contains(ProblemOf(log.exhaustedErr), "target answered 500 Internal Server Error") {
		t.Errorf("Exhausted err = %v", log.exhaustedErr)
	}
	if n := srv.calls(); !slices.Equal(failed, upTo(n)) {
		t.Errorf("Failed attempts = %v, want 1..%d", failed, n)
	}
	if len(delivered) != 0 {
		t.Errorf("Delivered = %v", delivered)
	}
	want := "retries exhausted after 3 attempts and no failure destination is configured, so the batch keeps being retried: target answered 500 Internal Server Error: failure 3"
	if got := ExhaustedProblem(3, log.exhaustedErr); got != want {
		t.Errorf("ExhaustedProblem = %q\nwant %q", got, want)
	}
}

func TestRetryingExhaustedHandedElsewhere(t *testing.T) {
	for _, maxRetries := range []int{0, 1, 4} {
		t.Run(fmt.Sprint(maxRetries), func(t *testing.T) {
			srv := newRecorder(t, failFirst(1<<30, http.StatusBadGateway))
			log := &hookLog{srv: srv, handedOff: true}
			p := fast
			p.MaxRetries = maxRetries
			r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
			if err := r.Handle(context.Background(), source.NewBatch(records("t", 0, 0, 1, 1), nil)); err != nil {
				t.Fatalf("Handle = %v, want nil once the batch was handed elsewhere", err)
			}
			attempts := maxRetries + 1
			failed, exhausted, delivered := log.snapshot()
			if !slices.Equal(exhausted, []int{attempts}) || !slices.Equal(failed, upTo(attempts)) || len(delivered) != 0 {
				t.Errorf("Exhausted %v, Failed %v, Delivered %v; want [%d], 1..%d, none", exhausted, failed, delivered, attempts, attempts)
			}
			if n := srv.calls(); n != attempts {
				t.Errorf("server got %d requests, want %d", n, attempts)
			}
		})
	}
}

// Without an Exhausted hook the policy still never drops a batch.
func TestRetryingWithoutHooks(t *testing.T) {
	srv := newRecorder(t, failFirst(4, http.StatusInternalServerError))
	p := fast
	p.MaxRetries = 1
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p}
	if err := r.Handle(context.Background(), source.NewBatch(records("t", 0, 0, 1, 1), nil)); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	if n := srv.calls(); n != 5 {
		t.Errorf("server got %d requests, want 5", n)
	}
}

func TestRetryingMaxRecordAge(t *testing.T) {
	aged := func(age time.Duration) []*kgo.Record {
		recs := records("t", 0, 0, 3, 1)
		for i, r := range recs {
			r.Timestamp = time.Now().Add(-age + time.Duration(i)*time.Millisecond)
		}
		return recs
	}

	t.Run("old records", func(t *testing.T) {
		srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
		log := &hookLog{srv: srv, handedOff: true}
		p := fast
		p.MaxRecordAge = time.Minute
		r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
		if err := r.Handle(context.Background(), source.NewBatch(aged(time.Hour), nil)); err != nil {
			t.Fatalf("Handle = %v", err)
		}
		if _, exhausted, _ := log.snapshot(); !slices.Equal(exhausted, []int{1}) || srv.calls() != 1 {
			t.Errorf("Exhausted %v after %d requests, want [1] after 1", exhausted, srv.calls())
		}
	})

	t.Run("young records", func(t *testing.T) {
		srv := newRecorder(t, failFirst(3, http.StatusInternalServerError))
		log := &hookLog{srv: srv, handedOff: true}
		p := fast
		p.MaxRecordAge = time.Hour
		r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
		if err := r.Handle(context.Background(), source.NewBatch(aged(time.Second), nil)); err != nil {
			t.Fatalf("Handle = %v", err)
		}
		if _, exhausted, delivered := log.snapshot(); len(exhausted) != 0 || !slices.Equal(delivered, []int{4}) {
			t.Errorf("Exhausted %v, Delivered %v; want none, [4]", exhausted, delivered)
		}
	})

	t.Run("records age while retrying", func(t *testing.T) {
		srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
		log := &hookLog{srv: srv, handedOff: true}
		p := fast
		p.MaxRecordAge = 25 * time.Second
		recs := records("t", 0, 0, 2, 1)
		t0 := recs[0].Timestamp
		clock := 0
		r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks(),
			now: func() time.Time { clock++; return t0.Add(time.Duration(clock) * 10 * time.Second) }}
		if err := r.Handle(context.Background(), source.NewBatch(recs, nil)); err != nil {
			t.Fatalf("Handle = %v", err)
		}
		if _, exhausted, _ := log.snapshot(); !slices.Equal(exhausted, []int{3}) {
			t.Errorf("Exhausted %v, want [3]: the oldest record is 30 s old then", exhausted)
		}
	})

	t.Run("whichever limit comes first", func(t *testing.T) {
		srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
		log := &hookLog{srv: srv, handedOff: true}
		p := fast
		p.MaxRetries, p.MaxRecordAge = 5, time.Minute
		r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
		if err := r.Handle(context.Background(), source.NewBatch(aged(time.Hour), nil)); err != nil {
			t.Fatalf("Handle = %v", err)
		}
		if _, exhausted, _ := log.snapshot(); !slices.Equal(exhausted, []int{1}) {
			t.Errorf("Exhausted %v, want [1]", exhausted)
		}
	})
}

func TestRetryingHonoursRetryAfter(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	log := &hookLog{srv: srv}
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: fast, Hooks: log.hooks()}
	if err := r.Handle(context.Background(), source.NewBatch(records("t", 0, 0, 1, 1), nil)); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	if _, _, delivered := log.snapshot(); !slices.Equal(delivered, []int{2}) {
		t.Fatalf("Delivered = %v, want [2]", delivered)
	}
	if gap := srv.hit(1).at.Sub(srv.hit(0).at); gap < time.Second {
		t.Errorf("retry came %v after the 503, before its Retry-After of 1s", gap)
	}
}

// A target asking for an hour is held to MaxRetryAfter.
func TestRetryingCapsRetryAfter(t *testing.T) {
	srv := newRecorder(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.Header().Set("Retry-After", []string{"3600", "99999999999"}[n-1])
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	p := fast
	p.MaxRetryAfter = 5 * time.Millisecond
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // fails the test rather than waiting an hour
	defer cancel()
	if err := r.Handle(ctx, source.NewBatch(records("t", 0, 0, 1, 1), nil)); err != nil {
		t.Fatalf("Handle = %v: the Retry-After was not capped", err)
	}
}

func TestRetryingStopsDuringBackoff(t *testing.T) {
	for _, how := range []string{"stopping", "context"} {
		t.Run(how, func(t *testing.T) {
			srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
			log := &hookLog{srv: srv}
			failed := make(chan struct{})
			log.onFailed = func(int) { close(failed) } // only once: the backoff is an hour
			p := fast
			p.InitialBackoff, p.MaxBackoff = time.Hour, time.Hour
			r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: p, Hooks: log.hooks()}
			stop := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := handleAsync(ctx, r, source.NewBatch(records("t", 0, 0, 1, 1), stop))
			select {
			case <-failed:
			case <-time.After(5 * time.Second):
				t.Fatal("the first attempt did not fail")
			}
			if how == "stopping" {
				close(stop)
			} else {
				cancel()
			}
			if err := result(t, done); !errors.Is(err, source.ErrStopping) {
				t.Fatalf("Handle = %v, want ErrStopping", err)
			}
			if n := srv.calls(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

// Stopping closed while an attempt runs lets that attempt finish but starts
// no other, even when the backoff is already over by the time it is looked at.
func TestRetryingStoppingDuringAttemptStartsNoOther(t *testing.T) {
	srv := newRecorder(t, failFirst(1<<30, http.StatusInternalServerError))
	p := fast
	p.InitialBackoff, p.MaxBackoff = time.Nanosecond, time.Nanosecond // a zero delay
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL})
	for i := range 50 {
		stop := make(chan struct{})
		closeStop := sync.OnceFunc(func() { close(stop) })
		r := &Retrying{Target: h, Policy: p, Hooks: Hooks{Failed: func(*source.Batch, int, error) { closeStop() }}}
		if err := r.Handle(context.Background(), source.NewBatch(records("t", 0, 0, 1, 1), stop)); !errors.Is(err, source.ErrStopping) {
			t.Fatalf("Handle = %v, want ErrStopping", err)
		}
		if n := srv.calls(); n != i+1 {
			t.Fatalf("run %d: server got %d requests in all, want %d: an attempt started after Stopping closed", i, n, i+1)
		}
	}
}

// A context canceled during an attempt abandons it without counting it as a
// failure of the target.
func TestRetryingCanceledDuringAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := newRecorder(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	log := &hookLog{srv: srv}
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL}), Policy: fast, Hooks: log.hooks()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := handleAsync(ctx, r, source.NewBatch(records("t", 0, 0, 1, 1), nil))
	srv.waitCalls(t, 1)
	cancel()
	if err := result(t, done); !errors.Is(err, source.ErrStopping) {
		t.Fatalf("Handle = %v, want ErrStopping", err)
	}
	if failed, exhausted, delivered := log.snapshot(); len(failed)+len(exhausted)+len(delivered) != 0 {
		t.Errorf("hooks called: Failed %v, Exhausted %v, Delivered %v", failed, exhausted, delivered)
	}
}

// An oversized record never reaches the target but still goes through the
// policy, so a failure destination can take it.
func TestRetryingOversized(t *testing.T) {
	srv := newRecorder(t, nil)
	log := &hookLog{srv: srv, handedOff: true}
	p := fast
	p.MaxRetries = 1
	r := &Retrying{Target: newTestHTTP(t, HTTPConfig{URL: srv.srv.URL, PayloadLimit: 100}), Policy: p, Hooks: log.hooks()}
	b := source.NewBatch(records("t", 4, 9, 1, 1), nil)
	b.Oversized, b.Size = true, 1000
	if err := r.Handle(context.Background(), b); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	if _, exhausted, _ := log.snapshot(); !slices.Equal(exhausted, []int{2}) || !errors.Is(log.exhaustedErr, ErrOversized) {
		t.Errorf("Exhausted %v with %v, want [2] with ErrOversized", exhausted, log.exhaustedErr)
	}
	if n := srv.calls(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestNewBatch(t *testing.T) {
	recs := records("orders", 5, 10, 3, 1)
	stop := make(chan struct{})
	b := source.NewBatch(recs, stop)
	if b.Topic != "orders" || b.Partition != 5 || len(b.Records) != 3 || b.FirstOffset() != 10 || b.LastOffset() != 12 {
		t.Errorf("NewBatch = %s-%d %d records %d..%d", b.Topic, b.Partition, len(b.Records), b.FirstOffset(), b.LastOffset())
	}
	if b.Stopping() != (<-chan struct{})(stop) {
		t.Error("Stopping is not the given channel")
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	for attempt := 1; attempt <= 64; attempt++ {
		d := 10 * time.Millisecond << min(attempt-1, 10)
		d = min(d, time.Second)
		seen := map[time.Duration]bool{}
		for range 200 {
			got := p.backoff(attempt)
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) is always %v: no jitter", attempt, p.backoff(attempt))
		}
	}
	// An initial backoff above the cap is capped too.
	q := RetryPolicy{InitialBackoff: time.Minute, MaxBackoff: time.Second}.withDefaults()
	if got := q.backoff(1); got < time.Second/2 || got > time.Second {
		t.Errorf("backoff(1) = %v with InitialBackoff above MaxBackoff", got)
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	if p.InitialBackoff != 200*time.Millisecond || p.MaxBackoff != 30*time.Second || p.MaxRetryAfter != 5*time.Minute {
		t.Errorf("defaults = %v, %v, %v", p.InitialBackoff, p.MaxBackoff, p.MaxRetryAfter)
	}
	if p.MaxRetries != 0 || p.MaxRecordAge != 0 {
		t.Errorf("withDefaults changed the limits: %+v", p)
	}
	d := RetryPolicy{}.withDefaults()
	for attempt := 1; attempt <= 20; attempt++ {
		if got := d.backoff(attempt); got > 30*time.Second {
			t.Fatalf("default backoff(%d) = %v, over 30s", attempt, got)
		}
	}
}
