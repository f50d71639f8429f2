package target

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The kafka kind: the pipe's target.kafka section.
func init() {
	Register(Kind{Name: pipe.KindKafka, Key: kafkaKey, Describe: describeKafka, Open: openKafka})
}

// describeKafka is kafka://[CLUSTER/]TOPIC.
func describeKafka(spec pipe.Spec, _ Env) string {
	t := spec.Target.Kafka
	if t.Cluster != "" && t.Cluster != spec.Cluster {
		return "kafka://" + t.Cluster + "/" + t.Topic
	}
	return "kafka://" + t.Topic
}

// kafkaKey is empty: another cluster's connection is not part of the
// target's key (the same limit as a kafka:// failure destination has).
func kafkaKey(pipe.Spec, Env) string { return "" }

// MaxKafkaRecordBytes is the largest record the Kafka target produces:
// franz-go's default batch limit, which matches the broker's default
// message.max.bytes. A larger record can never be produced as it is, so it
// fails with batch.MaximumPayloadSizeExceeded and goes to the failure
// destination.
const MaxKafkaRecordBytes = 1_000_012

// kafkaRecordOverhead is a produced record's framing besides key, value and
// headers, rounded up.
const kafkaRecordOverhead = 128

func openKafka(_ context.Context, spec pipe.Spec, env Env) (Target, error) {
	t := *spec.Target.Kafka
	k := &Kafka{spec: t, pipe: env.Pipe, produced: env.Produced, describe: describeKafka(spec, env), timeout: spec.TargetTimeout()}
	if t.CloudEventsHeaders {
		enc, err := event.NewFormatEncoder(env.Source, event.FormatCloudEvents)
		if err != nil {
			return nil, err
		}
		k.ce = enc
	}
	if t.Delivery == pipe.ExactlyOnce {
		// Produced through each batch's transaction, which the source
		// owns: the target holds no client of its own.
		return k, nil
	}
	if env.Kafka == nil {
		return nil, errors.New("this process cannot reach Kafka for a kafka target")
	}
	cluster := t.Cluster
	if cluster == spec.Cluster {
		cluster = ""
	}
	brokers, opts, err := env.Kafka(cluster)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", k.describe, err)
	}
	all := append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, producerOpts(t, spec.TargetTimeout())...)
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", k.describe, err)
	}
	k.cl = cl
	return k, nil
}

// producerOpts are the franz-go options of t's quality of service.
func producerOpts(t pipe.KafkaTarget, timeout time.Duration) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RecordDeliveryTimeout(timeout),
		// A missing topic fails a produce after a few metadata refreshes;
		// at franz-go's 5 s between them that takes as long as the delivery
		// timeout, and the error would say only that time ran out.
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.DisableClientMetrics(),
	}
	opts = append(opts, TxnProducerOpts(t)...)
	switch t.Acks {
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if !t.IsIdempotent() {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(t.InFlight()))
	}
	if n := t.RetryCount(); n >= 0 {
		opts = append(opts, kgo.RecordRetries(n))
	}
	if t.Partitioner == pipe.PartitionerSource {
		opts = append(opts, kgo.RecordPartitioner(sourcePartitioner()))
	}
	// murmur2 is franz-go's default: StickyKeyPartitioner hashes keys as
	// Kafka's Java client does and sticks unkeyed records to a partition
	// per batch, as the Java client has since 2.4.
	return opts
}

// TxnProducerOpts are the producer options of t that also apply to the
// transactional client an EXACTLY_ONCE pipe's source owns and the target
// produces through.
func TxnProducerOpts(t pipe.KafkaTarget) []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerBatchCompression(compression(t.Compression)),
		// The pipe has cut the batch already, and Deliver waits for its
		// acknowledgements: lingering would only add franz-go's 10 ms per
		// batch (it capped AT_LEAST_ONCE at a fifth of a bare copy loop).
		kgo.ProducerLinger(0),
	}
}

func compression(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// sourcePartitioner puts each record in the partition of its source record
// (the Partition set on it before producing), modulo the topic's count.
func sourcePartitioner() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int { return int(r.Partition) % n }
	})
}

// Kafka produces each record of a batch to a topic: the source record's
// value (or, after an input template or an enrichment, each item of the
// payload), its headers, and the key the spec picks.
//
// AT_LEAST_ONCE answers once every record was acknowledged, so the source
// commits only what the topic holds. A record that fails after others of
// the batch were produced is retried from there by the retry stage, so the
// topic may hold a record twice but never one key's records out of order:
// the producer fails a partition's later records with an earlier one, and
// one key always goes to one partition. AT_MOST_ONCE answers as soon as
// the records are handed to the producer. EXACTLY_ONCE produces through
// the batch's transaction (batch.Txn), which the source commits with the
// offsets.
type Kafka struct {
	spec     pipe.KafkaTarget
	pipe     string
	cl       *kgo.Client // nil for EXACTLY_ONCE
	ce       *event.Encoder
	produced func(ok, failed int)
	describe string
	timeout  time.Duration
}

