package target

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// kafkaCluster is a real in-process broker with topic "out" of n
// partitions.
func kafkaCluster(t *testing.T, n int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(n, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaEnv(c *kfake.Cluster) Env {
	return Env{
		Pipe:   "p",
		Source: event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: c.ListenAddrs()},
		Kafka: func(cluster string) ([]string, []kgo.Opt, error) {
			if cluster != "" {
				return nil, nil, fmt.Errorf("cluster %q is not registered", cluster)
			}
			return c.ListenAddrs(), nil, nil
		},
	}
}

func openKafkaTarget(t *testing.T, c *kfake.Cluster, k pipe.KafkaTarget) Target {
	t.Helper()
	spec := pipe.Spec{Name: "p", Topics: []string{"in"}, BootstrapServers: c.ListenAddrs(), Target: pipe.Target{Kafka: &k}}
	if err := spec.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	tgt, err := Open(context.Background(), spec.Normalize(), kafkaEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tgt.Close() })
	return tgt
}

// readAll reads n records of topic "out" from the start.
func readAll(t *testing.T, c *kfake.Cluster, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func sourceRecords(keys ...string) []*kgo.Record {
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: "in", Partition: 3, Offset: int64(10 + i), Timestamp: time.UnixMilli(1700000000000),
			Key: []byte(k), Value: []byte(fmt.Sprintf(`{"n":%d,"order":{"id":"o-%s"}}`, i, k)),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t" + k)}, {Key: "ce-subject", Value: []byte("subj-" + k)}}}
	}
	return recs
}

// Kafka's own murmur2 test vectors (UtilsTest.testMurmur2), with the
// partition of 4 that the Java default partitioner picks for each.
var javaPartitions = map[string]int32{
	"21": 0, "foobar": 2, "a-little-bit-long-string": 0, "a-little-bit-longer-string": 3,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": 1, "abc": 3,
}

func TestKafkaTargetKeysHeadersAndJavaPartitions(t *testing.T) {
	c := kafkaCluster(t, 4)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out"})
	var keys []string
	for k := range javaPartitions {
		keys = append(keys, k)
	}
	b := batch.New(sourceRecords(keys...), nil)
	res := tgt.Deliver(context.Background(), b)
	if res.Final() != b.Len() {
		t.Fatalf("final %d of %d: %v", res.Final(), b.Len(), res.Err())
	}
	got := readAll(t, c, len(keys))
	for _, r := range got {
		want, ok := javaPartitions[string(r.Key)]
		if !ok {
			t.Fatalf("unexpected key %q", r.Key)
		}
		if r.Partition != want {
			t.Errorf("key %q in partition %d; Kafka's Java partitioner puts it in %d", r.Key, r.Partition, want)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || string(r.Headers[0].Value) != "t"+string(r.Key) {
			t.Errorf("key %q: headers %v, want the source record's", r.Key, r.Headers)
		}
		if !strings.Contains(string(r.Value), `"o-`+string(r.Key)+`"`) {
			t.Errorf("key %q: value %s is not the source record's", r.Key, r.Value)
		}
	}
}

func TestKafkaTargetKeyChoices(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want func(src string) string
	}{
		{"none", func(string) string { return "" }},
		{"header:ce-subject", func(k string) string { return "subj-" + k }},
		{"$.order.id", func(k string) string { return "o-" + k }},
		{"$.n", nil}, // a number is its JSON text
		{"$.missing", func(string) string { return "" }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			c := kafkaCluster(t, 1)
			tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out", Key: tc.key})
			b := batch.New(sourceRecords("a", "b"), nil)
			if res := tgt.Deliver(context.Background(), b); res.Final() != 2 {
				t.Fatal(res.Err())
			}
			for i, r := range readAll(t, c, 2) {
				want := fmt.Sprint(i)
				if tc.want != nil {
					want = tc.want([]string{"a", "b"}[i])
				}
				if string(r.Key) != want {
					t.Errorf("record %d: key %q, want %q", i, r.Key, want)
				}
			}
		})
	}
}

func TestKafkaTargetSourcePartitionerAndCloudEvents(t *testing.T) {
	c := kafkaCluster(t, 2)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out", Partitioner: "source", CloudEventsHeaders: true, DropHeaders: true})
	if res := tgt.Deliver(context.Background(), batch.New(sourceRecords("x"), nil)); res.Final() != 1 {
		t.Fatal(res.Err())
	}
	r := readAll(t, c, 1)[0]
	if r.Partition != 1 { // source partition 3 of a 2-partition topic
		t.Errorf("partition %d, want 3 mod 2 = 1", r.Partition)
	}
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	if h["trace"] != "" {
		t.Errorf("dropHeaders kept the source headers: %v", h)
	}
	if h["ce-specversion"] != "1.0" || h["ce-id"] != "in-3-10" || h["ce-subject"] != "x" || h["content-type"] != "application/json" {
		t.Errorf("CloudEvents headers %v", h)
	}
}

func TestKafkaTargetPayloadItems(t *testing.T) {
	c := kafkaCluster(t, 1)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out"})
	b := batch.New(sourceRecords("a", "b"), nil).WithPayload([]byte(`[{"id":1},"plain text"]`))
	if res := tgt.Deliver(context.Background(), b); res.Final() != 2 {
		t.Fatal(res.Err())
	}
	got := readAll(t, c, 2)
	if string(got[0].Value) != `{"id":1}` || string(got[1].Value) != "plain text" {
		t.Errorf("values %q, %q", got[0].Value, got[1].Value)
	}
	if string(got[1].Key) != "b" {
		t.Errorf("item 1 key %q, want its record's", got[1].Key)
	}
}

