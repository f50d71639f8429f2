package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// KafkaCopy is one delivery guarantee's pipe in the kafka-target scenario,
// against the bare copy loop of the same run.
type KafkaCopy struct {
	Delivery string `json:"delivery"`
	Pipe     Phase  `json:"pipe"`
	// PipeToBareCopy is the pipe's rate over the bare copy loop's.
	PipeToBareCopy float64 `json:"pipe_to_bare_copy_ratio"`
}

// KafkaTargetGoal is the rate an AT_LEAST_ONCE kafka-target pipe should
// reach, as a fraction of the bare copy loop's.
const KafkaTargetGoal = 0.8

// kafkaDeliveries are the guarantees the scenario measures, in its order.
var kafkaDeliveries = []string{pipe.AtLeastOnce, pipe.AtMostOnce, pipe.ExactlyOnce}

// bareCopy is the kafka-target scenario's baseline: what a person would
// write with franz-go to copy a topic into another, at least once. Poll;
// produce the poll's records to topic to (same key, value and headers) and
// wait for every acknowledgement, with franz-go's default producer (acks
// all, idempotent, the same sticky partitioner the target's murmur2 is)
// but for compression, which is off as in the target's default (franz-go's
// default, snappy, would shrink the benchmark's repetitive values to next
// to nothing and spare the broker most of its work); commit what was
// polled; poll again. It stops once want records were
// produced. No batch size, window, retries of its own, failure handling or
// status: the pipe's cost over it is the price of those.
func bareCopy(ctx context.Context, brokers []string, from, to, group string, want int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(from),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var n int64
	var out []*kgo.Record
	for n < want {
		// The pipe's sources poll at most 10,000 records at a time too.
		fs := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare copy: %d of %d records: %w", n, want, err)
		}
		out = out[:0]
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: r.Headers})
		})
		if len(out) == 0 {
			cl.AllowRebalance()
			continue
		}
		if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare copy: produce: %w", err)
		}
		n += int64(len(out))
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare copy: commit: %w", err)
		}
		cl.AllowRebalance()
	}
	return nil
}

// kafkaTarget runs the kafka-target scenario: every record is produced to
// a source topic first, then each copier reads it from a consumer group of
// its own and writes it into an output topic of its own: the bare copy
// loop, then a pipe with a kafka target for each delivery guarantee.
func (b *bench) kafkaTarget(ctx context.Context) error {
	o := b.o
	n := int64(o.Records)
	bs := o.BatchSizes[0]
	from := b.id
	if err := b.createTopic(ctx, from, o.Partitions); err != nil {
		return err
	}
	start := time.Now()
	if err := b.produceAll(ctx, from, o.Records); err != nil {
		return err
	}
	b.res.ProduceSeconds = time.Since(start).Seconds()
	// Every output topic is made before any copier runs, so none pays for
	// creating its own inside its timed phase.
	out := func(who string) string { return b.id + "-out-" + who }
	for _, who := range append([]string{"bare"}, kafkaDeliveries...) {
		if err := b.createTopic(ctx, out(strings.ToLower(who)), o.Partitions); err != nil {
			return err
		}
	}

	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	bare := Phase{Name: "bare copy"}
	m := startMeter()
	if err := bareCopy(pctx, b.brokers, from, out("bare"), b.id+"-bare-copy", n); err != nil {
		return err
	}
	m.stop(&bare, n, o.Size)
	b.res.BareCopy = &bare

	eng, stop, err := b.engine(ctx)
	if err != nil {
		return err
	}
	defer stop()
	for _, d := range kafkaDeliveries {
		c := KafkaCopy{Delivery: d, Pipe: Phase{Name: "pipe " + d, BatchSize: bs}}
		name := "copy-" + strings.ReplaceAll(strings.ToLower(d), "_", "-")
		m := startMeter()
		first, err := b.runKafkaPipe(pctx, eng, name, from, out(strings.ToLower(d)), d, bs, n)
		if err != nil {
			return err
		}
		m.stop(&c.Pipe, n, o.Size)
		c.Pipe.FirstCallSeconds = first.Seconds()
		// The next guarantee's pipe should not share the machine with this
		// one's idle polling.
		if err := eng.DeletePipe(ctx, name); err != nil {
			return err
		}
		c.PipeToBareCopy = ratio(c.Pipe.RecordsPerSec, bare.RecordsPerSec)
		b.res.KafkaTarget = append(b.res.KafkaTarget, c)
	}
	return nil
}

// runKafkaPipe creates a pipe copying topic from into topic to with the
// delivery guarantee d, and waits until its output holds want records.
// first is how long after the pipe's creation the output held its first
// record (or commit): the pipe's start-up, group join included, apart
// from its rate once running.
//
// The output is counted from offsets, not read: a reader of the output
// would take CPU from the pipe while it is timed, and the bare copy has
// none. AT_LEAST_ONCE and AT_MOST_ONCE are done when the output's end
// offsets add up to want. EXACTLY_ONCE's end offsets count transaction
// markers, and records of transactions not yet committed, so it is done
// when the pipe's group has committed offsets to the end of the source:
// those are committed in the transactions that produced the records, so
// the records are committed with them.
func (b *bench) runKafkaPipe(ctx context.Context, eng *engine.Engine, name, from, to, d string, batchSize int, want int64) (first time.Duration, err error) {
	spec := pipe.Spec{Name: name, BootstrapServers: b.brokers, Topics: []string{from},
		BatchSize: batchSize, MaximumBatchingWindowInSeconds: &b.o.Window,
		Target: pipe.Target{Kafka: &pipe.KafkaTarget{Topic: to, Delivery: d}}}
	start := time.Now()
	p, err := eng.CreatePipe(ctx, spec)
	if err != nil {
		return 0, err
	}
	count := func() (int64, error) { return b.endOffsets(ctx, to) }
	what := "records in " + to
	if d == pipe.ExactlyOnce {
		group := p.Spec.GroupID()
		count = func() (int64, error) { return b.committed(ctx, group, from) }
		what = "offsets committed by group " + group
	}
	// 5 ms between looks: a phase takes seconds, and a look is one small
	// request to the broker.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var got int64
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return first, fmt.Errorf("pipe %s: %d of %d %s within %s", name, got, want, what, b.o.Timeout)
			}
			return first, ctx.Err()
		case <-tick.C:
		}
		if got, err = count(); err != nil {
			return first, fmt.Errorf("pipe %s: %w", name, err)
		}
		if got > 0 && first == 0 {
			first = time.Since(start)
		}
		if got >= want {
			return first, nil
		}
	}
}

// endOffsets is the sum of topic's partitions' end offsets: its records,
// when no transaction wrote to it.
func (b *bench) endOffsets(ctx context.Context, topic string) (int64, error) {
	ends, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// committed is the sum of group's committed offsets on topic: the records
// it has finished, when the topic was written without transactions.
func (b *bench) committed(ctx context.Context, group, topic string) (int64, error) {
	offs, err := b.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) || kerr.IsRetriable(err) {
		// Not joined yet, or its coordinator still loading: nothing
		// committed so far.
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	var sum int64
	for _, ps := range offs[topic] {
		if ps.Err == nil && ps.At > 0 {
			sum += ps.At
		}
	}
	return sum, nil
}
