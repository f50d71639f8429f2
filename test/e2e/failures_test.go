package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The tests here set up failure handling as a Lambda user would, with the
// AWS CLI: an on-failure Kafka destination with retry limits and
// bisection, and partial batch responses. The target is an HTTP server
// written here from the reference's event format alone, and the
// dead-lettered record is read back with kafka-python.

// wireEvent is the reference Kafka event as a handler written from its
// documentation decodes it.
type wireEvent struct {
	EventSource string `json:"eventSource"`
	Records     map[string][]struct {
		Topic     string              `json:"topic"`
		Partition int32               `json:"partition"`
		Offset    int64               `json:"offset"`
		Key       *string             `json:"key"`
		Value     *string             `json:"value"`
		Headers   []map[string][]int8 `json:"headers"`
	} `json:"records"`
}

// delivered is one record of a delivery as the target decoded it.
type delivered struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
}

// failTarget is the test's HTTP target. For each delivery it asks answer
// what to do with the records of one partition (in offset order): the
// status to answer, an optional partial batch response item, and how many
// of the records (from the first) it took. It keeps every delivery and,
// in order, every record it took.
type failTarget struct {
	topic  string
	answer func(recs []delivered) (status int, failures []map[string]any, took int)

	mu         sync.Mutex
	deliveries [][]delivered // every delivery, each one partition's records
	accepted   []delivered
	malformed  []string
}

func (f *failTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev wireEvent
	problem := ""
	if err := json.Unmarshal(body, &ev); err != nil {
		problem = fmt.Sprintf("not a Kafka event: %v: %s", err, body)
	} else if ev.EventSource != "SelfManagedKafka" {
		problem = fmt.Sprintf("eventSource %q, want SelfManagedKafka", ev.EventSource)
	}
	parts := map[string][]delivered{}
	for k, recs := range ev.Records {
		for _, w := range recs {
			if want := fmt.Sprintf("%s-%d", w.Topic, w.Partition); k != want || w.Topic != f.topic {
				problem = fmt.Sprintf("record of %s filed under %q", want, k)
			}
			d := delivered{Partition: w.Partition, Offset: w.Offset}
			for _, s := range []struct {
				in  *string
				out *string
			}{{w.Key, &d.Key}, {w.Value, &d.Value}} {
				if s.in == nil {
					continue
				}
				b, err := base64.StdEncoding.DecodeString(*s.in)
				if err != nil {
					problem = fmt.Sprintf("%s offset %d: not base64: %q", k, w.Offset, *s.in)
				}
				*s.out = string(b)
			}
			if n := len(parts[k]); n > 0 && parts[k][n-1].Offset >= d.Offset {
				problem = fmt.Sprintf("%s: offset %d after %d in one batch", k, d.Offset, parts[k][n-1].Offset)
			}
			parts[k] = append(parts[k], d)
		}
	}
	if len(parts) == 0 && problem == "" {
		problem = fmt.Sprintf("an event without records: %s", body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if problem != "" {
		f.malformed = append(f.malformed, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	var failures []map[string]any
	var took []delivered
	for _, recs := range parts {
		f.deliveries = append(f.deliveries, recs)
		st, fails, n := f.answer(recs)
		if st != http.StatusOK {
			status = st
		}
		failures = append(failures, fails...)
		took = append(took, recs[:n]...)
	}
	if status != http.StatusOK {
		http.Error(w, "cannot process this batch", status)
		return
	}
	f.accepted = append(f.accepted, took...)
	w.Header().Set("Content-Type", "application/json")
	if failures == nil {
		failures = []map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"batchItemFailures": failures})
}

// snapshot returns copies of the deliveries, the accepted records and the
// malformed deliveries.
func (f *failTarget) snapshot() (deliveries [][]delivered, accepted []delivered, malformed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]delivered(nil), f.deliveries...), append([]delivered(nil), f.accepted...), append([]string(nil), f.malformed...)
}

// checkAccepted says what is wrong with accepted, the records a target
// took in order, given each partition's record count and offsets that must
// never be taken: each other offset taken at least once, none of skip,
// and the first acceptances of each partition in offset order.
func checkAccepted(accepted []delivered, counts map[int32]int64, skip map[int32]int64) []string {
	var problems []string
	seen := map[int32]map[int64]bool{}
	last := map[int32]int64{}
	for _, r := range accepted {
		if o, ok := skip[r.Partition]; ok && o == r.Offset {
			problems = append(problems, fmt.Sprintf("partition %d offset %d (%q) was accepted", r.Partition, r.Offset, r.Value))
			continue
		}
		if seen[r.Partition] == nil {
			seen[r.Partition] = map[int64]bool{}
			last[r.Partition] = -1
		}
		if seen[r.Partition][r.Offset] {
			continue
		}
		seen[r.Partition][r.Offset] = true
		if r.Offset < last[r.Partition] {
			problems = append(problems, fmt.Sprintf("partition %d: first acceptance of offset %d after that of %d", r.Partition, r.Offset, last[r.Partition]))
		}
		last[r.Partition] = r.Offset
	}
	for p, n := range counts {
		missing := 0
		first := int64(-1)
		for o := int64(0); o < n; o++ {
			if s, ok := skip[p]; ok && s == o {
				continue
			}
			if !seen[p][o] {
				if first < 0 {
					first = o
				}
				missing++
			}
		}
		if missing > 0 {
			problems = append(problems, fmt.Sprintf("partition %d: %d records never accepted (first offset %d)", p, missing, first))
		}
	}
	return problems
}

// poll is waitFor that returns whether cond came true in time instead of
// failing, so the checks after it can say what was missing.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// awsForFailures is the AWS CLI v2, checked as TestAWSCLIManagesEventSourceMappings checks it.
func awsForFailures(t *testing.T) string {
	t.Helper()
	bin := need(t, "/usr/bin/aws")
	if v, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(v), "aws-cli/2.") {
		t.Fatalf("/usr/bin/aws is not the AWS CLI v2 (Debian's awscli): %q %v", v, err)
	}
	return bin
}

