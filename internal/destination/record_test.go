package destination

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/stage"
)

// statusErr is a target's failure that carries the HTTP status, as the
// HTTP target's errors do.
type statusErr struct{ code int }

func (e *statusErr) Error() string   { return fmt.Sprintf("target answered %d", e.code) }
func (e *statusErr) HTTPStatus() int { return e.code }

var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 123_000_000, time.FixedZone("CEST", 2*3600))

func testMeta() Meta {
	return Meta{
		RequestID:        func() string { return "req-1" },
		FunctionARN:      "arn:aws:lambda:us-east-1:123456789012:function:orders",
		EventSourceARN:   "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc-1",
		BootstrapServers: []string{"b-1:9092", "b-2:9092"},
		Now:              func() time.Time { return fixedNow },
	}
}

// sample is records exercising every encoding corner: a key and value, a
// null key, an empty key, a tombstone, an empty value, binary and repeated
// headers, a log-append timestamp.
func sample(topic string, partition int32) []*kgo.Record {
	ts := func(ms int64) time.Time { return time.UnixMilli(1_700_000_000_000 + ms) }
	logAppend := &kgo.Record{Topic: topic, Partition: partition, Offset: 44, Timestamp: ts(4), Key: []byte("k4"), Value: []byte("v4")}
	logAppend.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{TimestampType: 1})
	return []*kgo.Record{
		{Topic: topic, Partition: partition, Offset: 40, Timestamp: ts(0), Key: []byte("k0"), Value: []byte(`{"id":0,"html":"<&>"}`),
			Headers: []kgo.RecordHeader{{Key: "bin", Value: []byte{0x00, 0x7f, 0x80, 0xff}}, {Key: "dup", Value: []byte("a")}, {Key: "dup", Value: []byte("b")}}},
		{Topic: topic, Partition: partition, Offset: 41, Timestamp: ts(1), Key: nil, Value: []byte("no key")},
		{Topic: topic, Partition: partition, Offset: 42, Timestamp: ts(2), Key: []byte{}, Value: nil},
		{Topic: topic, Partition: partition, Offset: 43, Timestamp: ts(3), Key: []byte("k3"), Value: []byte{}},
		logAppend,
	}
}

// checkEntries asserts that entries are recs, byte for byte, with nil and
// empty kept apart.
func checkEntries(t *testing.T, entries []Entry, recs []*kgo.Record) {
	t.Helper()
	if len(entries) != len(recs) {
		t.Fatalf("got %d entries, want %d", len(entries), len(recs))
	}
	for i, e := range entries {
		r := recs[i]
		if e.Topic != r.Topic || e.Partition != r.Partition || e.Offset != r.Offset {
			t.Errorf("entry %d is %s-%d@%d, want %s-%d@%d", i, e.Topic, e.Partition, e.Offset, r.Topic, r.Partition, r.Offset)
		}
		if !e.Timestamp.Equal(r.Timestamp) {
			t.Errorf("entry %d timestamp %v, want %v", i, e.Timestamp, r.Timestamp)
		}
		if (e.Key == nil) != (r.Key == nil) || !bytes.Equal(e.Key, r.Key) {
			t.Errorf("entry %d key %#v, want %#v", i, e.Key, r.Key)
		}
		if (e.Value == nil) != (r.Value == nil) || !bytes.Equal(e.Value, r.Value) {
			t.Errorf("entry %d value %#v, want %#v", i, e.Value, r.Value)
		}
		if len(e.Headers) != len(r.Headers) {
			t.Errorf("entry %d has %d headers, want %d", i, len(e.Headers), len(r.Headers))
			continue
		}
		for j, h := range e.Headers {
			if h.Key != r.Headers[j].Key || !bytes.Equal(h.Value, r.Headers[j].Value) {
				t.Errorf("entry %d header %d is %q=%v, want %q=%v", i, j, h.Key, h.Value, r.Headers[j].Key, r.Headers[j].Value)
			}
		}
	}
}