func TestKafkaTargetOversizedRecordIsPermanent(t *testing.T) {
	c := kafkaCluster(t, 1)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out"})
	recs := sourceRecords("a", "big", "c")
	recs[1].Value = make([]byte, MaxKafkaRecordBytes+1)
	res := tgt.Deliver(context.Background(), batch.New(recs, nil))
	if o := res.At(1); o.Status != batch.Failed || o.Condition != batch.MaximumPayloadSizeExceeded {
		t.Fatalf("oversized record: %+v", o)
	}
	if res.At(0).Status != batch.Delivered || res.At(2).Status != batch.Delivered {
		t.Fatalf("the others: %v %v", res.At(0), res.At(2))
	}
	if n := len(readAll(t, c, 2)); n != 2 {
		t.Fatalf("%d records produced", n)
	}
}

func TestKafkaTargetMissingTopicNamesTheFix(t *testing.T) {
	c := kafkaCluster(t, 1)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "nope", DeliveryTimeoutSeconds: 5})
	res := tgt.Deliver(context.Background(), batch.New(sourceRecords("a"), nil))
	o := res.At(0)
	if o.Status != batch.Failed || !strings.Contains(o.Err.Error(), `"nope" does not exist`) || !batch.TargetUnavailable(o.Err) {
		t.Fatalf("outcome %+v", o)
	}
}

func TestKafkaTargetAtMostOnceDoesNotWait(t *testing.T) {
	c := kafkaCluster(t, 1)
	for _, acks := range []string{"0", "all"} {
		tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out", Delivery: pipe.AtMostOnce, Acks: acks})
		if res := tgt.Deliver(context.Background(), batch.New(sourceRecords("a", "b"), nil)); res.Final() != 2 {
			t.Fatal(res.Err())
		}
		if err := tgt.Close(); err != nil { // flushes
			t.Fatal(err)
		}
	}
	if n := len(readAll(t, c, 4)); n != 4 {
		t.Fatalf("%d records", n)
	}
}

// txnClient is a transaction outside any group, to check that EXACTLY_ONCE
// produces through the batch's transaction only.
type txnClient struct{ cl *kgo.Client }

func (t txnClient) Produce(ctx context.Context, r *kgo.Record, p func(*kgo.Record, error)) {
	t.cl.Produce(ctx, r, p)
}

func TestKafkaTargetExactlyOnceProducesInTheBatchTransaction(t *testing.T) {
	c := kafkaCluster(t, 1)
	tgt := openKafkaTarget(t, c, pipe.KafkaTarget{Topic: "out", Delivery: pipe.ExactlyOnce})
	if res := tgt.Deliver(context.Background(), batch.New(sourceRecords("a"), nil)); res.Final() != 0 || !batch.TargetUnavailable(res.Err()) {
		t.Fatalf("without a transaction: %v", res.Err())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("t1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		b := batch.NewInTxn(sourceRecords("a", "b"), nil, txnClient{cl})
		if res := tgt.Deliver(context.Background(), b); res.Final() != 2 {
			t.Fatal(res.Err())
		}
		if err := cl.EndTransaction(context.Background(), commit); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, c, 2) // read_committed: the aborted two are not seen
	cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	more, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	defer more.Close()
	n := 0
	for cctx.Err() == nil {
		n += more.PollFetches(cctx).NumRecords()
	}
	if len(got) != 2 || n != 2 {
		t.Fatalf("read_committed sees %d records (then %d), want the committed 2", len(got), n)
	}
}

func TestKafkaErrorExplains(t *testing.T) {
	k := &Kafka{spec: pipe.KafkaTarget{Topic: "out"}, timeout: time.Second}
	for err, want := range map[error]string{
		kerr.TopicAuthorizationFailed:           "grant the pipe's principal WRITE",
		kerr.TransactionalIDAuthorizationFailed: "transactional id",
		kgo.ErrRecordTimeout:                    "did not acknowledge within 1s",
	} {
		got := k.explain(err)
		if !strings.Contains(got.Error(), want) || !errors.Is(got, err) {
			t.Errorf("%v: %q, want it to contain %q", err, got, want)
		}
	}
}

// kafkaReceiver is the kafka kind's conformance case: a real broker whose
// topic "out" is read back by a consumer of its own, each record filed
// under the source partition its ce-* headers name, and which refuses
// produce requests (TOPIC_AUTHORIZATION_FAILED) while rcv.refuse is set.
func kafkaReceiver(t *testing.T, rcv *receiver) (pipe.Spec, Env) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !rcv.refuse.Load() {
			return nil, nil, false
		}
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var read atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var topic, part string
				for _, h := range r.Headers {
					switch h.Key {
					case "ce-kafkatopic":
						topic = string(h.Value)
					case "ce-kafkapartition":
						part = string(h.Value)
					}
				}
				rcv.add(topic+"-"+part, string(r.Value))
				read.Add(1)
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	adm := kadm.NewClient(cl)
	rcv.settle = func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ends, err := adm.ListEndOffsets(context.Background(), "out")
			if err == nil {
				if o, ok := ends.Lookup("out", 0); ok && o.Offset == read.Load() {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("the receiver did not read the topic to its end")
	}
	spec := pipe.Spec{Name: "conf", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
		Target: pipe.Target{Kafka: &pipe.KafkaTarget{Topic: "out", CloudEventsHeaders: true, DeliveryTimeoutSeconds: 5}}}
	env := kafkaEnv(c)
	env.Pipe = "conf"
	return spec, env
}
