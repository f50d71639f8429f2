package destination

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/stage"
)

func newCluster(t *testing.T, partitions int32) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// consume reads n records of topic from the start.
func consume(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func headerValues(r *kgo.Record, key string) []string {
	var vs []string
	for _, h := range r.Headers {
		if h.Key == key {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

func TestKafkaProducesOneMessagePerRecord(t *testing.T) {
	c := newCluster(t, 1)
	meta := testMeta()
	d, err := NewKafka("dlq", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, meta)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	recs := sample("orders", 4)
	f := stage.Failure{Topic: "orders", Partition: 4, Records: recs, Condition: batch.MaximumRecordAgeExceeded, Err: &statusErr{503}, Attempts: 2}
	before := time.Now().Truncate(time.Millisecond)
	if err := d.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got := consume(t, c, "dlq", len(recs))
	if len(got) != len(recs) {
		t.Fatalf("%d messages, want %d", len(got), len(recs))
	}
	for i, m := range got { // one partition: in order
		orig := recs[i]
		if (m.Key == nil) != (orig.Key == nil) || !bytes.Equal(m.Key, orig.Key) {
			t.Errorf("message %d key %#v, want the original %#v", i, m.Key, orig.Key)
		}
		if n := len(m.Headers); n != len(orig.Headers)+2 {
			t.Errorf("message %d has %d headers, want the %d originals and 2 of Sluice's", i, n, len(orig.Headers))
		} else {
			for j, h := range orig.Headers {
				if m.Headers[j].Key != h.Key || !bytes.Equal(m.Headers[j].Value, h.Value) {
					t.Errorf("message %d header %d is %q=%v, want the original %q=%v", i, j, m.Headers[j].Key, m.Headers[j].Value, h.Key, h.Value)
				}
			}
		}
		if v := headerValues(m, HeaderCondition); len(v) != 1 || v[0] != "MaximumRecordAgeExceeded" {
			t.Errorf("message %d %s = %v", i, HeaderCondition, v)
		}
		if v := headerValues(m, HeaderSource); len(v) != 1 || v[0] != "orders-4@"+itoa(orig.Offset) {
			t.Errorf("message %d %s = %v", i, HeaderSource, v)
		}
		if m.Timestamp.Before(before) || m.Timestamp.After(after) {
			t.Errorf("message %d timestamp %v, want when it was produced, not the original %v", i, m.Timestamp, orig.Timestamp)
		}

		var value map[string]any
		if err := json.Unmarshal(m.Value, &value); err != nil {
			t.Fatalf("message %d value is not JSON: %v", i, err)
		}
		rc := value["requestContext"].(map[string]any)
		if rc["condition"] != "MaximumRecordAgeExceeded" || rc["approximateInvokeCount"] != float64(2) || rc["functionArn"] != meta.FunctionARN {
			t.Errorf("message %d requestContext = %v", i, rc)
		}
		if resp := value["responseContext"].(map[string]any); resp["statusCode"] != float64(503) {
			t.Errorf("message %d responseContext = %v", i, resp)
		}
		if value["version"] != "1.0" || value["timestamp"] != isoTime(fixedNow) {
			t.Errorf("message %d version %v, timestamp %v", i, value["version"], value["timestamp"])
		}
		info := value["KafkaBatchInfo"].(map[string]any)
		ri := info["recordInfo"].(map[string]any)
		if ri["offset"] != itoa(orig.Offset) || ri["timestamp"] != isoTime(orig.Timestamp) || ri["topic"] != "orders" || ri["partition"] != float64(4) {
			t.Errorf("message %d recordInfo = %v", i, ri)
		}
		if info["bootstrapServers"] != "b-1:9092,b-2:9092" || info["batchSize"] != float64(len(recs)) {
			t.Errorf("message %d KafkaBatchInfo = %v", i, info)
		}
		payload := value["payload"].(map[string]any)
		if payload["eventSource"] != "aws:kafka" || len(payload["records"].(map[string]any)["orders-4"].([]any)) != 1 {
			t.Errorf("message %d payload = %v", i, payload)
		}

		entries, err := DecodeKafka(m)
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, entries, recs[i:i+1])
	}
}

func TestKafkaKeyedRecordsShareAPartition(t *testing.T) {
	c := newCluster(t, 8)
	d, err := NewKafka("dlq", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, &kgo.Record{Topic: "src", Offset: int64(i), Key: []byte("same-key"), Value: []byte{byte(i)}})
	}
	if err := d.Send(context.Background(), stage.Failure{Topic: "src", Records: recs, Condition: batch.RetryAttemptsExhausted}); err != nil {
		t.Fatal(err)
	}
	got := consume(t, c, "dlq", len(recs))
	for i, m := range got {
		if m.Partition != got[0].Partition {
			t.Fatalf("message %d of one key went to partition %d, the first to %d", i, m.Partition, got[0].Partition)
		}
		entries, err := DecodeKafka(m)
		if err != nil {
			t.Fatal(err)
		}
		if entries[0].Offset != int64(i) {
			t.Errorf("message %d holds offset %d: one key's failures are out of order", i, entries[0].Offset)
		}
	}
}

func TestKafkaMissingTopic(t *testing.T) {
	c := newCluster(t, 1)
	d, err := NewKafka("no-such-topic", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = d.Send(ctx, stage.Failure{Topic: "orders", Records: sample("orders", 0)[:2], Condition: batch.RetryAttemptsExhausted})
	if err == nil {
		t.Fatal("producing to a missing topic succeeded")
	}
	msg := err.Error()
	for _, want := range []string{`"no-such-topic" does not exist`, "--create --topic no-such-topic", "UNKNOWN_TOPIC_OR_PARTITION", "2 of 2 records"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}

func TestKafkaDeliveryIsBounded(t *testing.T) {
	c := newCluster(t, 1)
	addrs := c.ListenAddrs()
	d, err := NewKafka("dlq", []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordDeliveryTimeout(time.Second)}, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c.Close() // the cluster goes away: nothing can acknowledge
	done := make(chan error, 1)
	go func() {
		done <- d.Send(context.Background(), stage.Failure{Topic: "orders", Records: sample("orders", 0)[:1], Condition: batch.RetryAttemptsExhausted})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `topic "dlq"`) {
			t.Errorf("error %v, want one naming the topic", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send hangs with the cluster gone")
	}
}

func TestKafkaCloseAndContext(t *testing.T) {
	c := newCluster(t, 1)
	d, err := NewKafka("dlq", []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	f := stage.Failure{Topic: "orders", Records: sample("orders", 0)[:1], Condition: batch.PoisonRecord}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Send(ctx, f); err == nil {
		t.Error("Send with a canceled context succeeded")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), f); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Send after Close: %v, want an error saying it is closed", err)
	}
	if _, err := NewKafka("", nil, Meta{}); err == nil {
		t.Error("NewKafka without a topic succeeded")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