func TestNewRecordFields(t *testing.T) {
	recs := sample("orders", 3)
	f := stage.Failure{Topic: "orders", Partition: 3, Records: recs, Condition: batch.RetryAttemptsExhausted,
		Err: fmt.Errorf("attempt 3: %w", &statusErr{502}), Attempts: 3}
	rec, err := NewRecord(f, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	line, err := marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Read back generically, so the test checks the field names on the
	// wire rather than the Go struct tags it would share with the code.
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"requestContext": map[string]any{
			"requestId": "req-1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
			"condition": "RetryAttemptsExhausted", "approximateInvokeCount": float64(3),
		},
		"responseContext": map[string]any{"statusCode": float64(502), "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"version":         "1.0",
		"timestamp":       "2024-05-01T10:00:00.123Z",
		"errorMessage":    "attempt 3: target answered 502",
	}
	for k, v := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	info := got["KafkaBatchInfo"].(map[string]any)
	if info["batchSize"] != float64(5) || info["bootstrapServers"] != "b-1:9092,b-2:9092" || info["eventSourceArn"] != testMeta().EventSourceARN {
		t.Errorf("KafkaBatchInfo = %v", info)
	}
	if _, ok := info["recordInfo"]; ok {
		t.Error("a non-Kafka record has recordInfo")
	}
	if _, ok := got["payload"]; ok {
		t.Error("a non-Kafka record has payload")
	}
	ri := info["recordsInfo"].(map[string]any)["orders-3"].(map[string]any)
	wantRange := map[string]any{
		"firstRecordOffset": "40", "lastRecordOffset": "44",
		"firstRecordTimestamp": "2023-11-14T22:13:20.000Z", "lastRecordTimestamp": "2023-11-14T22:13:20.004Z",
	}
	for k, v := range wantRange {
		if ri[k] != v {
			t.Errorf("recordsInfo[orders-3].%s = %v, want %v", k, ri[k], v)
		}
	}
	// payloadSize is the size of the event the records make.
	if ps := info["payloadSize"].(float64); ps != float64(len(newBuilder(testMeta()).enc.Append(nil, recs))) {
		t.Errorf("payloadSize = %v", ps)
	}
	records := got["records"].([]any)
	if len(records) != len(recs) {
		t.Fatalf("%d records, want %d", len(records), len(recs))
	}
	r0 := records[0].(map[string]any)
	if r0["topic"] != "orders" || r0["offset"] != float64(40) || r0["key"] != "azA=" || r0["timestampType"] != "CREATE_TIME" {
		t.Errorf("records[0] = %v", r0)
	}
	if r4 := records[4].(map[string]any); r4["timestampType"] != "LOG_APPEND_TIME" {
		t.Errorf("records[4] = %v, want its LOG_APPEND_TIME kept", r4)
	}
	if !bytes.Contains(line, []byte(`{"bin":[0,127,-128,-1]}`)) {
		t.Errorf("header bytes are not signed as the reference writes them: %s", line)
	}
	if bytes.Contains(line, []byte(`\u003c`)) {
		t.Errorf("the record is HTML-escaped: %s", line)
	}
}

func TestNewKafkaRecordsFields(t *testing.T) {
	recs := sample("orders", 3)
	f := stage.Failure{Topic: "orders", Partition: 3, Records: recs, Condition: batch.PoisonRecord, Err: &statusErr{400}, Attempts: 1}
	out, err := NewKafkaRecords(f, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(recs) {
		t.Fatalf("%d records, want one per record (%d)", len(out), len(recs))
	}
	for i, rec := range out {
		v, err := marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			RequestContext map[string]any `json:"requestContext"`
			KafkaBatchInfo map[string]any `json:"KafkaBatchInfo"`
			Payload        struct {
				EventSource    string                       `json:"eventSource"`
				EventSourceARN string                       `json:"eventSourceArn"`
				Records        map[string][]json.RawMessage `json:"records"`
			} `json:"payload"`
			Records any `json:"records"`
		}
		if err := json.Unmarshal(v, &got); err != nil {
			t.Fatal(err)
		}
		if got.RequestContext["condition"] != "PoisonRecord" || got.RequestContext["requestId"] != "req-1" {
			t.Errorf("record %d requestContext = %v", i, got.RequestContext)
		}
		ri := got.KafkaBatchInfo["recordInfo"].(map[string]any)
		if ri["offset"] != fmt.Sprint(recs[i].Offset) || ri["topic"] != "orders" || ri["partition"] != float64(3) ||
			ri["timestamp"] != isoTime(recs[i].Timestamp) {
			t.Errorf("record %d recordInfo = %v", i, ri)
		}
		if _, ok := got.KafkaBatchInfo["recordsInfo"]; ok {
			t.Errorf("record %d has recordsInfo", i)
		}
		if got.KafkaBatchInfo["batchSize"] != float64(len(recs)) {
			t.Errorf("record %d batchSize = %v, want the failed batch's %d", i, got.KafkaBatchInfo["batchSize"], len(recs))
		}
		if got.Payload.EventSource != "aws:kafka" || got.Payload.EventSourceARN != testMeta().EventSourceARN || len(got.Payload.Records["orders-3"]) != 1 {
			t.Errorf("record %d payload is not a one-record event: %s", i, v)
		}
		if got.Records != nil {
			t.Errorf("record %d of a Kafka destination has records", i)
		}
		entries, err := DecodeKafka(&kgo.Record{Value: v})
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, entries, recs[i:i+1])
	}
}

