// Package bench measures Sluice against baselines measured in the same run
// over the same records, so figures from a shared, noisy machine can be
// compared as ratios.
//
// Every scenario starts an in-process Kafka broker (or uses given brokers),
// produces records whose values carry their produce time, and measures up
// to three readers of them, each in a consumer group of its own:
//   - bare consumer: a franz-go group consumer that polls every record and
//     does nothing else, the ceiling of any Kafka reader on this machine;
//   - bare pipeline: a plain poll, encode, post, commit loop with the pipe's
//     concurrency (one batch in flight per partition) and no framework;
//   - pipe: a Sluice engine running one pipe (many in many-pipes).
//
// The two that deliver post to the same local endpoint. Scenarios:
//   - throughput: records produced first, then read as fast as possible,
//     at each batch size asked for (by default 100 and 1,000);
//   - latency: records produced at a steady rate while read; latency is
//     from the produce call to the endpoint's receipt;
//   - slow-target: as throughput, with an endpoint that takes 50 ms a
//     call, to show partitions delivered concurrently;
//   - many-pipes: 1,000 pipes on one process, idle: memory per pipe,
//     goroutines and idle CPU;
//   - kafka-target: records produced first, then copied into another
//     topic by a bare franz-go consume, produce, commit loop and by a pipe
//     with a kafka target at each delivery guarantee (no endpoint).
package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// Scenarios, in the order the CLI lists them.
const (
	Throughput = "throughput"
	Latency    = "latency"
	SlowTarget = "slow-target"
	ManyPipes  = "many-pipes"
	// KafkaTarget copies a topic into another: a bare copy loop against a
	// kafka-target pipe at each delivery guarantee.
	KafkaTarget = "kafka-target"
)

// Scenarios is every scenario Run knows.
var Scenarios = []string{Throughput, Latency, SlowTarget, ManyPipes, KafkaTarget}

// Options say what to measure. Zero values take the scenario's defaults
// (see Defaults).
type Options struct {
	Scenario   string `json:"scenario"`
	Records    int    `json:"records"`
	Size       int    `json:"size"`
	Partitions int    `json:"partitions"`
	// BatchSizes are the pipe's batch sizes; throughput runs each in turn.
	BatchSizes []int `json:"batch_sizes"`
	// Brokers, when set, is an external cluster to use instead of an
	// in-process one.
	Brokers []string `json:"brokers,omitempty"`
	// Window is the pipe's batching window in seconds (default 0). The
	// baselines have none, and with the reference's default of 0.5 s the
	// last, partial batch of each partition would wait it out and count
	// against the pipe's rate.
	Window float64 `json:"batching_window_seconds"`
	// Filter, when set, is an event pattern for throughput: each pass also
	// runs the pipe with this filter, over the same records, and reports
	// its rate against the pipe's. A pattern that keeps every record
	// measures what filtering costs.
	Filter string `json:"filter,omitempty"`
	// Rate is the latency scenario's records per second.
	Rate int `json:"rate,omitempty"`
	// TargetDelay is how long the endpoint takes per call.
	TargetDelay time.Duration `json:"target_delay_ns,omitempty"`
	// Pipes is the many-pipes scenario's number of pipes.
	Pipes int `json:"pipes,omitempty"`
	// Idle is how long many-pipes watches the idle pipes.
	Idle time.Duration `json:"idle_ns,omitempty"`
	// HeapProfile, when set, is a file many-pipes writes a heap profile to
	// at the end of the idle window, to see where a pipe's memory goes.
	HeapProfile string `json:"-"`
	// Timeout bounds each phase.
	Timeout time.Duration `json:"-"`
}

