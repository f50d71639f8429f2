package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// throughput runs the throughput and slow-target scenarios: every record
// is produced first, then each reader drains the topic as fast as it can.
func (b *bench) throughput(ctx context.Context) error {
	o := b.o
	n := int64(o.Records)
	topic := b.id
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	start := time.Now()
	if err := b.produceAll(ctx, topic, o.Records); err != nil {
		return err
	}
	b.res.ProduceSeconds = time.Since(start).Seconds()

	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	bc := Phase{Name: "bare consumer"}
	m := startMeter()
	if err := bareConsumer(pctx, b.brokers, topic, b.id+"-bare-consumer", n, nil); err != nil {
		return err
	}
	m.stop(&bc, n, o.Size)
	b.res.BareConsumer = &bc

	// slow-target's endpoint reads every record's key and offset, for all
	// its readers alike, so that what it costs is in every figure.
	sink := &countSink{delay: o.TargetDelay, order: o.Scenario == SlowTarget}
	url, eng, stop, err := b.rig(ctx, sink)
	if err != nil {
		return err
	}
	defer stop()

	for _, bs := range o.BatchSizes {
		run := Pass{BatchSize: bs}
		run.BarePipeline = Phase{Name: "bare pipeline", BatchSize: bs}
		sink.expect(n)
		m := startMeter()
		if err := barePipeline(pctx, b.brokers, topic, fmt.Sprintf("%s-bare-pipeline-%d", b.id, bs), url, bs, n); err != nil {
			return err
		}
		m.stop(&run.BarePipeline, n, o.Size)
		sink.fill(&run.BarePipeline)

		run.Pipe = Phase{Name: "pipe", BatchSize: bs}
		// The next batch size's phases should not share the machine with
		// this pipe's idle polling: pipePhase deletes it.
		if err := b.pipePhase(pctx, eng, &run.Pipe, b.spec(fmt.Sprintf("bench-%d", bs), topic, url, bs), sink, n); err != nil {
			return err
		}
		partition := sink.orderFigures()
		run.PipeToBareConsumer = ratio(run.Pipe.RecordsPerSec, bc.RecordsPerSec)
		run.PipeToBarePipeline = ratio(run.Pipe.RecordsPerSec, run.BarePipeline.RecordsPerSec)
		if o.Filter != "" {
			fp := Phase{Name: "pipe+filter", BatchSize: bs}
			name := fmt.Sprintf("bench-filter-%d", bs)
			m = startMeter()
			if err := b.runPipe(pctx, eng, name, topic, url, bs, &o.Window, sink, n, o.Filter); err != nil {
				return err
			}
			m.stop(&fp, n, o.Size)
			sink.fill(&fp)
			if err := eng.DeletePipe(ctx, name); err != nil {
				return err
			}
			run.FilteredPipe, run.FilteredToPipe = &fp, ratio(fp.RecordsPerSec, run.Pipe.RecordsPerSec)
		}
		if o.Scenario == SlowTarget {
			if err := b.orderings(pctx, eng, &run, topic, url, sink, partition); err != nil {
				return err
			}
		}
		b.res.Runs = append(b.res.Runs, run)
	}
	if o.Scenario == SlowTarget && !o.SkipThrottle {
		if err := b.throttle(pctx, eng); err != nil {
			return err
		}
	}
	if o.Scenario == SlowTarget {
		return b.orderError()
	}
	return nil
}