func TestResponseContext(t *testing.T) {
	recs := sample("t", 0)[:1]
	for _, tc := range []struct {
		name string
		f    stage.Failure
		want string
	}{
		{"payload size has none", stage.Failure{Condition: batch.MaximumPayloadSizeExceeded, Err: &statusErr{413}}, "null"},
		{"no answer has none", stage.Failure{Condition: batch.RetryAttemptsExhausted, Err: errors.New("dial tcp: connection refused")}, "null"},
		{"status 0 is no answer", stage.Failure{Condition: batch.RetryAttemptsExhausted, Err: &statusErr{0}}, "null"},
		{"age without an error", stage.Failure{Condition: batch.MaximumRecordAgeExceeded}, "null"},
		{"wrapped status", stage.Failure{Condition: batch.MaximumRecordAgeExceeded, Err: fmt.Errorf("x: %w", &statusErr{503})},
			`{"statusCode":503,"executedVersion":"$LATEST","functionError":"Unhandled"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Topic, tc.f.Records = "t", recs
			rec, err := NewRecord(tc.f, testMeta())
			if err != nil {
				t.Fatal(err)
			}
			got, _ := marshal(rec.ResponseContext)
			if string(got) != tc.want {
				t.Errorf("responseContext = %s, want %s", got, tc.want)
			}
			line, _ := marshal(rec)
			if !bytes.Contains(line, []byte(`"responseContext":`+tc.want)) {
				t.Errorf("record does not carry responseContext %s: %s", tc.want, line)
			}
		})
	}
}

func TestMetaDefaults(t *testing.T) {
	f := stage.Failure{Topic: "t", Records: sample("t", 0)[:1], Condition: batch.RetryAttemptsExhausted, Attempts: 2}
	before := time.Now().Add(-time.Second)
	a, err := NewRecord(f, Meta{BootstrapServers: []string{"b:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewRecord(f, Meta{})
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.RequestContext.RequestID) || a.RequestContext.RequestID == b.RequestContext.RequestID {
		t.Errorf("request IDs %q, %q are not distinct random UUIDs", a.RequestContext.RequestID, b.RequestContext.RequestID)
	}
	ts, err := time.Parse(time.RFC3339Nano, a.Timestamp)
	if err != nil || ts.Before(before) || !strings.HasSuffix(a.Timestamp, "Z") {
		t.Errorf("timestamp %q is not now in UTC (%v)", a.Timestamp, err)
	}
	if a.RequestContext.ApproximateInvokeCount != 2 {
		t.Errorf("approximateInvokeCount = %d, want Attempts", a.RequestContext.ApproximateInvokeCount)
	}
	line, _ := marshal(a)
	if bytes.Contains(line, []byte("eventSourceArn")) {
		t.Errorf("a self-managed source has an eventSourceArn: %s", line)
	}
	if _, err := NewRecord(stage.Failure{Topic: "t"}, Meta{}); err == nil {
		t.Error("a failure without records made a record")
	}
}

func TestDecodeLineRoundTrip(t *testing.T) {
	recs := sample("orders", 7)
	rec, err := NewRecord(stage.Failure{Topic: "orders", Partition: 7, Records: recs, Condition: batch.RetryAttemptsExhausted}, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	line, _ := marshal(rec)
	entries, err := DecodeLine(append(line, '\n'))
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, entries, recs)
}

func TestDecodePayloadForms(t *testing.T) {
	// The reference's S3 record: the whole event as a JSON string.
	event := `{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":{` +
		`"pay-1":[{"topic":"pay","partition":1,"offset":9,"timestamp":1700000000009,"timestampType":"CREATE_TIME","value":"eA==","headers":[{"h":[255,1]}]}],` +
		`"pay-0":[{"topic":"pay","partition":0,"offset":5,"timestamp":1700000000005,"timestampType":"CREATE_TIME","key":"aw==","value":null,"headers":[]}]}}`
	s3, _ := json.Marshal(map[string]any{"requestContext": map[string]any{}, "payload": event})
	entries, err := DecodeLine(s3)
	if err != nil {
		t.Fatal(err)
	}
	want := []*kgo.Record{
		{Topic: "pay", Partition: 0, Offset: 5, Timestamp: time.UnixMilli(1700000000005), Key: []byte("k")},
		{Topic: "pay", Partition: 1, Offset: 9, Timestamp: time.UnixMilli(1700000000009), Value: []byte("x"),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{0xff, 0x01}}}},
	}
	checkEntries(t, entries, want)

	// A payload that is a bare record, not an event.
	bare := `{"payload":{"topic":"pay","partition":0,"offset":5,"timestamp":1700000000005,"key":"aw==","value":null}}`
	entries, err = DecodeKafka(&kgo.Record{Value: []byte(bare)})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, entries, want[:1])

	if entries, err := DecodeLine([]byte("  \n")); err != nil || entries != nil {
		t.Errorf("blank line: %v, %v", entries, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"offsets only", `{"requestContext":{},"KafkaBatchInfo":{"recordsInfo":{"t-0":{}}}}`, "only their offsets"},
		{"not JSON", `{"records":[`, "not a failure record"},
		{"no topic", `{"records":[{"partition":0,"offset":1}]}`, "lacks its topic"},
		{"bad base64", `{"records":[{"topic":"t","partition":0,"offset":1,"value":"%%"}]}`, "value"},
		{"header not a byte", `{"records":[{"topic":"t","partition":0,"offset":1,"headers":[{"h":[300]}]}]}`, "300 is not a byte"},
		{"payload neither", `{"payload":{"x":1}}`, "neither a Kafka event nor a record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeLine([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	_, err := DecodeKafka(&kgo.Record{Topic: "dlq", Partition: 2, Offset: 8, Value: []byte("garbage")})
	if err == nil || !strings.Contains(err.Error(), "dlq-2@8") {
		t.Errorf("DecodeKafka error %v does not name the message", err)
	}
}
