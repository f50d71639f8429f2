package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/history"
	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/source"
)

// observer keeps what the engine reports about pipes besides their stored
// status: the Prometheus series, and per pipe the recent throughput, the
// latest problem and the latest lag figures. Entries live as long as the
// pipe is stored or a runner of it is still stopping; the lag monitor
// removes the rest each round (sweep), with their series.
type observer struct {
	m *metrics.Metrics

	mu    sync.Mutex
	pipes map[string]*pipeObs // by pipe name
}

func newObserver() *observer {
	return &observer{m: metrics.New(), pipes: map[string]*pipeObs{}}
}

// pipeObs is one pipe's observations, shared by its successive runners so
// that counters and throughput survive an update's restart.
type pipeObs struct {
	name string
	m    *metrics.Pipe

	// attached counts runners using m; o.mu guards it.
	attached int

	mu        sync.Mutex
	tput      throughput
	problem   string    // the latest PROBLEM result a runner saw
	problemAt time.Time // when it was last seen
	lag       *observe.Lag
	lagUUID   string // the pipe incarnation lag was measured for
	failed    observe.Failed
	filtered  int64
	// hist is the last hour of lag and flow (package history), of the
	// incarnation histUUID: a pipe deleted and made again under its name
	// starts a new one.
	hist     history.Pipe
	histUUID string
}

// get returns the pipe's entry, creating it; o.mu is held.
func (o *observer) get(name string) *pipeObs {
	po := o.pipes[name]
	if po == nil {
		po = &pipeObs{name: name, m: o.m.Pipe(name)}
		o.pipes[name] = po
	}
	return po
}

// entry returns the pipe's entry for a runner being built.
func (o *observer) entry(name string) *pipeObs {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.get(name)
}

// attach is called when a runner starts: its entry stays until detach.
// (A runner that fails to start never attaches, so it cannot pin an
// entry.) If the pipe was removed since entry, po is no longer in the map
// and its updates reach no series, which is right for a deleted pipe.
func (o *observer) attach(po *pipeObs) {
	o.mu.Lock()
	defer o.mu.Unlock()
	po.attached++
}

// detach is called after a runner stopped for good: it updates nothing
// after this.
func (o *observer) detach(po *pipeObs) {
	o.mu.Lock()
	defer o.mu.Unlock()
	po.attached--
}

// lookup returns the pipe's entry, or nil.
func (o *observer) lookup(name string) *pipeObs {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pipes[name]
}

// sync updates state and up for the stored pipes, creating their entries
// (so a disabled pipe has series too), and removes the entries and series
// of pipes no longer stored whose runners have all stopped. up says which
// pipes this process runs without a problem.
func (o *observer) sync(pipes []pipe.Pipe, running map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	stored := make(map[string]bool, len(pipes))
	for _, p := range pipes {
		stored[p.Name] = true
		o.get(p.Name)
		o.m.SetState(p.Name, p.Status.State)
		o.m.SetUp(p.Name, running[p.Name])
	}
	for name, po := range o.pipes {
		if !stored[name] && po.attached == 0 {
			delete(o.pipes, name)
			o.m.DeletePipe(name)
		}
	}
}

// historyOf returns the history of the pipe's incarnation uuid, starting
// a new one when the pipe was made again under its name; po.mu is held.
func (po *pipeObs) historyOf(uuid string) *history.Pipe {
	if po.histUUID != uuid {
		po.hist, po.histUUID = history.Pipe{}, uuid
	}
	return &po.hist
}

// sawResult records a runner's result when it is a problem: describe shows
// the latest problem even after it cleared.
func (po *pipeObs) sawResult(result string) {
	if !strings.HasPrefix(result, pipe.ProblemPrefix) {
		return
	}
	po.mu.Lock()
	po.problem, po.problemAt = result, time.Now()
	po.mu.Unlock()
}

// throughputWindow is the span of recent throughput describe reports.
const throughputWindow = 60

// throughput counts delivered records per second over the last
// throughputWindow seconds, in a fixed ring: bounded memory however long
// the pipe runs.
type throughput struct {
	secs   [throughputWindow]int64 // the unix second each slot counts
	counts [throughputWindow]int64
}