// producer is what a batch is produced through: the target's client, or
// the batch's transaction.
type producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// Deliver produces the batch and answers each record's outcome.
func (k *Kafka) Deliver(ctx context.Context, b *batch.Batch) batch.Result {
	var p producer = k.cl
	if k.spec.Delivery == pipe.ExactlyOnce {
		txn := b.Txn()
		if txn == nil {
			return batch.FailedAll(b, &KafkaError{Problem: "EXACTLY_ONCE needs a transaction, and this batch came without one", unavailable: true})
		}
		p = txn
	}
	if b.Oversized {
		// Larger as an event than the pipe's payload limit, and so over
		// what a produced record may be too.
		return batch.All(b.Len(), batch.Outcome{Status: batch.Failed, Condition: batch.MaximumPayloadSizeExceeded,
			Err: &KafkaError{Problem: fmt.Sprintf("target topic %q: the record is larger than a produced record may be (%d bytes)", k.spec.Topic, MaxKafkaRecordBytes), Err: ErrOversized}})
	}
	msgs, perRecord, err := k.records(b)
	if err != nil {
		return batch.FailedAll(b, &KafkaError{Problem: "target " + k.describe + ": " + err.Error(), Err: err})
	}
	res := batch.DeliveredAll(b)
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		if size := recordSize(m); size > MaxKafkaRecordBytes {
			errs[i] = fmt.Errorf("%w: %d bytes, over the %d a produced record may have", kerr.MessageTooLarge, size, MaxKafkaRecordBytes)
			continue
		}
		if k.spec.Delivery == pipe.AtMostOnce {
			p.Produce(ctx, m, k.forget)
			continue
		}
		wg.Add(1)
		p.Produce(ctx, m, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	// The producer answers every record within its delivery timeout, so
	// this wait is bounded even when ctx ends: franz-go fails what it
	// safely can at once and waits for requests already sent.
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		o := batch.Outcome{Status: batch.Failed, Err: k.explain(err)}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			o.Condition = batch.MaximumPayloadSizeExceeded
		}
		if !perRecord {
			// The payload's items do not map to records: one failure
			// fails them all.
			return batch.All(b.Len(), o)
		}
		res.Set(i, o)
	}
	if k.produced != nil && k.spec.Delivery != pipe.AtMostOnce {
		k.produced(len(msgs)-failed, failed)
	}
	return res
}

// forget is the promise of an AT_MOST_ONCE record: its outcome is counted,
// never waited for.
func (k *Kafka) forget(_ *kgo.Record, err error) {
	if k.produced == nil {
		return
	}
	if err != nil {
		k.produced(0, 1)
	} else {
		k.produced(1, 0)
	}
}

// Close flushes what AT_MOST_ONCE handed over and closes the client.
func (k *Kafka) Close() error {
	if k.cl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	err := k.cl.Flush(ctx)
	k.cl.Close()
	if err != nil {
		return fmt.Errorf("target %s: records not flushed before closing: %w", k.describe, err)
	}
	return nil
}

// records builds the messages of b: one per record, or one per item of
// the payload. perRecord says message i is record i's.
func (k *Kafka) records(b *batch.Batch) (msgs []*kgo.Record, perRecord bool, err error) {
	if b.Payload == nil {
		msgs = make([]*kgo.Record, b.Len())
		for i, r := range b.Records {
			msgs[i] = k.message(r, r.Value)
		}
		return msgs, true, nil
	}
	items, err := payloadItems(b.Payload)
	if err != nil {
		return nil, false, err
	}
	perRecord = len(items) == b.Len()
	msgs = make([]*kgo.Record, len(items))
	for i, v := range items {
		if perRecord {
			msgs[i] = k.message(b.Records[i], v)
		} else {
			msgs[i] = k.message(&kgo.Record{Topic: b.Topic, Partition: b.Partition, Offset: b.FirstOffset()}, v)
		}
	}
	return msgs, perRecord, nil
}

// payloadItems splits a payload (a JSON array of transformed records, or
// an enrichment's answer) into the values to produce: a JSON string item
// is its text, any other item its JSON.
func payloadItems(payload []byte) ([][]byte, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		raw = []json.RawMessage{bytes.TrimSpace(payload)}
	}
	out := make([][]byte, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, fmt.Errorf("item %d of the payload: %w", i, err)
			}
			out[i] = []byte(s)
			continue
		}
		out[i] = r
	}
	return out, nil
}