// latency runs each reader on a topic of its own: start it, wait until a
// warm-up record reaches it (so the group has joined), then produce the
// records at a steady rate and time each one from its produce call.
func (b *bench) latency(ctx context.Context) error {
	o := b.o
	n := int64(o.Records)
	bs := o.BatchSizes[0]
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	// Bare consumer: latency to the poll's return.
	topic := b.id + "-bare-consumer"
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	var mu sync.Mutex
	var lat []time.Duration
	warm := make(chan struct{})
	var warmOnce sync.Once
	done := make(chan error, 1)
	go func() {
		done <- bareConsumer(pctx, b.brokers, topic, topic, n+1, func(r *kgo.Record, at time.Time) {
			if string(r.Key) == "warm-up" {
				warmOnce.Do(func() { close(warm) })
				return
			}
			mu.Lock()
			lat = append(lat, at.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))))
			mu.Unlock()
		})
	}()
	if err := b.warmUp(pctx, topic, warm, done); err != nil {
		return err
	}
	bc := Phase{Name: "bare consumer"}
	m := startMeter()
	if err := b.produceAt(pctx, topic); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	m.stop(&bc, n, o.Size)
	mu.Lock()
	percentiles(&bc, lat)
	mu.Unlock()
	b.res.BareConsumer = &bc

	sink := &countSink{timing: true}
	url, stopSink, err := serve(sink)
	if err != nil {
		return err
	}
	defer stopSink()

	// Bare pipeline: latency to the endpoint's receipt.
	run := Pass{BatchSize: bs, BarePipeline: Phase{Name: "bare pipeline", BatchSize: bs}, Pipe: Phase{Name: "pipe", BatchSize: bs}}
	topic = b.id + "-bare-pipeline"
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	warmed := sink.expect(1)
	go func() { done <- barePipeline(pctx, b.brokers, topic, topic, url, bs, n+1) }()
	if err := b.warmUp(pctx, topic, warmed, done); err != nil {
		return err
	}
	reached := sink.expect(n)
	m = startMeter()
	if err := b.produceAt(pctx, topic); err != nil {
		return err
	}
	if err := b.await(pctx, "bare pipeline", reached, sink, n); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}
	m.stop(&run.BarePipeline, n, o.Size)
	percentiles(&run.BarePipeline, sink.takeLatencies())
	run.BarePipeline.Batches, run.BarePipeline.MaxConcurrentCalls = sink.batches.Load(), sink.maxIn.Load()

	// Pipe.
	eng, stopEngine, err := b.engine(ctx)
	if err != nil {
		return err
	}
	defer stopEngine()
	topic = b.id + "-pipe"
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	if err := b.produceWarmUp(pctx, topic); err != nil {
		return err
	}
	if err := b.runPipe(pctx, eng, "bench-latency", topic, url, bs, &o.Window, sink, 1); err != nil {
		return err
	}
	reached = sink.expect(n)
	m = startMeter()
	if err := b.produceAt(pctx, topic); err != nil {
		return err
	}
	if err := b.await(pctx, "pipe", reached, sink, n); err != nil {
		return err
	}
	m.stop(&run.Pipe, n, o.Size)
	percentiles(&run.Pipe, sink.takeLatencies())
	run.Pipe.Batches, run.Pipe.MaxConcurrentCalls = sink.batches.Load(), sink.maxIn.Load()
	run.PipeToBareConsumer = ratio(run.Pipe.RecordsPerSec, bc.RecordsPerSec)
	run.PipeToBarePipeline = ratio(run.Pipe.RecordsPerSec, run.BarePipeline.RecordsPerSec)
	b.res.Runs = append(b.res.Runs, run)
	return nil
}

// warmUp produces one warm-up record to topic and waits until the reader
// shows it has it (warm closes), or the reader fails.
func (b *bench) warmUp(ctx context.Context, topic string, warm <-chan struct{}, failed <-chan error) error {
	if err := b.produceWarmUp(ctx, topic); err != nil {
		return err
	}
	select {
	case <-warm:
		return nil
	case err := <-failed:
		return fmt.Errorf("reader stopped during warm-up: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("warm-up record not read: %w", ctx.Err())
	}
}

func (b *bench) produceWarmUp(ctx context.Context, topic string) error {
	return b.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("warm-up"), Value: b.value(time.Now())}).FirstErr()
}

// produceAt produces the run's records to topic at its rate, each stamped
// with the time of its produce call, and waits until the broker has them.
// A producer that falls behind its schedule catches up at once, so the
// rate holds on average.
func (b *bench) produceAt(ctx context.Context, topic string) error {
	interval := time.Second / time.Duration(b.o.Rate)
	start := time.Now()
	var failed error
	var mu sync.Mutex
	for i := 0; i < b.o.Records; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		b.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: b.value(time.Now())}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
	}
	if err := b.cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return fmt.Errorf("produce: %w", failed)
	}
	return nil
}

