package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// ErrOrderViolated is the run's error when the endpoint saw a KEY or
// PARTITION pipe deliver a key's records out of offset order; the result
// has the figures all the same.
var ErrOrderViolated = errors.New("records of a key were first delivered out of offset order")

// sampleEvery is how often a pipe's concurrency controller is looked at:
// it grows at most every 250 ms, so each step shows.
const sampleEvery = 100 * time.Millisecond

// sampler looks at a pipe's concurrency controller, and the records the
// endpoint has, every sampleEvery until stopped, keeping what it saw.
type sampler struct {
	mu      sync.Mutex
	at      []time.Time
	samples []Sample // Seconds unset until the caller knows the origin
	counts  []int64
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(ctx context.Context, eng *engine.Engine, name string, count func() int64) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				// Before the runner starts, and after it stops, there is no
				// controller to look at.
				if c := concurrencyOf(ctx, eng, name); c != nil {
					s.mu.Lock()
					s.at = append(s.at, now)
					s.samples = append(s.samples, Sample{Limit: c.Current, InFlight: c.InFlight})
					s.counts = append(s.counts, count())
					s.mu.Unlock()
				}
			}
		}
	}()
	return s
}

func concurrencyOf(ctx context.Context, eng *engine.Engine, name string) *observe.Concurrency {
	d, err := eng.Describe(ctx, name)
	if err != nil {
		return nil
	}
	return d.Concurrency
}

// finish stops the sampler and returns its samples, timed from origin.
func (s *sampler) finish(origin time.Time) []Sample {
	close(s.stop)
	<-s.done
	return s.timed(origin)
}

// timed is the samples so far, timed from origin.
func (s *sampler) timed(origin time.Time) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sample, len(s.samples))
	for i, x := range s.samples {
		x.Seconds = s.at[i].Sub(origin).Seconds()
		out[i] = x
	}
	return out
}

// peaks fills in p's highest limit and batches in flight, and its best
// second.
func (s *sampler) peaks(p *Phase) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.samples {
		p.PeakConcurrency = max(p.PeakConcurrency, x.Limit)
		p.PeakInFlight = max(p.PeakInFlight, x.InFlight)
		// The samples of one second before this one.
		j := i
		for j > 0 && s.at[i].Sub(s.at[j-1]) <= time.Second {
			j--
		}
		if d := s.at[i].Sub(s.at[j]).Seconds(); d >= 0.9 {
			p.BestSecondRecordsPerSec = max(p.BestSecondRecordsPerSec, float64(s.counts[i]-s.counts[j])/d)
		}
	}
}

// pipePhase runs the pipe of spec until the endpoint has want records,
// sampling its concurrency meanwhile, and fills in p; then it deletes the
// pipe.
func (b *bench) pipePhase(ctx context.Context, eng *engine.Engine, p *Phase, spec pipe.Spec, sink *countSink, want int64) error {
	m := startMeter()
	reached := sink.expect(want)
	if _, err := eng.CreatePipe(ctx, spec); err != nil {
		return err
	}
	smp := startSampler(ctx, eng, spec.Name, sink.accepted)
	err := b.await(ctx, "pipe "+spec.Name, reached, sink, want)
	m.stop(p, want, b.o.Size)
	smp.finish(time.Time{})
	smp.peaks(p)
	sink.fill(p)
	if err != nil {
		return err
	}
	return b.dropPipe(ctx, eng, spec.Name)
}