// message is the record to produce for src with value v.
func (k *Kafka) message(src *kgo.Record, v []byte) *kgo.Record {
	m := &kgo.Record{
		Topic: k.spec.Topic,
		Value: v,
		// Read by the source partitioner; franz-go sets the partition
		// it chose. The timestamp is left for franz-go to set when it
		// takes the record: it measures the delivery timeout from it.
		Partition: src.Partition,
		Key:       k.key(src, v),
	}
	if !k.spec.DropHeaders && len(src.Headers) > 0 {
		m.Headers = append(make([]kgo.RecordHeader, 0, len(src.Headers)+10), src.Headers...)
	}
	if k.ce != nil && !hasHeader(src.Headers, "ce-specversion") {
		hs, ct := k.ce.BinaryHeaders(src)
		for _, h := range hs {
			m.Headers = append(m.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		m.Headers = append(m.Headers, kgo.RecordHeader{Key: "content-type", Value: []byte(ct)})
	}
	return m
}

// key is the key the spec picks for src, whose produced value is v.
func (k *Kafka) key(src *kgo.Record, v []byte) []byte {
	switch sel := k.spec.Key; {
	case sel == pipe.KeyNone:
		return nil
	case strings.HasPrefix(sel, pipe.KeyHeaderPrefix):
		name := strings.TrimPrefix(sel, pipe.KeyHeaderPrefix)
		for i := len(src.Headers) - 1; i >= 0; i-- { // the last is the newest
			if src.Headers[i].Key == name {
				return src.Headers[i].Value
			}
		}
		return nil
	case strings.HasPrefix(sel, "$"):
		return jsonPathKey(v, sel)
	}
	return src.Key
}

// jsonPathKey is the value at path ($.a.b[0]) in the JSON document doc: a
// string's text, or any other value's JSON; nil when doc is not JSON or has
// nothing there.
func jsonPathKey(doc []byte, path string) []byte {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil
	}
	rest := path[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			end := strings.IndexAny(rest[1:], ".[")
			if end < 0 {
				end = len(rest) - 1
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			if v, ok = m[rest[1:end+1]]; !ok {
				return nil
			}
			rest = rest[end+1:]
		case '[':
			end := strings.IndexByte(rest, ']')
			n, err := strconv.Atoi(rest[1:end])
			a, ok := v.([]any)
			if err != nil || !ok || n >= len(a) {
				return nil
			}
			v, rest = a[n], rest[end+1:]
		default:
			return nil
		}
	}
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	case json.Number:
		return []byte(x.String())
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}

func hasHeader(hs []kgo.RecordHeader, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Key, name) {
			return true
		}
	}
	return false
}

func recordSize(r *kgo.Record) int {
	n := kafkaRecordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// KafkaError is a failed produce, with the fix when there is a usual one.
type KafkaError struct {
	Problem     string
	Err         error
	unavailable bool
}

func (e *KafkaError) Error() string {
	if e.Err != nil && !strings.HasSuffix(e.Problem, e.Err.Error()) {
		return e.Problem + ": " + e.Err.Error()
	}
	return e.Problem
}

func (e *KafkaError) Unwrap() error { return e.Err }

// TargetUnavailable says the records are not to blame (the topic is
// missing, the cluster unreachable, the principal not allowed): splitting
// the batch cannot help; see batch.Unavailable.
func (e *KafkaError) TargetUnavailable() bool { return e.unavailable }

// explain turns a produce error into what the pipe's PROBLEM says.
func (k *Kafka) explain(err error) error {
	t := k.spec.Topic
	e := &KafkaError{Err: err, unavailable: true}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		e.Problem = fmt.Sprintf("target topic %q does not exist: create it (for example `kafka-topics.sh --bootstrap-server HOST:PORT --create --topic %s`); Sluice does not create it", t, t)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		e.Problem = fmt.Sprintf("target topic %q: not allowed to write to it: grant the pipe's principal WRITE on the topic", t)
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		e.Problem = fmt.Sprintf("target topic %q: not allowed idempotent writes: grant the pipe's principal IDEMPOTENT_WRITE on the cluster, or set target.kafka.idempotence to false with AT_MOST_ONCE", t)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		e.Problem = fmt.Sprintf("target topic %q: not allowed to use transactions: grant the pipe's principal WRITE and DESCRIBE on its transactional id (sluice-PIPE-UUID…, a prefixed ACL)", t)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		e.Problem, e.unavailable = fmt.Sprintf("target topic %q: the record is larger than the topic accepts (raise its max.message.bytes, or shrink the record with inputTemplate)", t), false
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage):
		e.Problem, e.unavailable = fmt.Sprintf("target topic %q refused the record", t), false
	case errors.Is(err, kgo.ErrRecordTimeout):
		e.Problem = fmt.Sprintf("target topic %q did not acknowledge within %s (is the cluster reachable, and the topic's leader up?)", t, k.timeout)
	case errors.Is(err, kgo.ErrRecordRetries):
		e.Problem = fmt.Sprintf("target topic %q: the producer gave up after target.kafka.retries (%d)", t, k.spec.RetryCount())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Problem = fmt.Sprintf("target topic %q: stopped before the records were acknowledged", t)
	case errors.Is(err, kgo.ErrClientClosed):
		e.Problem = fmt.Sprintf("target topic %q: the producer is closed", t)
	default:
		e.Problem = fmt.Sprintf("target topic %q: cannot produce", t)
	}
	return e
}
