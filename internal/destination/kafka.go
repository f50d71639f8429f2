package destination

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/stage"
)

// Headers Sluice adds to each message of a Kafka destination, after the
// original record's own (a record that failed before keeps its old ones
// too: Kafka headers may repeat, and the last is the newest).
const (
	// HeaderCondition is why the record was given up on: a batch.Condition.
	HeaderCondition = "sluice-condition"
	// HeaderSource is where the record came from: "topic-partition@offset".
	HeaderSource = "sluice-source"
)

// DefaultDeliveryTimeout bounds how long a message may wait to be
// acknowledged: without it the client retries for ever and Send hangs,
// leaving the partition stuck with no error to show why.
const DefaultDeliveryTimeout = 30 * time.Second

// Kafka produces one message per failed record to a topic, as the
// reference's Kafka on-failure destination does: the original key and
// headers, and the failure record (with the original record as its
// payload) as the value.
//
// Messages are partitioned by kgo's default partitioner: a keyed record
// goes to the partition its key hashes to, as the Java client would place
// it, so one key's failures stay in order. A record without a key stays
// without one and is spread over the partitions (kgo sticks to a partition
// for a batch's worth before moving on, where the reference round-robins
// record by record).
//
// The messages are timestamped when they are produced, not with the
// original record's time: the topic's time-based retention then keeps a
// failure for as long from when it failed, even if the record was old
// (as a MaximumRecordAgeExceeded one is). The original time is in the
// value.
type Kafka struct {
	topic   string
	cl      *kgo.Client
	b       *builder
	timeout time.Duration
}

var _ stage.Destination = (*Kafka)(nil)

// NewKafka makes a producer to topic from opts (the cluster's seed brokers,
// TLS, SASL…), with kgo's defaults for durability (acks from all in-sync
// replicas, idempotent writes) and a delivery timeout of
// DefaultDeliveryTimeout. opts are applied after those, so they may
// override them. The topic is not created: as with the reference, it must
// exist.
func NewKafka(topic string, opts []kgo.Opt, meta Meta) (*Kafka, error) {
	if topic == "" {
		return nil, errors.New("failure destination Kafka: no topic")
	}
	all := append([]kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(DefaultDeliveryTimeout),
		// A missing topic fails a produce after kgo's few metadata
		// retries; at its default 5 s between refreshes that takes as
		// long as the delivery timeout, and the error would say only that
		// time ran out instead of naming the missing topic.
		kgo.MetadataMinAge(500 * time.Millisecond),
		// A failed record carries its metadata besides itself, so it is
		// larger than the source record; the producer's batch must hold
		// one as large as a source record may be.
		kgo.ProducerBatchMaxBytes(16 << 20),
		// Uncompressed: failure records are few, and whoever reads the
		// topic (kafka-python without a snappy library, KafkaJS without a
		// codec plugin) must be able to, whatever it runs on.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("failure destination topic %q: %w", topic, err)
	}
	// opts may have changed the timeout; errors should say the one in use.
	timeout, _ := cl.OptValue(kgo.RecordDeliveryTimeout).(time.Duration)
	return &Kafka{topic: topic, cl: cl, b: newBuilder(meta), timeout: timeout}, nil
}

// Send produces a message for each of f's records and returns nil only once
// all are acknowledged. If only some are, it fails and a retry produces all
// again: the destination may hold a record twice, never lose one.
func (d *Kafka) Send(ctx context.Context, f stage.Failure) error {
	if len(f.Records) == 0 {
		return nil
	}
	recs, err := d.b.each(f)
	if err != nil {
		return err
	}
	msgs := make([]*kgo.Record, len(recs))
	for i, rec := range recs {
		value, err := marshal(rec)
		if err != nil {
			return err
		}
		orig := f.Records[i]
		headers := make([]kgo.RecordHeader, 0, len(orig.Headers)+2)
		headers = append(headers, orig.Headers...)
		headers = append(headers,
			kgo.RecordHeader{Key: HeaderCondition, Value: []byte(f.Condition)},
			kgo.RecordHeader{Key: HeaderSource, Value: []byte(source(f.Topic, f.Partition, orig.Offset))},
		)
		// The timestamp is left for kgo to set when it takes the record,
		// not Meta.Now: kgo measures the delivery timeout from it.
		msgs[i] = &kgo.Record{
			Topic:   d.topic,
			Key:     orig.Key, // nil stays nil: partitioned as unkeyed
			Value:   value,
			Headers: headers,
		}
	}
	results := d.cl.ProduceSync(ctx, msgs...)
	failed := 0
	var first error
	for _, r := range results {
		if r.Err != nil {
			if first == nil {
				first = r.Err
			}
			failed++
		}
	}
	if first == nil {
		return nil
	}
	err = d.explain(first)
	if len(msgs) > 1 {
		err = fmt.Errorf("%d of %d records not accepted: %w", failed, len(msgs), err)
	}
	return err
}

// explain says what went wrong producing to the topic, and the fix when
// there is a usual one.
func (d *Kafka) explain(err error) error {
	t := d.topic
	switch {
	// First: a record that timed out says why it kept failing only in
	// its last error, and a missing topic is the likeliest.
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("failure destination topic %q does not exist: create it (for example `kafka-topics.sh --bootstrap-server HOST:PORT --create --topic %s`); Sluice does not create it: %w", t, t, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("failure destination topic %q: not allowed to write to it: grant the pipe's principal WRITE on the topic: %w", t, err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("failure destination topic %q: not allowed idempotent writes: grant the pipe's principal IDEMPOTENT_WRITE on the cluster: %w", t, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("failure destination topic %q: a failure record (the original record and its metadata) is larger than the topic accepts: raise the topic's max.message.bytes: %w", t, err)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return fmt.Errorf("failure destination topic %q did not acknowledge within %s (is the cluster reachable, and the topic's leader up?): %w", t, d.timeout, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("failure destination topic %q: stopped before the records were acknowledged: %w", t, err)
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("failure destination topic %q: the destination is closed: %w", t, err)
	}
	return fmt.Errorf("failure destination topic %q: cannot produce: %w", t, err)
}

// Close flushes nothing (Send waits for its records) and closes the client.
func (d *Kafka) Close() error {
	d.cl.Close()
	return nil
}

// source is where a record came from, as HeaderSource says it.
func source(topic string, partition int32, offset int64) string {
	return topic + "-" + strconv.Itoa(int(partition)) + "@" + strconv.FormatInt(offset, 10)
}