func (t *throughput) add(now time.Time, n int) {
	sec := now.Unix()
	i := sec % throughputWindow
	if t.secs[i] != sec {
		t.secs[i], t.counts[i] = sec, 0
	}
	t.counts[i] += int64(n)
}

// total is the records counted in the throughputWindow seconds before now,
// the current second included.
func (t *throughput) total(now time.Time) int64 {
	sec := now.Unix()
	var n int64
	for i := range t.secs {
		if t.secs[i] > sec-throughputWindow && t.secs[i] <= sec {
			n += t.counts[i]
		}
	}
	return n
}

// Attempting and Attempted time each attempt and count its records. An
// attempt cut off because the partition is stopping (took < 0) is
// neither a success nor a failed invocation, as for the retry policy, so
// it is not counted.
func (r *runner) Attempting(*batch.Batch) { r.obs.m.InFlight.Inc() }

// FilteredOut counts the records the pipe's filter left out.
func (r *runner) FilteredOut(_ *batch.Batch, n int) {
	r.obs.m.FilteredOut.Add(float64(n))
	po := r.obs
	po.mu.Lock()
	po.filtered += int64(n)
	po.mu.Unlock()
}

func (r *runner) Attempted(b *batch.Batch, res batch.Result, took time.Duration) {
	m := r.obs.m
	m.InFlight.Dec()
	if took < 0 {
		return
	}
	m.BatchDuration.Observe(took.Seconds())
	n := b.Len()
	m.Invoked.Add(float64(n))
	if failed := n - res.Count(batch.Delivered) - res.Count(batch.Filtered); failed > 0 {
		m.FailedInvoke.Add(float64(failed))
		m.InvokeErrors.Inc()
	}
	if d := res.Count(batch.Delivered); d > 0 {
		po := r.obs
		now := time.Now()
		po.mu.Lock()
		po.tput.add(now, d)
		po.historyOf(r.uuid).AddFlow(now, d, 0)
		po.mu.Unlock()
	}
}

func (r *runner) polled(n int)           { r.obs.m.Polled.Add(float64(n)) }
func (r *runner) committedRecords(n int) { r.obs.m.Committed.Add(float64(n)) }

// produced counts a Kafka target's produce outcomes.
func (r *runner) produced(ok, failed int) {
	r.obs.m.Produced.Add(float64(ok))
	r.obs.m.ProduceErrors.Add(float64(failed))
}

// txnAborted counts an EXACTLY_ONCE transaction that did not commit; its
// records are delivered again.
func (r *runner) txnAborted(err error) {
	r.obs.m.TxnAborts.Inc()
	r.log.Info("transaction aborted; its records are delivered again", "reason", err)
	if errors.Is(err, source.ErrTxnProduce) {
		// The retry stage never saw this failure: the transaction, not
		// the batch, is retried.
		r.update(func() { r.targetIssue = "EXACTLY_ONCE transaction aborted and retried: " + err.Error() })
	}
}

func (r *runner) commitError(err error) {
	r.obs.m.CommitErrors.Inc()
	r.log.Debug("commit failed", "err", err)
}

// MetricsHandler serves the engine's metrics (see package metrics) in the
// Prometheus text format.
func (e *Engine) MetricsHandler() http.Handler { return e.obs.m.Handler() }

// Registry is the engine's own Prometheus registry, for callers that add
// collectors or gather directly.
func (e *Engine) Registry() *prometheus.Registry { return e.obs.m.Registry() }

// ErrNotReady is what Ready wraps while the engine cannot serve.
var ErrNotReady = errors.New("not ready")

// readyTimeout bounds the store read of a readiness check: a probe that
// hangs is worse than one that fails.
const readyTimeout = 2 * time.Second

// Ready reports whether the engine serves: Run has reconciled the stored
// pipes at least once (so running pipes reflect the store), and the store
// answers a read now. The error says which is missing, for /readyz.
func (e *Engine) Ready(ctx context.Context) error {
	if !e.reconciled.Load() {
		return fmt.Errorf("the engine has not reconciled the stored pipes yet: %w", ErrNotReady)
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := e.store.ListPipes(ctx); err != nil {
		return fmt.Errorf("the store does not answer a read (%w): %w", err, ErrNotReady)
	}
	return nil
}
