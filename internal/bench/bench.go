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
//     call and records of 1,000 keys, to show partitions delivered
//     concurrently; then the same records by a pipe of each other
//     ordering (KEY, NONE), which keeps batches of a partition in flight
//     together, and a KEY pipe whose endpoint throttles for a while, to
//     show the concurrency controller give way and recover;
//   - many-pipes: 1,000 pipes on one process, idle: memory per pipe,
//     goroutines and idle CPU;
//   - kafka-target: records produced first, then copied into another
//     topic by a bare franz-go consume, produce, commit loop and by a pipe
//     with a kafka target at each delivery guarantee (no endpoint);
//   - scale-out: records produced first, then read by a pipe on one
//     process and on two sharing one store, each process allowed
//     --concurrency batches in flight (default 4) against an endpoint
//     that takes --target-delay (default 20 ms): how the rate grows;
//   - hosted-function: no Kafka; one batch delivered over and over by the
//     function target to a hosted no-op aws-lambda-go handler and by the
//     HTTP target to a no-op endpoint, at concurrency 1 and 8: batches
//     per second and latency of each.
package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
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
	// HostedFunction delivers one batch over and over to a hosted no-op
	// handler and, as the baseline, by the HTTP target to a no-op
	// endpoint.
	HostedFunction = "hosted-function"
	// ScaleOutScenario reads the same records with a pipe on one process
	// and on two sharing one store.
	ScaleOutScenario = "scale-out"
)

// Scenarios is every scenario Run knows.
var Scenarios = []string{Throughput, Latency, SlowTarget, ManyPipes, KafkaTarget, HostedFunction, ScaleOutScenario}

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
	// Keys is how many distinct keys slow-target's records have (default
	// 1,000): each record takes one at random and lives on the partition
	// its key hashes to, as with Kafka's default partitioner.
	Keys int `json:"keys,omitempty"`
	// ThrottleFrom and ThrottleTo are when, after its first call, the
	// endpoint of slow-target's throttle phase answers 429 (default 3 s to
	// 5 s: the controller's slow start from 1 to 200 takes 2 s, so the
	// limit before is the one it settled on). ThrottleWatch is how long
	// after that the phase goes on feeding the pipe to watch its
	// concurrency recover (default 12 s: the controller holds growth off
	// for 5 s after its last halving, then grows by a quarter at most
	// every 250 ms).
	ThrottleFrom  time.Duration `json:"throttle_from_ns,omitempty"`
	ThrottleTo    time.Duration `json:"throttle_to_ns,omitempty"`
	ThrottleWatch time.Duration `json:"throttle_watch_ns,omitempty"`
	// SkipThrottle leaves slow-target's throttle phase out.
	SkipThrottle bool `json:"skip_throttle,omitempty"`
	// Concurrency is scale-out's batches in flight per process.
	Concurrency int `json:"concurrency,omitempty"`
	// Pipes is the many-pipes scenario's number of pipes.
	Pipes int `json:"pipes,omitempty"`
	// Idle is how long many-pipes watches the idle pipes.
	Idle time.Duration `json:"idle_ns,omitempty"`
	// SleepAfter is the engine's Tuning.SleepAfter in many-pipes (default
	// 5 s, so the run measures sleeping pipes; negative keeps every pipe
	// awake, to measure what an idle pipe costs in its group). The idle
	// window starts once every pipe sleeps.
	SleepAfter time.Duration `json:"sleep_after_ns,omitempty"`
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
		// Enough that the KEY pipe, at its goal of 10× the PARTITION
		// pipe's ceiling (8 partitions × 100 records / 50 ms = 16,000
		// records/s), still takes 2.5 s, so its start-up (group join, the
		// controller's slow start) is not most of what is measured. The
		// PARTITION pipe and the bare pipeline take 25–30 s each.
		set(&o.Records, 400000)
		set(&o.Partitions, 8)
		set(&o.Keys, 1000)
		if o.TargetDelay == 0 {
			o.TargetDelay = 50 * time.Millisecond
		}
		if o.ThrottleTo == 0 {
			o.ThrottleFrom, o.ThrottleTo = 3*time.Second, 5*time.Second
		}
		if o.ThrottleWatch == 0 {
			o.ThrottleWatch = 12 * time.Second
		}
	case KafkaTarget:
		// Fewer than throughput's: the scenario reads them four times and
		// writes them four times.
		set(&o.Records, 200000)
		set(&o.Partitions, 8)
	case ScaleOutScenario:
		// 16 partitions, so two processes have 8 each; each process's
		// concurrency, not the partitions, bounds the rate. Enough
		// records that the second process's join is not most of its
		// phase (200,000 gave 1.6–1.7, 400,000 1.95).
		set(&o.Records, 400000)
		set(&o.Partitions, 16)
		set(&o.Concurrency, 4)
		if o.TargetDelay == 0 {
			o.TargetDelay = 20 * time.Millisecond
		}
	case HostedFunction:
		// Records is the deliveries of each phase here.
		set(&o.Records, 5000)
		set(&o.Partitions, 1)
	case ManyPipes:
		set(&o.Pipes, 1000)
		set(&o.Partitions, 1)
		set(&o.Records, o.Pipes) // one record a pipe, to prove each is live
		if o.Idle == 0 {
			o.Idle = 10 * time.Second
		}
		if o.SleepAfter == 0 {
			o.SleepAfter = 5 * time.Second
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
	// MeanConcurrentCalls is the calls the endpoint had open on average
	// (their time summed over the phase's): with a slow endpoint, the rate
	// is this times the records per call over the endpoint's delay.
	MeanConcurrentCalls float64 `json:"mean_concurrent_calls,omitempty"`
	// KeysPerCall is the distinct keys of a call on average, where the
	// endpoint reads keys (slow-target). A key is in one batch of a KEY
	// pipe at a time, so the pipe has at most a partition's keys over this
	// many batches of the partition in flight.
	KeysPerCall float64 `json:"keys_per_call,omitempty"`
	// PeakConcurrency and PeakInFlight are the highest concurrency limit
	// and batches in flight the pipe's controller showed (sampled every
	// 100 ms), for the pipes of throughput and slow-target.
	PeakConcurrency int `json:"peak_concurrency,omitempty"`
	PeakInFlight    int `json:"peak_in_flight,omitempty"`
	// BestSecondRecordsPerSec is the most records the endpoint accepted in
	// a second of the phase (from the same samples): the rate once the
	// controller's slow start is over, which RecordsPerSec, timed from
	// the pipe's creation, is not in a phase of a few seconds.
	BestSecondRecordsPerSec float64 `json:"best_second_records_per_sec,omitempty"`
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
	// Orderings are slow-target's pipe at each ordering over the same
	// records, PARTITION (the Pipe above) first.
	Orderings []Ordered `json:"orderings,omitempty"`
}