// createTopics creates topics with the given partition counts on broker.
func createTopics(t *testing.T, broker string, topics map[string]int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, parts := range topics {
		resp, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
}

// produceOrders produces perPartition keyed records to each partition of
// topic, record i of partition p keyed "order-p-i" with value
// "order-p-i", except those in special, which are produced as given.
func produceOrders(t *testing.T, broker, topic string, parts int32, perPartition int, special map[int32]map[int]*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < perPartition; i++ {
			r := special[p][i]
			if r == nil {
				s := fmt.Sprintf("order-%d-%d", p, i)
				r = &kgo.Record{Key: []byte(s), Value: []byte(s)}
			}
			r.Topic, r.Partition = topic, p
			recs = append(recs, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedAtEnd says whether group's commits on topic reached the end of
// each of its parts partitions.
func committedAtEnd(t *testing.T, broker, topic, group string, parts int) bool {
	t.Helper()
	end, committed := offsets(t, broker, topic, group)
	if len(end) != parts {
		return false
	}
	for p, e := range end {
		if committed[p] != e {
			return false
		}
	}
	return true
}

// total is the sum of a topic's end offsets: its record count.
func total(end map[int32]int64) int64 {
	var n int64
	for _, e := range end {
		n += e
	}
	return n
}

// needKafkaPython returns /usr/bin/python3 if kafka-python imports in it,
// and skips the test if not (a failure in CI), as
// TestDevWithThirdPartyProducers does.
func needKafkaPython(t *testing.T) string {
	t.Helper()
	python := need(t, "/usr/bin/python3")
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kafka-python is required in CI: %v", err)
		}
		t.Skip("kafka-python not installed")
	}
	return python
}

// dlqMessage is a message of a Kafka failure destination as the
// kafka-python script prints it.
type dlqMessage struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"` // base64
	Value     string      `json:"value"`
	Headers   [][2]string `json:"headers"` // name, base64 value
}

// readTopicWithKafkaPython reads every message of topic's partitions from
// the beginning with kafka-python, without a group.
func readTopicWithKafkaPython(t *testing.T, python, broker, topic string) []dlqMessage {
	t.Helper()
	script := fmt.Sprintf(`
import base64, json, time
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=%q, group_id=None, enable_auto_commit=False,
                  auto_offset_reset="earliest", consumer_timeout_ms=3000)
parts = None
deadline = time.time() + 20
while not parts and time.time() < deadline:
    parts = c.partitions_for_topic(%q)
    if not parts:
        c.topics()
        time.sleep(0.2)
tps = [TopicPartition(%q, p) for p in sorted(parts)]
c.assign(tps)
c.seek_to_beginning(*tps)
out = []
for m in c:
    out.append({
        "partition": m.partition, "offset": m.offset,
        "key": None if m.key is None else base64.b64encode(m.key).decode(),
        "value": m.value.decode(),
        "headers": [[k, base64.b64encode(v).decode()] for k, v in m.headers],
    })
c.close()
print(json.dumps(out))
`, broker, topic, topic)
	cmd := exec.Command(python, "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "UnsupportedCodecError") {
			t.Fatalf("kafka-python cannot read %s: its messages are compressed with a codec it has no library for "+
				"(kafka-python reads only gzip without extra modules): %v\n%s", topic, err, stderr.String())
		}
		t.Fatalf("kafka-python consumer: %v\n%s", err, stderr.String())
	}
	var msgs []dlqMessage
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatalf("kafka-python consumer printed %q: %v\n%s", out, err, stderr.String())
	}
	return msgs
}