// Defaults fills in o's unset fields with its scenario's defaults.
func Defaults(o Options) Options {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Scenario == "" {
		o.Scenario = Throughput
	}
	set(&o.Size, 1024)
	switch o.Scenario {
	case Throughput:
		set(&o.Records, 500000)
		set(&o.Partitions, 8)
		if len(o.BatchSizes) == 0 {
			o.BatchSizes = []int{100, 1000}
		}
	case Latency:
		set(&o.Records, 10000)
		set(&o.Partitions, 8)
		set(&o.Rate, 1000)
	case SlowTarget:
		set(&o.Records, 50000)
		set(&o.Partitions, 8)
		if o.TargetDelay == 0 {
			o.TargetDelay = 50 * time.Millisecond
		}
	case KafkaTarget:
		// Fewer than throughput's: the scenario reads them four times and
		// writes them four times.
		set(&o.Records, 200000)
		set(&o.Partitions, 8)
	case ManyPipes:
		set(&o.Pipes, 1000)
		set(&o.Partitions, 1)
		set(&o.Records, o.Pipes) // one record a pipe, to prove each is live
		if o.Idle == 0 {
			o.Idle = 10 * time.Second
		}
	}
	if len(o.BatchSizes) == 0 {
		o.BatchSizes = []int{100}
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	return o
}

// Phase is one reader's figures.
type Phase struct {
	Name          string  `json:"name"`
	BatchSize     int     `json:"batch_size,omitempty"`
	Seconds       float64 `json:"seconds"`
	Records       int64   `json:"records"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// Latency is from the produce call to the endpoint's receipt (to the
	// poll's return for the bare consumer); only scenarios that produce
	// while reading have it.
	LatencyMsP50   *float64 `json:"latency_ms_p50,omitempty"`
	LatencyMsP99   *float64 `json:"latency_ms_p99,omitempty"`
	LatencyMsMax   *float64 `json:"latency_ms_max,omitempty"`
	LatencySamples int      `json:"latency_samples,omitempty"`
	CPUSeconds     float64  `json:"cpu_seconds"`
	PeakRSSBytes   int64    `json:"peak_rss_bytes"`
	// FirstCallSeconds is how long the endpoint waited for the first call:
	// the reader's start-up, group join included.
	FirstCallSeconds float64 `json:"first_call_seconds,omitempty"`
	// Batches and MaxConcurrentCalls are what the endpoint saw.
	Batches            int64 `json:"batches,omitempty"`
	MaxConcurrentCalls int64 `json:"max_concurrent_calls,omitempty"`
}

// Pass is one batch size's pipe against its bare pipeline.
type Pass struct {
	BatchSize          int     `json:"batch_size"`
	BarePipeline       Phase   `json:"bare_pipeline"`
	Pipe               Phase   `json:"pipe"`
	PipeToBareConsumer float64 `json:"pipe_to_bare_consumer_ratio"`
	PipeToBarePipeline float64 `json:"pipe_to_bare_pipeline_ratio"`
	// FilteredPipe is the pipe with Options.Filter, when given, and
	// FilteredToPipe its rate over the pipe's.
	FilteredPipe   *Phase  `json:"filtered_pipe,omitempty"`
	FilteredToPipe float64 `json:"filtered_to_pipe_ratio,omitempty"`
}

// Idle is the many-pipes scenario's figures.
type Idle struct {
	Pipes             int     `json:"pipes"`
	StartSeconds      float64 `json:"start_seconds"`
	RSSBeforeBytes    int64   `json:"rss_before_bytes"`
	RSSAfterBytes     int64   `json:"rss_after_bytes"`
	RSSPerPipeBytes   int64   `json:"rss_per_pipe_bytes"`
	HeapPerPipeBytes  int64   `json:"heap_per_pipe_bytes"`
	GoroutinesBefore  int     `json:"goroutines_before"`
	GoroutinesAfter   int     `json:"goroutines_after"`
	GoroutinesPerPipe float64 `json:"goroutines_per_pipe"`
	IdleSeconds       float64 `json:"idle_seconds"`
	IdleCPUSeconds    float64 `json:"idle_cpu_seconds"`
	// IdleCPUPercent is CPU time over wall time while idle, as a percentage
	// of one core.
	IdleCPUPercent float64 `json:"idle_cpu_percent_of_one_core"`
}

// Result holds one run's figures. The top-level figures the issue's
// consumers script against are the first batch size's; Runs has them all.
type Result struct {
	Options Options `json:"options"`
	// Broker is "in-process" or "external".
	Broker         string  `json:"broker"`
	ProduceSeconds float64 `json:"produce_seconds,omitempty"`
	BareConsumer   *Phase  `json:"bare_consumer,omitempty"`
	Runs           []Pass  `json:"runs,omitempty"`
	Idle           *Idle   `json:"idle,omitempty"`
	// BareCopy and KafkaTarget are the kafka-target scenario's: the bare
	// copy loop, and a pipe for each delivery guarantee against it.
	BareCopy    *Phase      `json:"bare_copy,omitempty"`
	KafkaTarget []KafkaCopy `json:"kafka_target,omitempty"`

	PipeRecordsPerSec         float64  `json:"pipe_records_per_sec"`
	BareConsumerRecordsPerSec float64  `json:"bare_consumer_records_per_sec"`
	BarePipelineRecordsPerSec float64  `json:"bare_pipeline_records_per_sec"`
	PipeToBareConsumer        float64  `json:"pipe_to_bare_consumer_ratio"`
	PipeToBarePipeline        float64  `json:"pipe_to_bare_pipeline_ratio"`
	LatencyMsP50              *float64 `json:"latency_ms_p50"`
	LatencyMsP99              *float64 `json:"latency_ms_p99"`
	LatencyMsMax              *float64 `json:"latency_ms_max"`
	CPUSeconds                float64  `json:"cpu_seconds"`
	PeakRSSBytes              int64    `json:"peak_rss_bytes"`
}

// Validate names the first option out of range.
func (o Options) Validate() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == o.Scenario
	}
	if !known {
		return fmt.Errorf("scenario %q: use one of %v", o.Scenario, Scenarios)
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"--records", o.Records}, {"--size", o.Size}, {"--partitions", o.Partitions}} {
		if c.v < 1 {
			return fmt.Errorf("%s %d: use 1 or more", c.flag, c.v)
		}
	}
	if o.Size < 16 {
		return fmt.Errorf("--size %d: use 16 or more (each value carries its produce time)", o.Size)
	}
	for _, b := range o.BatchSizes {
		if b < 1 || b > pipe.MaxBatchSize {
			return fmt.Errorf("--batch-size %d: use 1–%d", b, pipe.MaxBatchSize)
		}
	}
	if o.Scenario == Latency && o.Rate < 1 {
		return fmt.Errorf("--rate %d: use 1 or more records a second", o.Rate)
	}
	if o.Window < 0 || o.Window > pipe.MaxBatchingWindowSeconds {
		return fmt.Errorf("--batching-window %v: use 0–%d seconds", o.Window, pipe.MaxBatchingWindowSeconds)
	}
	if o.Scenario == KafkaTarget && len(o.BatchSizes) > 1 {
		// Each batch size would need three pipes more; run the scenario
		// once per batch size instead.
		return fmt.Errorf("--batch-size %v: kafka-target takes one batch size", o.BatchSizes)
	}
	if o.Scenario == ManyPipes && o.Pipes < 1 {
		return fmt.Errorf("--pipes %d: use 1 or more", o.Pipes)
	}
	return nil
}

// Run performs one scenario.
func Run(ctx context.Context, o Options) (Result, error) {
	o = Defaults(o)
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	b := &bench{o: o, res: Result{Options: o, Broker: "external"}}
	b.brokers = o.Brokers
	if len(b.brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return b.res, fmt.Errorf("start broker: %w", err)
		}
		defer c.Close()
		b.brokers = c.ListenAddrs()
		b.res.Broker = "in-process"
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return b.res, err
	}
	defer cl.Close()
	b.cl = cl
	b.adm = kadm.NewClient(cl)
	b.id = fmt.Sprintf("bench-%d", time.Now().UnixNano())

	switch o.Scenario {
	case Throughput, SlowTarget:
		err = b.throughput(ctx)
	case Latency:
		err = b.latency(ctx)
	case ManyPipes:
		err = b.manyPipes(ctx)
	case KafkaTarget:
		err = b.kafkaTarget(ctx)
	}
	b.summarise()
	return b.res, err
}

type bench struct {
	o       Options
	res     Result
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
	id      string // prefix of this run's topics and groups
}

func (b *bench) summarise() {
	r := &b.res
	if r.BareConsumer != nil {
		r.BareConsumerRecordsPerSec = r.BareConsumer.RecordsPerSec
	}
	if r.BareCopy != nil && len(r.KafkaTarget) > 0 {
		// The bare copy is this scenario's bare pipeline, and the
		// AT_LEAST_ONCE pipe (the default guarantee) its pipe, so scripts
		// reading the top-level figures get the headline ratio.
		first := r.KafkaTarget[0]
		r.PipeRecordsPerSec = first.Pipe.RecordsPerSec
		r.BarePipelineRecordsPerSec = r.BareCopy.RecordsPerSec
		r.PipeToBarePipeline = first.PipeToBareCopy
		r.CPUSeconds = first.Pipe.CPUSeconds
		r.PeakRSSBytes = first.Pipe.PeakRSSBytes
		return
	}
	if len(r.Runs) == 0 {
		return
	}
	first := r.Runs[0]
	r.PipeRecordsPerSec = first.Pipe.RecordsPerSec
	r.BarePipelineRecordsPerSec = first.BarePipeline.RecordsPerSec
	r.PipeToBareConsumer = first.PipeToBareConsumer
	r.PipeToBarePipeline = first.PipeToBarePipeline
	r.LatencyMsP50, r.LatencyMsP99, r.LatencyMsMax = first.Pipe.LatencyMsP50, first.Pipe.LatencyMsP99, first.Pipe.LatencyMsMax
	r.CPUSeconds = first.Pipe.CPUSeconds
	r.PeakRSSBytes = first.Pipe.PeakRSSBytes
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (b *bench) createTopic(ctx context.Context, name string, partitions int) error {
	resp, err := b.adm.CreateTopic(ctx, int32(partitions), -1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

// value returns a record value of the run's size stamped with now.
func (b *bench) value(now time.Time) []byte {
	v := make([]byte, b.o.Size)
	binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
	for i := 8; i < len(v); i++ {
		v[i] = 'x'
	}
	return v
}

// produceAll writes n records to topic round-robin over its partitions and
// waits until the broker has them all.
func (b *bench) produceAll(ctx context.Context, topic string, n int) error {
	var failed atomic.Pointer[error]
	for i := 0; i < n; i++ {
		b.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: b.value(time.Now())}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := b.cl.Flush(ctx); err != nil {
		return err
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("produce: %w", *e)
	}
	return nil
}

// engine is a Sluice engine on a store of its own, started; stop it with
// the returned function.
func (b *bench) engine(ctx context.Context) (*engine.Engine, func(), error) {
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 2 * time.Second})
	if err != nil {
		st.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = eng.Run(ectx)
	}()
	return eng, func() {
		cancel()
		<-done
		st.Close()
		os.RemoveAll(dir)
	}, nil
}

// rig serves sink and starts an engine: what every pipe phase needs. stop
// stops the engine before the sink, so no delivery meets a closed port.
func (b *bench) rig(ctx context.Context, sink *countSink) (url string, eng *engine.Engine, stop func(), err error) {
	url, stopSink, err := serve(sink)
	if err != nil {
		return "", nil, nil, err
	}
	eng, stopEngine, err := b.engine(ctx)
	if err != nil {
		stopSink()
		return "", nil, nil, err
	}
	return url, eng, func() { stopEngine(); stopSink() }, nil
}

// runPipe creates a pipe over topic to url and waits until the endpoint has
// want records.
func (b *bench) runPipe(ctx context.Context, eng *engine.Engine, name, topic, url string, batchSize int, window *float64, sink *countSink, want int64, filter ...string) error {
	reached := sink.expect(want)
	spec := pipe.Spec{Name: name, BootstrapServers: b.brokers, Topics: []string{topic},
		BatchSize: batchSize, MaximumBatchingWindowInSeconds: window, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: url}}}
	for _, f := range filter {
		if spec.FilterCriteria == nil {
			spec.FilterCriteria = &pipe.FilterCriteria{}
		}
		spec.FilterCriteria.Filters = append(spec.FilterCriteria.Filters, pipe.Filter{Pattern: f})
	}
	if _, err := eng.CreatePipe(ctx, spec); err != nil {
		return err
	}
	return b.await(ctx, "pipe", reached, sink, want)
}

func (b *bench) await(ctx context.Context, who string, reached <-chan struct{}, sink *countSink, want int64) error {
	t := time.NewTimer(b.o.Timeout)
	defer t.Stop()
	select {
	case <-reached:
		return nil
	case <-t.C:
		return fmt.Errorf("%s delivered %d of %d records within %s", who, sink.records.Load(), want, b.o.Timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func pipeSpec(name string, brokers []string, topic, url string, batchSize int) pipe.Spec {
	return pipe.Spec{Name: name, BootstrapServers: brokers, Topics: []string{topic}, BatchSize: batchSize,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: url}}}
}