// Ordered is one ordering's pipe in slow-target, each in a consumer group
// of its own over the same records.
type Ordered struct {
	Ordering string `json:"ordering"`
	Pipe     Phase  `json:"pipe"`
	// ToPartition is the pipe's rate over the PARTITION pipe's, and
	// BestSecondToPartition the same of their best seconds.
	ToPartition           float64 `json:"to_partition_ratio"`
	BestSecondToPartition float64 `json:"best_second_to_partition_ratio"`
	// OrderViolations is the records the endpoint first accepted after a
	// later record of the same key and partition (a failure for KEY and
	// PARTITION; NONE promises no order); Redelivered the records it
	// accepted more than once.
	OrderViolations int64 `json:"order_violations"`
	Redelivered     int64 `json:"redelivered"`
}

// KeyGoal is the rate a KEY pipe should reach in slow-target, as a
// multiple of the PARTITION pipe's over the same records.
const KeyGoal = 10.0

// Throttle is slow-target's throttle phase: a KEY pipe whose endpoint
// answers 429 for a while, its concurrency sampled throughout. Times are
// from the endpoint's first call, and the phase ends once every record
// produced for it was accepted.
type Throttle struct {
	Ordering  string `json:"ordering"`
	BatchSize int    `json:"batch_size"`
	// FromSeconds and ToSeconds are the window of 429s.
	FromSeconds float64 `json:"from_seconds"`
	ToSeconds   float64 `json:"to_seconds"`
	// Records were produced while the phase ran, to keep the pipe busy
	// until its concurrency had recovered; all were accepted in Seconds.
	Records int64   `json:"records"`
	Seconds float64 `json:"seconds"`
	Refused int64   `json:"refused_calls"`
	// Before is the limit when the throttling began; Minimum the lowest
	// after, MinimumAtSeconds when (from the start of the throttling).
	Before           int     `json:"before"`
	Minimum          int     `json:"minimum"`
	MinimumAtSeconds float64 `json:"minimum_at_seconds"`
	// HalvedAfterSeconds is how long after the start of the throttling the
	// limit was first at half of Before or less; nil if it never was.
	HalvedAfterSeconds *float64 `json:"halved_after_seconds"`
	// BackAfterSeconds is how long after the end of the throttling the
	// limit was back at Before or higher; nil if it never was.
	BackAfterSeconds *float64 `json:"back_after_seconds"`
	// Recovered is the limit at the end of the watch, RecoveredAfterSeconds
	// when it got there from the end of the throttling; nil if it never
	// rose from the minimum.
	Recovered             int      `json:"recovered"`
	RecoveredAfterSeconds *float64 `json:"recovered_after_seconds"`
	OrderViolations       int64    `json:"order_violations"`
	Redelivered           int64    `json:"redelivered"`
	Samples               []Sample `json:"samples"`
}