// TestAWSCLIFailureDestinationIsolatesPoison: a mapping created with the
// AWS CLI with an on-failure Kafka destination, two retries and
// bisection, on a target that fails every batch holding one poison
// record. Bisection delivers every other record, in order; the poison
// record alone reaches the destination, as the reference's Kafka
// destination writes it; and the partition moves past it.
func TestAWSCLIFailureDestinationIsolatesPoison(t *testing.T) {
	bin := awsForFailures(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := awsCLI{t: t, bin: bin, api: d.API}

	const parts, perPartition = 2, 100
	const poisonPart, poisonOffset = int32(1), 57
	createTopics(t, d.kafka, map[string]int32{"orders": parts, "dlq": 1})
	poison := &kgo.Record{Key: []byte("poison-key"), Value: []byte("POISON"),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-57")}}}
	produceOrders(t, d.kafka, "orders", parts, perPartition, map[int32]map[int]*kgo.Record{poisonPart: {poisonOffset: poison}})

	var fixed atomic.Bool // the target learns to take the poison record, for the redrive
	tgt := &failTarget{topic: "orders", answer: func(recs []delivered) (int, []map[string]any, int) {
		for _, r := range recs {
			if r.Value == "POISON" && !fixed.Load() {
				return http.StatusInternalServerError, nil, 0
			}
		}
		return http.StatusOK, nil, len(recs)
	}}
	srv := httptest.NewServer(tgt)
	defer srv.Close()

	source := fmt.Sprintf(`{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["%s"]}}`, d.kafka)
	created := aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--self-managed-event-source", source, "--starting-position", "TRIM_HORIZON",
		"--destination-config", `{"OnFailure":{"Destination":"kafka://dlq"}}`,
		"--maximum-retry-attempts", "2", "--bisect-batch-on-function-error", "--batch-size", "10",
		"--maximum-batching-window-in-seconds", "0")
	id, _ := created["UUID"].(string)
	if len(id) != 36 {
		t.Fatalf("create printed %v", created)
	}
	got := aws.ok("get-event-source-mapping", "--uuid", id)
	if dc, _ := json.Marshal(got["DestinationConfig"]); string(dc) != `{"OnFailure":{"Destination":"kafka://dlq"}}` {
		t.Fatalf("get-event-source-mapping printed DestinationConfig %s, want kafka://dlq as created: %v", dc, got)
	}
	if got["MaximumRetryAttempts"] != 2.0 || got["BisectBatchOnFunctionError"] != true || got["BatchSize"] != 10.0 {
		t.Fatalf("get-event-source-mapping printed MaximumRetryAttempts %v, BisectBatchOnFunctionError %v, BatchSize %v; want 2, true, 10",
			got["MaximumRetryAttempts"], got["BisectBatchOnFunctionError"], got["BatchSize"])
	}
	kafkaConfig, _ := got["SelfManagedKafkaEventSourceConfig"].(map[string]any)
	group, _ := kafkaConfig["ConsumerGroupId"].(string)
	if group == "" {
		t.Fatalf("get-event-source-mapping printed no ConsumerGroupId: %v", got)
	}

	counts := map[int32]int64{0: perPartition, 1: perPartition}
	skip := map[int32]int64{poisonPart: poisonOffset}
	settled := poll(45*time.Second, func() bool {
		_, accepted, _ := tgt.snapshot()
		return len(checkAccepted(accepted, counts, skip)) == 0 && committedAtEnd(t, d.kafka, "orders", group, parts)
	})
	deliveries, accepted, malformed := tgt.snapshot()
	if len(malformed) > 0 {
		t.Fatalf("the target got deliveries not in the reference's format: %q", malformed)
	}
	if problems := checkAccepted(accepted, counts, skip); len(problems) > 0 {
		t.Fatalf("after 45 s, accepted records:\n  %s", strings.Join(problems, "\n  "))
	}
	if !settled {
		end, committed := offsets(t, d.kafka, "orders", group)
		t.Fatalf("after 45 s, the group's commits on orders are %v, want the end offsets %v", committed, end)
	}
	// Bisection got the poison record alone, and it was tried 1 + 2 times
	// so.
	alone, withPoison := 0, 0
	for _, recs := range deliveries {
		for _, r := range recs {
			if r.Value == "POISON" {
				withPoison++
				if len(recs) == 1 {
					alone++
				}
				if r.Partition != poisonPart || r.Offset != poisonOffset || r.Key != "poison-key" {
					t.Fatalf("the poison record arrived as partition %d offset %d key %q", r.Partition, r.Offset, r.Key)
				}
			}
		}
	}
	if alone < 3 {
		t.Fatalf("the poison record was delivered alone %d times (in %d deliveries in all); with bisection and 2 retries, want at least 3", alone, withPoison)
	}

	// Exactly one message on the destination topic, counted by the broker.
	// It was produced before the poison record's offset was committed.
	if end, _ := offsets(t, d.kafka, "dlq", ""); total(end) != 1 {
		t.Fatalf("dlq holds %d messages, want 1 (the poison record)", total(end))
	}
	if r := aws.ok("get-event-source-mapping", "--uuid", id); r["State"] != "Enabled" {
		t.Fatalf("the mapping is %v after dead-lettering, want Enabled: %v", r["State"], r)
	}

	// The message as a consumer nobody here wrote reads it.
	python := needKafkaPython(t)
	msgs := readTopicWithKafkaPython(t, python, d.kafka, "dlq")
	if len(msgs) != 1 {
		t.Fatalf("kafka-python read %d messages from dlq, want 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.Key == nil || *m.Key != base64.StdEncoding.EncodeToString([]byte("poison-key")) {
		t.Fatalf("the dlq message's key is %v (base64), want the poison record's key %q", m.Key, "poison-key")
	}
	t.Logf("the dead-lettered message: key %s, headers %v, value %s", *m.Key, m.Headers, m.Value)
	headers := map[string][]string{}
	for _, h := range m.Headers {
		v, err := base64.StdEncoding.DecodeString(h[1])
		if err != nil {
			t.Fatal(err)
		}
		headers[h[0]] = append(headers[h[0]], string(v))
	}
	wantSource := fmt.Sprintf("orders-%d@%d", poisonPart, poisonOffset)
	if fmt.Sprint(headers["trace"]) != "[t-57]" || fmt.Sprint(headers["sluice-condition"]) != "[RetryAttemptsExhausted]" ||
		fmt.Sprint(headers["sluice-source"]) != "["+wantSource+"]" {
		t.Fatalf("the dlq message's headers are %v; want the original trace=t-57, sluice-condition=RetryAttemptsExhausted, sluice-source=%s", headers, wantSource)
	}
	var rec struct {
		RequestContext struct {
			Condition              string `json:"condition"`
			FunctionArn            string `json:"functionArn"`
			ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		} `json:"requestContext"`
		ResponseContext *struct {
			StatusCode    int    `json:"statusCode"`
			FunctionError string `json:"functionError"`
		} `json:"responseContext"`
		Version        string `json:"version"`
		KafkaBatchInfo struct {
			BatchSize        int    `json:"batchSize"`
			BootstrapServers string `json:"bootstrapServers"`
			RecordInfo       *struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Offset    string `json:"offset"`
			} `json:"recordInfo"`
		} `json:"KafkaBatchInfo"`
		Payload *wireEvent `json:"payload"`
	}
	if err := json.Unmarshal([]byte(m.Value), &rec); err != nil {
		t.Fatalf("the dlq message's value is not JSON: %v\n%s", err, m.Value)
	}
	rc := rec.RequestContext
	if rc.Condition != "RetryAttemptsExhausted" || rc.ApproximateInvokeCount < 3 || rc.FunctionArn != srv.URL+"/" {
		t.Fatalf("requestContext is %+v; want condition RetryAttemptsExhausted, approximateInvokeCount at least 3, functionArn %s/\n%s", rc, srv.URL, m.Value)
	}
	if rec.ResponseContext == nil || rec.ResponseContext.StatusCode != 500 || rec.ResponseContext.FunctionError != "Unhandled" {
		t.Fatalf("responseContext is %+v, want statusCode 500 and functionError Unhandled\n%s", rec.ResponseContext, m.Value)
	}
	bi := rec.KafkaBatchInfo
	if rec.Version != "1.0" || bi.BatchSize != 1 || bi.BootstrapServers != d.kafka || bi.RecordInfo == nil ||
		bi.RecordInfo.Topic != "orders" || bi.RecordInfo.Partition != poisonPart || bi.RecordInfo.Offset != fmt.Sprint(poisonOffset) {
		t.Fatalf("version %q, KafkaBatchInfo %+v (recordInfo %+v); want version 1.0, batchSize 1, bootstrapServers %s, recordInfo orders/%d/%d\n%s",
			rec.Version, bi, bi.RecordInfo, d.kafka, poisonPart, poisonOffset, m.Value)
	}
	if rec.Payload == nil {
		t.Fatalf("the dlq message has no payload:\n%s", m.Value)
	}
	pl := rec.Payload.Records[fmt.Sprintf("orders-%d", poisonPart)]
	if rec.Payload.EventSource != "SelfManagedKafka" || len(rec.Payload.Records) != 1 || len(pl) != 1 ||
		pl[0].Topic != "orders" || pl[0].Partition != poisonPart || pl[0].Offset != poisonOffset ||
		pl[0].Key == nil || *pl[0].Key != base64.StdEncoding.EncodeToString([]byte("poison-key")) ||
		pl[0].Value == nil || *pl[0].Value != base64.StdEncoding.EncodeToString([]byte("POISON")) {
		t.Fatalf("the payload is not the reference's event of the poison record alone:\n%s", m.Value)
	}

	// Once the target is fixed, `sluice pipes redrive` delivers the
	// dead-lettered record once; a second redrive finds nothing left.
	var name string
	for _, line := range strings.Split(d.CLI("pipes", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "esm-") {
			name = f[0]
		}
	}
	if name == "" {
		t.Fatalf("pipes list shows no pipe of the mapping:\n%s", d.CLI("pipes", "list"))
	}
	if out := d.CLI("pipes", "redrive", name, "--dry-run"); !strings.Contains(out, "A redrive would deliver 1 records from kafka://dlq") ||
		!strings.Contains(out, fmt.Sprintf("orders-%d: 1 records, offsets %d–%d", poisonPart, poisonOffset, poisonOffset)) {
		t.Fatalf("redrive --dry-run printed:\n%s", out)
	}
	fixed.Store(true)
	if out := d.CLI("pipes", "redrive", name); !strings.Contains(out, "Redrove 1 records from kafka://dlq") {
		t.Fatalf("redrive printed:\n%s", out)
	}
	if out := d.CLI("pipes", "redrive", name); !strings.Contains(out, "Nothing to redrive in kafka://dlq") {
		t.Fatalf("a second redrive printed:\n%s", out)
	}
	_, accepted, _ = tgt.snapshot()
	n := 0
	for _, r := range accepted {
		if r.Value == "POISON" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("after two redrives the target took the poison record %d times, want once", n)
	}
	aws.ok("delete-event-source-mapping", "--uuid", id)
	d.Signal(syscall.SIGTERM)
}

// TestAWSCLIReportBatchItemFailures: a mapping created with the AWS CLI
// with --function-response-types ReportBatchItemFailures, on a target that
// reports one record of each partition failed the first time it sees it.
// Each reported record is delivered again, the delivery after the report
// starts at it, every record is accepted with first acceptances in offset
// order, and nothing reaches the failure destination.
func TestAWSCLIReportBatchItemFailures(t *testing.T) {
	bin := awsForFailures(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := awsCLI{t: t, bin: bin, api: d.API}

	const parts, perPartition = 2, 100
	report := map[int32]int64{0: 33, 1: 71}
	createTopics(t, d.kafka, map[string]int32{"orders": parts, "dlq": 1})
	produceOrders(t, d.kafka, "orders", parts, perPartition, nil)

	reported := map[int32]bool{}
	// afterReport is the first offset of each partition's next delivery
	// after its report (-1 until there is one).
	afterReport := map[int32]int64{0: -1, 1: -1}
	tgt := &failTarget{topic: "orders"}
	tgt.answer = func(recs []delivered) (int, []map[string]any, int) {
		p := recs[0].Partition
		if reported[p] && afterReport[p] < 0 {
			afterReport[p] = recs[0].Offset
		}
		for i, r := range recs {
			if r.Offset == report[p] && !reported[p] {
				reported[p] = true
				// The records after it are taken again from it on, as the
				// reference retries from the first failed offset.
				return http.StatusOK, []map[string]any{{"itemIdentifier": map[string]any{
					"partition": fmt.Sprintf("orders-%d", p), "offset": r.Offset}}}, i
			}
		}
		return http.StatusOK, nil, len(recs)
	}
	srv := httptest.NewServer(tgt)
	defer srv.Close()

	source := fmt.Sprintf(`{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["%s"]}}`, d.kafka)
	created := aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--self-managed-event-source", source, "--starting-position", "TRIM_HORIZON",
		"--function-response-types", "ReportBatchItemFailures", "--batch-size", "10",
		"--destination-config", `{"OnFailure":{"Destination":"kafka://dlq"}}`,
		"--maximum-batching-window-in-seconds", "0")
	id, _ := created["UUID"].(string)
	if len(id) != 36 {
		t.Fatalf("create printed %v", created)
	}
	got := aws.ok("get-event-source-mapping", "--uuid", id)
	if rt, _ := json.Marshal(got["FunctionResponseTypes"]); string(rt) != `["ReportBatchItemFailures"]` {
		t.Fatalf("get-event-source-mapping printed FunctionResponseTypes %s, want [\"ReportBatchItemFailures\"]: %v", rt, got)
	}
	if dc, _ := json.Marshal(got["DestinationConfig"]); string(dc) != `{"OnFailure":{"Destination":"kafka://dlq"}}` {
		t.Fatalf("get-event-source-mapping printed DestinationConfig %s: %v", dc, got)
	}
	kafkaConfig, _ := got["SelfManagedKafkaEventSourceConfig"].(map[string]any)
	group, _ := kafkaConfig["ConsumerGroupId"].(string)
	if group == "" {
		t.Fatalf("get-event-source-mapping printed no ConsumerGroupId: %v", got)
	}

	counts := map[int32]int64{0: perPartition, 1: perPartition}
	settled := poll(45*time.Second, func() bool {
		_, accepted, _ := tgt.snapshot()
		return len(checkAccepted(accepted, counts, nil)) == 0 && committedAtEnd(t, d.kafka, "orders", group, parts)
	})
	deliveries, accepted, malformed := tgt.snapshot()
	if len(malformed) > 0 {
		t.Fatalf("the target got deliveries not in the reference's format: %q", malformed)
	}
	if problems := checkAccepted(accepted, counts, nil); len(problems) > 0 {
		t.Fatalf("after 45 s, accepted records:\n  %s", strings.Join(problems, "\n  "))
	}
	if !settled {
		end, committed := offsets(t, d.kafka, "orders", group)
		t.Fatalf("after 45 s, the group's commits on orders are %v, want the end offsets %v", committed, end)
	}
	seen := map[int32]int{}
	for _, recs := range deliveries {
		for _, r := range recs {
			if r.Offset == report[r.Partition] {
				seen[r.Partition]++
				if want := fmt.Sprintf("order-%d-%d", r.Partition, r.Offset); r.Key != want || r.Value != want {
					t.Fatalf("partition %d offset %d arrived as key %q value %q", r.Partition, r.Offset, r.Key, r.Value)
				}
			}
		}
	}
	tgt.mu.Lock()
	starts := fmt.Sprint(afterReport)
	tgt.mu.Unlock()
	for p, o := range report {
		if seen[p] < 2 {
			t.Fatalf("partition %d offset %d, reported failed, was delivered %d times, want at least 2", p, o, seen[p])
		}
	}
	if want := fmt.Sprint(report); starts != want {
		t.Fatalf("the deliveries after the reports started at offsets %s, want the reported ones %s", starts, want)
	}

	// Nothing gave up: the destination topic stays empty.
	if end, _ := offsets(t, d.kafka, "dlq", ""); total(end) != 0 {
		t.Fatalf("dlq holds %d messages, want none: every reported record was delivered on its retry", total(end))
	}
	aws.ok("delete-event-source-mapping", "--uuid", id)
	d.Signal(syscall.SIGTERM)
}