// manyPipes starts many pipes, each on a topic of its own, proves each is
// live with one record, then watches them idle.
func (b *bench) manyPipes(ctx context.Context) error {
	o := b.o
	names := make([]string, o.Pipes)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", b.id, i)
	}
	for i := 0; i < len(names); i += 100 {
		chunk := names[i:min(i+100, len(names))]
		resp, err := b.adm.CreateTopics(ctx, int32(o.Partitions), -1, nil, chunk...)
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		if err := resp.Error(); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
	}
	sink := &countSink{}
	url, eng, stop, err := b.rig(ctx, sink)
	if err != nil {
		return err
	}
	defer stop()

	idle := &Idle{Pipes: o.Pipes}
	runtime.GC()
	idle.RSSBeforeBytes = currentRSS()
	idle.GoroutinesBefore = runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	resetPeakRSS()
	start := time.Now()
	reached := sink.expect(int64(o.Pipes))
	for i, topic := range names {
		if err := b.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: b.value(time.Now())}).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if _, err := eng.CreatePipe(ctx, pipeSpec(fmt.Sprintf("idle-%04d", i), b.brokers, topic, url, o.BatchSizes[0])); err != nil {
			return err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := b.await(pctx, "many pipes", reached, sink, int64(o.Pipes)); err != nil {
		return err
	}
	idle.StartSeconds = time.Since(start).Seconds()
	if o.SleepAfter > 0 {
		live := time.Now()
		for eng.Sleeping() < o.Pipes {
			if time.Since(live) > o.Timeout {
				return fmt.Errorf("many pipes: %d of %d asleep %s after they went live", eng.Sleeping(), o.Pipes, o.Timeout)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		idle.SleepSeconds = time.Since(live).Seconds()
	}
	runtime.GC()

	if o.HeapProfile != "" {
		// With the heap, where the idle window's CPU goes.
		f, err := os.Create(o.HeapProfile + ".cpu")
		if err != nil {
			return fmt.Errorf("--heap-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cpu0, t0 := cpuTime(), time.Now()
	select {
	case <-time.After(o.Idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	idle.IdleSeconds = time.Since(t0).Seconds()
	idle.IdleCPUSeconds = (cpuTime() - cpu0).Seconds()
	idle.IdleCPUPercent = 100 * idle.IdleCPUSeconds / idle.IdleSeconds
	idle.RSSAfterBytes = currentRSS()
	idle.GoroutinesAfter = runtime.NumGoroutine()
	runtime.ReadMemStats(&ms)
	idle.RSSPerPipeBytes = (idle.RSSAfterBytes - idle.RSSBeforeBytes) / int64(o.Pipes)
	idle.HeapPerPipeBytes = (int64(ms.HeapInuse) - int64(heapBefore)) / int64(o.Pipes)
	idle.GoroutinesPerPipe = float64(idle.GoroutinesAfter-idle.GoroutinesBefore) / float64(o.Pipes)
	idle.Asleep = eng.Sleeping()
	b.res.Idle = idle
	if o.HeapProfile != "" {
		if err := writeHeapProfile(o.HeapProfile); err != nil {
			return err
		}
	}
	b.res.PeakRSSBytes = peakRSS()
	b.res.CPUSeconds = idle.IdleCPUSeconds
	return b.wakeLatency(ctx, idle, sink, names)
}

// wakeLatency produces one record at a time to idle pipes' topics, spread
// over all of them, and times each from the produce call to the endpoint.
func (b *bench) wakeLatency(ctx context.Context, idle *Idle, sink *countSink, topics []string) error {
	const samples = 20
	var lat []float64
	for i := range min(samples, len(topics)) {
		topic := topics[i*len(topics)/min(samples, len(topics))]
		want := sink.records.Load() + 1
		t0 := time.Now()
		if err := b.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: b.value(time.Now())}).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		for sink.records.Load() < want {
			if time.Since(t0) > b.o.Timeout {
				return fmt.Errorf("wake: no delivery from %s within %s", topic, b.o.Timeout)
			}
			select {
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
	}
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	idle.WakeSamples = len(lat)
	idle.WakeLatencyMsMin, idle.WakeLatencyMsMedian, idle.WakeLatencyMsMax = lat[0], lat[len(lat)/2], lat[len(lat)-1]
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--heap-profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--heap-profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The goroutines too: with many pipes their stacks are much of the
	// memory.
	g, err := os.Create(path + ".goroutines")
	if err != nil {
		return fmt.Errorf("--heap-profile: %w", err)
	}
	if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
		g.Close()
		return fmt.Errorf("--heap-profile: %w", err)
	}
	return g.Close()
}