// Sample is one look at a pipe's concurrency controller.
type Sample struct {
	Seconds  float64 `json:"t"`
	Limit    int     `json:"limit"`
	InFlight int     `json:"in_flight"`
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
	// Asleep is how many pipes slept through the idle window, and
	// SleepSeconds how long after the last went live they all were.
	Asleep       int     `json:"asleep"`
	SleepSeconds float64 `json:"sleep_seconds,omitempty"`
	// WakeLatencyMs*, after the idle window, are how long one record
	// produced to an idle pipe's topic took to reach the endpoint, from
	// the produce call, over WakeSamples pipes woken one at a time.
	WakeSamples         int     `json:"wake_samples"`
	WakeLatencyMsMin    float64 `json:"wake_latency_ms_min"`
	WakeLatencyMsMedian float64 `json:"wake_latency_ms_median"`
	WakeLatencyMsMax    float64 `json:"wake_latency_ms_max"`
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
	// Throttle is slow-target's throttle phase.
	Throttle *Throttle `json:"throttle,omitempty"`
	// Invoke is hosted-function's.
	Invoke *Invoke `json:"invoke,omitempty"`
	// ScaleOut is scale-out's.
	ScaleOut *ScaleOut `json:"scale_out,omitempty"`

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
	if o.Scenario == SlowTarget {
		if o.Keys < 1 {
			return fmt.Errorf("--keys %d: use 1 or more", o.Keys)
		}
		if !o.SkipThrottle && (o.ThrottleFrom < 0 || o.ThrottleTo <= o.ThrottleFrom || o.ThrottleWatch <= 0) {
			return fmt.Errorf("--throttle-from %s --throttle-to %s --throttle-watch %s: use 0 ≤ from < to and a positive watch",
				o.ThrottleFrom, o.ThrottleTo, o.ThrottleWatch)
		}
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.RecordPartitioner(keyedRoundRobin{}),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100000), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return b.res, err
	}
	defer cl.Close()
	b.cl = cl
	b.adm = kadm.NewClient(cl)
	b.id = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if o.Scenario == SlowTarget {
		b.keys = make([][]byte, o.Keys)
		for i := range b.keys {
			b.keys[i] = fmt.Appendf(nil, "key-%04d", i)
		}
		// Seeded, so that runs have the same keys in the same order.
		b.rng = rand.New(rand.NewPCG(1, 2))
	}

	switch o.Scenario {
	case Throughput, SlowTarget:
		err = b.throughput(ctx)
	case Latency:
		err = b.latency(ctx)
	case ManyPipes:
		err = b.manyPipes(ctx)
	case KafkaTarget:
		err = b.kafkaTarget(ctx)
	case HostedFunction:
		err = b.hostedFunction(ctx)
	case ScaleOutScenario:
		err = b.scaleOut(ctx)
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
	// keys, when set, are the keys records take at random (rng's).
	keys [][]byte
	rng  *rand.Rand
}

// keyedRoundRobin partitions a keyed record by its key's hash, as Kafka's
// default partitioner does, so each key lives on one partition and its
// order there is the one KEY ordering keeps; records without a key go
// round robin, so the scenarios without keys spread evenly.
type keyedRoundRobin struct{}

func (keyedRoundRobin) ForTopic(t string) kgo.TopicPartitioner {
	return &keyedTopicPartitioner{rr: kgo.RoundRobinPartitioner().ForTopic(t), key: kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type keyedTopicPartitioner struct{ rr, key kgo.TopicPartitioner }

func (p *keyedTopicPartitioner) RequiresConsistency(r *kgo.Record) bool { return r.Key != nil }

func (p *keyedTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Key != nil {
		return p.key.Partition(r, n)
	}
	return p.rr.Partition(r, n)
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

// produceAll writes n records to topic round-robin over its partitions
// (by key, when the scenario has keys) and waits until the broker has them
// all.
func (b *bench) produceAll(ctx context.Context, topic string, n int) error {
	var failed atomic.Pointer[error]
	b.produce(ctx, topic, n, &failed)
	if err := b.cl.Flush(ctx); err != nil {
		return err
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("produce: %w", *e)
	}
	return nil
}

// produce hands n records for topic to the producer, keyed when the
// scenario has keys, and notes the first error in failed.
func (b *bench) produce(ctx context.Context, topic string, n int, failed *atomic.Pointer[error]) {
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Value: b.value(time.Now())}
		if len(b.keys) > 0 {
			r.Key = b.keys[b.rng.IntN(len(b.keys))]
		}
		b.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
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
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 2 * time.Second, Tuning: engine.Tuning{SleepAfter: b.o.SleepAfter}})
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