// dropPipe deletes a pipe and waits (a while) until its runner has
// stopped, so the next phase neither shares the machine with its idle
// polling nor meets a late call of it at the endpoint.
func (b *bench) dropPipe(ctx context.Context, eng *engine.Engine, name string) error {
	if err := eng.DeletePipe(ctx, name); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d, err := eng.Describe(ctx, name)
		if errors.Is(err, pipe.ErrNotFound) || (err == nil && !d.Running) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// spec is a pipe of the run's batching window over topic to url.
func (b *bench) spec(name, topic, url string, batchSize int) pipe.Spec {
	s := pipeSpec(name, b.brokers, topic, url, batchSize)
	s.MaximumBatchingWindowInSeconds = &b.o.Window
	return s
}

// orderings runs slow-target's pipes of the other orderings over the
// records the PARTITION pipe of run read, each in a consumer group of its
// own, and adds them to run with the PARTITION pipe first.
func (b *bench) orderings(ctx context.Context, eng *engine.Engine, run *Pass, topic, url string, sink *countSink, partition orderCheck) error {
	n := int64(b.o.Records)
	run.Orderings = []Ordered{{Ordering: pipe.OrderingPartition, Pipe: run.Pipe, ToPartition: 1, BestSecondToPartition: 1,
		OrderViolations: partition.violations, Redelivered: partition.redelivered}}
	for _, ord := range []string{pipe.OrderingKey, pipe.OrderingNone} {
		o := Ordered{Ordering: ord, Pipe: Phase{Name: "pipe " + ord, BatchSize: run.BatchSize}}
		spec := b.spec(fmt.Sprintf("bench-%s-%d", ord, run.BatchSize), topic, url, run.BatchSize)
		spec.Ordering = ord
		// The default, said out loud: room for far more batches in flight
		// than the PARTITION pipe's one per partition, so what bounds the
		// rate is the ordering, not the limit.
		spec.MaximumConcurrency = pipe.DefaultMaximumConcurrency
		if err := b.pipePhase(ctx, eng, &o.Pipe, spec, sink, n); err != nil {
			return err
		}
		c := sink.orderFigures()
		o.OrderViolations, o.Redelivered = c.violations, c.redelivered
		o.ToPartition = ratio(o.Pipe.RecordsPerSec, run.Pipe.RecordsPerSec)
		o.BestSecondToPartition = ratio(o.Pipe.BestSecondRecordsPerSec, run.Pipe.BestSecondRecordsPerSec)
		run.Orderings = append(run.Orderings, o)
	}
	return nil
}

// orderError is ErrOrderViolated, with where, if a pipe that keeps order
// broke it.
func (b *bench) orderError() error {
	var bad []string
	for _, run := range b.res.Runs {
		for _, o := range run.Orderings {
			if o.Ordering != pipe.OrderingNone && o.OrderViolations > 0 {
				bad = append(bad, fmt.Sprintf("%s at batch %d: %d records", o.Ordering, run.BatchSize, o.OrderViolations))
			}
		}
	}
	if t := b.res.Throttle; t != nil && t.OrderViolations > 0 {
		bad = append(bad, fmt.Sprintf("%s throttled: %d records", t.Ordering, t.OrderViolations))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrOrderViolated, bad)
}

// throttle runs slow-target's throttle phase: a KEY pipe on a topic of its
// own whose endpoint takes the run's delay and answers 429 from
// ThrottleFrom to ThrottleTo after its first call. Records are produced
// while it runs, a few keyed windows ahead of what the endpoint accepted,
// so the pipe always has work whatever its rate, until ThrottleWatch after
// the throttling; then the phase waits until every record produced was
// accepted, so nothing is lost to the throttling.
func (b *bench) throttle(ctx context.Context, eng *engine.Engine) error {
	o := b.o
	bs := o.BatchSizes[0]
	sink := &countSink{delay: o.TargetDelay, order: true, refuseFrom: o.ThrottleFrom, refuseTo: o.ThrottleTo}
	url, stopSink, err := serve(sink)
	if err != nil {
		return err
	}
	defer stopSink()
	topic := b.id + "-throttle"
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	// A KEY pipe's window across the partitions (20 batches each); four of
	// them ahead keep its windows full between two looks 100 ms apart, at
	// the defaults even at the most it could take (200 batches of 100 in
	// flight, 40,000 records in 100 ms), and are little to drain at the
	// end.
	chunk := int64(20 * bs * o.Partitions)
	ahead := 4 * chunk
	var failed atomic.Pointer[error]
	var produced int64
	feed := func() {
		for produced-sink.accepted() < ahead {
			b.produce(ctx, topic, int(chunk), &failed)
			produced += chunk
		}
	}
	feed()
	if err := b.cl.Flush(ctx); err != nil {
		return err
	}

	t := &Throttle{Ordering: pipe.OrderingKey, BatchSize: bs, FromSeconds: o.ThrottleFrom.Seconds(), ToSeconds: o.ThrottleTo.Seconds()}
	name := fmt.Sprintf("bench-throttle-%d", bs)
	spec := b.spec(name, topic, url, bs)
	spec.Ordering, spec.MaximumConcurrency = pipe.OrderingKey, pipe.DefaultMaximumConcurrency
	sink.expect(math.MaxInt64)
	start := time.Now()
	if _, err := eng.CreatePipe(ctx, spec); err != nil {
		return err
	}
	smp := startSampler(ctx, eng, name, sink.accepted)
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var reached <-chan struct{}
	for reached == nil {
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("throttle: the endpoint accepted %d of %d records within %s", sink.accepted(), produced, o.Timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
		if first := sink.firstArrival(); !first.IsZero() && time.Since(first) >= o.ThrottleTo+o.ThrottleWatch {
			if err := b.cl.Flush(ctx); err != nil {
				return err
			}
			reached = sink.expectNow(produced)
			break
		}
		feed()
	}
	select {
	case <-reached:
	case <-deadline.C:
		return fmt.Errorf("throttle: the endpoint accepted %d of %d records within %s", sink.accepted(), produced, o.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	t.Seconds = time.Since(start).Seconds()
	if e := failed.Load(); e != nil {
		return fmt.Errorf("produce: %w", *e)
	}
	first := sink.firstArrival()
	t.Samples = smp.finish(first)
	c := sink.orderFigures()
	t.Records, t.Refused = produced, sink.refused.Load()
	t.OrderViolations, t.Redelivered = c.violations, c.redelivered
	timeline(t, o.ThrottleWatch)
	b.res.Throttle = t
	return b.dropPipe(ctx, eng, name)
}

// timeline reads the throttle phase's figures out of its samples: the
// limit as the throttling began, the lowest after and when, when it first
// reached half, when it was back where it began, and what it had recovered
// to by the end of the watch and since when.
func timeline(t *Throttle, watch time.Duration) {
	from, to := t.FromSeconds, t.ToSeconds
	end := to + watch.Seconds()
	trough := -1
	for i, x := range t.Samples {
		switch {
		case x.Seconds < from:
			t.Before = x.Limit
		case x.Seconds <= end:
			if trough < 0 || x.Limit < t.Minimum {
				trough, t.Minimum, t.MinimumAtSeconds = i, x.Limit, x.Seconds-from
			}
			if t.HalvedAfterSeconds == nil && t.Before > 0 && x.Limit*2 <= t.Before {
				d := x.Seconds - from
				t.HalvedAfterSeconds = &d
			}
		}
	}
	if trough < 0 {
		return
	}
	// The limit at the end of the watch, and the first time after the
	// trough it was there.
	last := trough
	for i := trough; i < len(t.Samples) && t.Samples[i].Seconds <= end; i++ {
		last = i
	}
	t.Recovered = t.Samples[last].Limit
	for i := trough; i <= last; i++ {
		x := t.Samples[i]
		if t.BackAfterSeconds == nil && t.Before > t.Minimum && x.Limit >= t.Before {
			d := x.Seconds - to
			t.BackAfterSeconds = &d
		}
		if t.RecoveredAfterSeconds == nil && t.Recovered > t.Minimum && x.Limit == t.Recovered {
			d := x.Seconds - to
			t.RecoveredAfterSeconds = &d
		}
	}
}
