// Package bench measures a pipe's throughput end to end, against a baseline
// measured in the same run over the same records, so figures from a shared,
// noisy machine can be compared as ratios.
//
// The run: start an in-process Kafka broker (or use given brokers), produce
// N records of S bytes over P partitions, then
//   - baseline: a bare franz-go group consumer that polls every record and
//     does nothing else;
//   - pipe: a Sluice engine with one pipe delivering the same records to a
//     local HTTP endpoint that answers 200 at once;
//
// and report records/s and MB/s of each and their ratio.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// Options say what to measure.
type Options struct {
	Records    int
	Size       int
	Partitions int
	BatchSize  int
	// Brokers, when set, is an external cluster to use instead of an
	// in-process one.
	Brokers []string
	// BufferBytes is the pipe's buffer budget (0: the engine's default).
	BufferBytes int
	// Timeout bounds each phase.
	Timeout time.Duration
}

// Result holds the figures of one run.
type Result struct {
	Options               Options `json:"options"`
	ProduceSeconds        float64 `json:"produce_seconds"`
	BareConsumerSeconds   float64 `json:"bare_consumer_seconds"`
	BareConsumerPerSec    float64 `json:"bare_consumer_records_per_sec"`
	PipeSeconds           float64 `json:"pipe_seconds"`
	PipePerSec            float64 `json:"pipe_records_per_sec"`
	PipeMBPerSec          float64 `json:"pipe_mb_per_sec"`
	PipeToBareConsumer    float64 `json:"pipe_to_bare_consumer_ratio"`
	Batches               int64   `json:"batches"`
	MeanRecordsPerBatch   float64 `json:"mean_records_per_batch"`
	DeliveredRecordsTotal int64   `json:"delivered_records"`
}

// Run performs one measurement.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Records <= 0 || o.Size <= 0 || o.Partitions <= 0 || o.BatchSize <= 0 {
		return Result{}, errors.New("bench: records, size, partitions and batch size must be positive")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	res := Result{Options: o}
	topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	brokers := o.Brokers
	if len(brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), topic))
		if err != nil {
			return res, fmt.Errorf("start broker: %w", err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	}

	start := time.Now()
	if err := produce(ctx, brokers, topic, o); err != nil {
		return res, err
	}
	res.ProduceSeconds = time.Since(start).Seconds()

	start = time.Now()
	if err := bareConsume(ctx, brokers, topic, o); err != nil {
		return res, err
	}
	res.BareConsumerSeconds = time.Since(start).Seconds()
	res.BareConsumerPerSec = float64(o.Records) / res.BareConsumerSeconds

	secs, batches, delivered, err := runPipe(ctx, brokers, topic, o)
	if err != nil {
		return res, err
	}
	res.PipeSeconds = secs
	res.PipePerSec = float64(o.Records) / secs
	res.PipeMBPerSec = float64(o.Records) * float64(o.Size) / secs / 1e6
	res.PipeToBareConsumer = res.PipePerSec / res.BareConsumerPerSec
	res.Batches = batches
	res.DeliveredRecordsTotal = delivered
	if batches > 0 {
		res.MeanRecordsPerBatch = float64(delivered) / float64(batches)
	}
	return res, nil
}

func produce(ctx context.Context, brokers []string, topic string, o Options) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := bytes.Repeat([]byte("x"), o.Size)
	var failed atomic.Pointer[error]
	for i := 0; i < o.Records; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("produce: %w", *e)
	}
	return nil
}

// bareConsume is the baseline: the same group consumer setup with no
// batching, delivery or commits.
func bareConsume(ctx context.Context, brokers []string, topic string, o Options) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(topic+"-bare"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	n := 0
	for n < o.Records {
		fs := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bare consumer: %d of %d records: %w", n, o.Records, err)
		}
		n += fs.NumRecords()
	}
	return nil
}

// countingSink answers 200 at once and counts records by their opening
// field, without decoding: the endpoint should cost as little as possible.
type countingSink struct {
	records atomic.Int64
	batches atomic.Int64
	done    chan struct{}
	want    int64
	closed  atomic.Bool
}

var (
	recordMarker = []byte(`{"topic":`)
	bodies       = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A pooled buffer: the endpoint is the baseline's cost too, so it
	// should not spend its time growing and zeroing fresh ones.
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	n := s.records.Add(int64(bytes.Count(buf.Bytes(), recordMarker)))
	bodies.Put(buf)
	s.batches.Add(1)
	w.WriteHeader(http.StatusOK)
	if n >= s.want && s.closed.CompareAndSwap(false, true) {
		close(s.done)
	}
}

func runPipe(ctx context.Context, brokers []string, topic string, o Options) (secs float64, batches, delivered int64, err error) {
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return 0, 0, 0, err
	}
	defer st.Close()

	sink := &countingSink{done: make(chan struct{}), want: int64(o.Records)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 50 * time.Millisecond, Tuning: engine.Tuning{BufferBytes: o.BufferBytes}})
	if err != nil {
		return 0, 0, 0, err
	}
	ectx, stop := context.WithCancel(ctx)
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		_ = eng.Run(ectx)
	}()
	defer func() {
		stop()
		<-engDone
	}()

	start := time.Now()
	if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: "bench", BootstrapServers: brokers, Topics: []string{topic},
		BatchSize: o.BatchSize, Target: pipe.Target{URL: "http://" + ln.Addr().String() + "/"}}); err != nil {
		return 0, 0, 0, err
	}
	select {
	case <-sink.done:
	case <-time.After(o.Timeout):
		return 0, 0, 0, fmt.Errorf("pipe delivered %d of %d records within %s", sink.records.Load(), o.Records, o.Timeout)
	case <-ctx.Done():
		return 0, 0, 0, ctx.Err()
	}
	return time.Since(start).Seconds(), sink.batches.Load(), sink.records.Load(), nil
}
