// Package destination delivers the records a pipe gave up on to its failure
// destination (a Kafka topic, an HTTP endpoint or a file), written as the
// reference platform writes its on-failure records, so that tools built for
// those records read Sluice's too. It also decodes them again, for
// `sluice pipes redrive`.
//
// A failure record for a non-Kafka destination (File, HTTP) describes one
// stage.Failure, as the reference's SQS/SNS record does:
//
//	{"requestContext":{"requestId":"…","functionArn":"…",
//	   "condition":"RetryAttemptsExhausted","approximateInvokeCount":3},
//	 "responseContext":{"statusCode":500,"executedVersion":"$LATEST",
//	   "functionError":"Unhandled"},
//	 "version":"1.0","timestamp":"2024-05-01T12:00:00.000Z",
//	 "KafkaBatchInfo":{"batchSize":2,"eventSourceArn":"…",
//	   "bootstrapServers":"b1:9092,b2:9092","payloadSize":612,
//	   "recordsInfo":{"orders-0":{"firstRecordOffset":"15",
//	     "lastRecordOffset":"16","firstRecordTimestamp":"…",
//	     "lastRecordTimestamp":"…"}}},
//	 "records":[{"topic":"orders","partition":0,"offset":15,…},…],
//	 "errorMessage":"target answered 500 Internal Server Error"}
//
// "records" and "errorMessage" are Sluice's: the reference's record only
// points at the offsets, which the source topic may have deleted by the time
// someone looks, so Sluice carries the records themselves (each as the
// reference's Kafka event encodes a record) and says why they failed.
//
// A Kafka destination gets one message per failed record, as the
// reference's Kafka destination does: KafkaBatchInfo describes the failed
// batch but has "recordInfo" (this record's offset and timestamp, and, as
// Sluice adds, its topic and partition) instead of "recordsInfo", and
// "payload" is the reference's Kafka event holding just that record.
package destination

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/stage"
)

// Version is the failure record format's version, as the reference writes it.
const Version = "1.0"

// FunctionErrorUnhandled is the reference's functionError for a function
// that failed; Sluice's targets have no other kind.
const FunctionErrorUnhandled = "Unhandled"

// ExecutedVersion is what responseContext.executedVersion says. The
// reference names the function version that ran; Sluice always delivers to
// its target unqualified, which the reference calls "$LATEST".
const ExecutedVersion = "$LATEST"

// HTTPStatuser is an error that carries the HTTP status its target
// answered with (the HTTP target's errors do). A Failure whose Err has one
// in its chain (found with errors.As) gets a responseContext with that
// statusCode; a status of 0 means no answer came, as when the target was
// unreachable, and leaves responseContext null.
type HTTPStatuser interface{ HTTPStatus() int }

// Meta is what a failure record says about the pipe besides the failure.
type Meta struct {
	// RequestID returns the ID of a failed delivery; nil makes a random
	// UUID. All the records of one Failure share one ID, as the records of
	// one failed invocation do in the reference.
	RequestID func() string
	// FunctionARN names the target: a Lambda ARN, a URL or a function
	// name. It is written as requestContext.functionArn.
	FunctionARN string
	// EventSourceARN is the source MSK cluster's ARN, empty for a
	// self-managed cluster (which also makes the payload's eventSource
	// "SelfManagedKafka" rather than "aws:kafka").
	EventSourceARN string
	// BootstrapServers of the source cluster, written comma-separated.
	BootstrapServers []string
	// Now is the clock for the record's timestamp; nil is time.Now.
	Now func() time.Time
}

// Record is one failure record.
type Record struct {
	RequestContext RequestContext `json:"requestContext"`
	// ResponseContext is nil (null) when no answer came back: always for
	// MaximumPayloadSizeExceeded, which was never sent, and when the
	// target could not be reached.
	ResponseContext *ResponseContext `json:"responseContext"`
	Version         string           `json:"version"`
	// Timestamp is when the record was written, ISO-8601 in UTC.
	Timestamp      string    `json:"timestamp"`
	KafkaBatchInfo BatchInfo `json:"KafkaBatchInfo"`
	// Payload, on a Kafka destination's message, is the reference's Kafka
	// event with just this message's record.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Records, on a non-Kafka destination's record, are the failed
	// records, each as the reference's Kafka event encodes one. Sluice's
	// own field.
	Records []json.RawMessage `json:"records,omitempty"`
	// ErrorMessage is the last attempt's failure. Sluice's own field.
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// RequestContext says which delivery failed and why.
type RequestContext struct {
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	// Condition is one of the batch package's Conditions.
	Condition batch.Condition `json:"condition"`
	// ApproximateInvokeCount is how many times the records were tried.
	ApproximateInvokeCount int `json:"approximateInvokeCount"`
}

// ResponseContext is what the target answered the last attempt with.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion"`
	FunctionError   string `json:"functionError"`
}

// BatchInfo describes the failed batch. Offsets are strings, as the
// reference writes them.
type BatchInfo struct {
	// BatchSize is the number of records that failed together.
	BatchSize      int    `json:"batchSize"`
	EventSourceARN string `json:"eventSourceArn,omitempty"`
	// BootstrapServers is comma-separated.
	BootstrapServers string `json:"bootstrapServers"`
	// PayloadSize is the size in bytes of the failed records as the
	// target's event would carry them.
	PayloadSize int `json:"payloadSize"`
	// RecordsInfo, on a non-Kafka destination's record, is keyed by
	// "topic-partition".
	RecordsInfo map[string]RangeInfo `json:"recordsInfo,omitempty"`
	// RecordInfo, on a Kafka destination's message, is its record.
	RecordInfo *RecordInfo `json:"recordInfo,omitempty"`
}

// RangeInfo is the run of one partition's failed records.
type RangeInfo struct {
	FirstRecordOffset    string `json:"firstRecordOffset"`
	LastRecordOffset     string `json:"lastRecordOffset"`
	FirstRecordTimestamp string `json:"firstRecordTimestamp"`
	LastRecordTimestamp  string `json:"lastRecordTimestamp"`
}

// RecordInfo is the one record a Kafka destination's message is about.
// Topic and Partition are Sluice's: with only the offset, a message could
// not be traced back to its source partition.
type RecordInfo struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    string `json:"offset"`
	Timestamp string `json:"timestamp"`
}

// NewRecord is the failure record of f for a non-Kafka destination: one
// record for all of f's records.
func NewRecord(f stage.Failure, m Meta) (*Record, error) {
	return newBuilder(m).batch(f)
}

// NewKafkaRecords are the failure records of f for a Kafka destination:
// one for each of f's records, in order.
func NewKafkaRecords(f stage.Failure, m Meta) ([]*Record, error) {
	return newBuilder(m).each(f)
}

// builder makes the records of one destination; the encoder is made once,
// since the source is the same for every failure.
type builder struct {
	meta Meta
	enc  *event.Encoder
}

func newBuilder(m Meta) *builder {
	if m.RequestID == nil {
		m.RequestID = newUUID
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	src := event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: m.BootstrapServers}
	if m.EventSourceARN != "" {
		src.EventSource, src.EventSourceARN = event.SourceMSK, m.EventSourceARN
	}
	return &builder{meta: m, enc: event.NewEncoder(src)}
}

// common is the part of f's records that is the same for all of them.
func (b *builder) common(f stage.Failure, payloadSize int) Record {
	r := Record{
		RequestContext: RequestContext{
			RequestID:              b.meta.RequestID(),
			FunctionARN:            b.meta.FunctionARN,
			Condition:              f.Condition,
			ApproximateInvokeCount: f.Attempts,
		},
		ResponseContext: responseContext(f),
		Version:         Version,
		Timestamp:       isoTime(b.meta.Now()),
		KafkaBatchInfo: BatchInfo{
			BatchSize:        len(f.Records),
			EventSourceARN:   b.meta.EventSourceARN,
			BootstrapServers: strings.Join(b.meta.BootstrapServers, ","),
			PayloadSize:      payloadSize,
		},
	}
	if f.Err != nil {
		r.ErrorMessage = f.Err.Error()
	}
	return r
}

func (b *builder) batch(f stage.Failure) (*Record, error) {
	if len(f.Records) == 0 {
		return nil, errors.New("failure has no records")
	}
	body := b.enc.Append(nil, f.Records)
	recs, err := eventRecords(body)
	if err != nil {
		return nil, err
	}
	r := b.common(f, len(body))
	first, last := f.Records[0], f.Records[len(f.Records)-1]
	r.KafkaBatchInfo.RecordsInfo = map[string]RangeInfo{
		f.Topic + "-" + strconv.Itoa(int(f.Partition)): {
			FirstRecordOffset:    strconv.FormatInt(first.Offset, 10),
			LastRecordOffset:     strconv.FormatInt(last.Offset, 10),
			FirstRecordTimestamp: isoTime(first.Timestamp),
			LastRecordTimestamp:  isoTime(last.Timestamp),
		},
	}
	r.Records = recs
	return &r, nil
}

func (b *builder) each(f stage.Failure) ([]*Record, error) {
	if len(f.Records) == 0 {
		return nil, errors.New("failure has no records")
	}
	// The batch's size, as its event would carry it, like the non-Kafka
	// record's: KafkaBatchInfo is about the failed batch.
	r := b.common(f, len(b.enc.Append(nil, f.Records)))
	out := make([]*Record, len(f.Records))
	for i, rec := range f.Records {
		c := r
		c.KafkaBatchInfo.RecordInfo = &RecordInfo{
			Topic:     f.Topic,
			Partition: f.Partition,
			Offset:    strconv.FormatInt(rec.Offset, 10),
			Timestamp: isoTime(rec.Timestamp),
		}
		c.Payload = b.enc.Append(nil, f.Records[i:i+1])
		out[i] = &c
	}
	return out, nil
}

// eventRecords splits an encoded event into its records, each as the event
// encodes it: the package event writes the format, so this reads it back
// rather than knowing its layout.
func eventRecords(body []byte) ([]json.RawMessage, error) {
	var ev struct {
		Records map[string][]json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("cannot read back the encoded records: %w", err)
	}
	var out []json.RawMessage
	for _, recs := range ev.Records { // one partition: one key
		out = append(out, recs...)
	}
	return out, nil
}

func responseContext(f stage.Failure) *ResponseContext {
	if f.Condition == batch.MaximumPayloadSizeExceeded {
		return nil // never sent, so nothing answered
	}
	var hs HTTPStatuser
	if errors.As(f.Err, &hs) {
		if code := hs.HTTPStatus(); code != 0 {
			return &ResponseContext{StatusCode: code, ExecutedVersion: ExecutedVersion, FunctionError: FunctionErrorUnhandled}
		}
	}
	return nil
}

// isoTime is t as the reference writes timestamps: ISO-8601, UTC, in
// milliseconds.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails; see crypto/rand.Read
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// marshal is v's JSON without HTML escaping, which would rewrite the
// records' bytes (they are JSON already, not HTML) and without the newline
// json.Encoder ends with.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot encode the failure record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Entry is one original record recovered from a failure record, to be
// produced again.
type Entry struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	// Key is nil when the record had none, and empty (not nil) when it
	// had an empty one.
	Key []byte
	// Value is nil for a tombstone, and empty (not nil) for an empty value.
	Value   []byte
	Headers []kgo.RecordHeader
}

// DecodeKafka recovers the original records from a message of a Kafka
// failure destination: Sluice's, or the reference's, whose payload is the
// same. It reads the payload, not the message's key and headers, which
// carry Sluice's headers besides the originals.
func DecodeKafka(r *kgo.Record) ([]Entry, error) {
	entries, err := decodeRecord(r.Value)
	if err != nil {
		return nil, fmt.Errorf("message %s-%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return entries, nil
}

// DecodeLine recovers the original records from one line of a file
// destination (or one record an HTTP destination received). A blank line
// has none. A record with a "payload" (the reference's S3 record, whose
// payload is the event as a JSON string, or a Kafka destination's message)
// is read too.
func DecodeLine(line []byte) ([]Entry, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil, nil
	}
	return decodeRecord(line)
}

func decodeRecord(b []byte) ([]Entry, error) {
	var r struct {
		Payload json.RawMessage   `json:"payload"`
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("not a failure record: %w", err)
	}
	if len(r.Records) > 0 {
		out := make([]Entry, 0, len(r.Records))
		for i, raw := range r.Records {
			e, err := decodeEventRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("records[%d]: %w", i, err)
			}
			out = append(out, e)
		}
		return out, nil
	}
	if len(r.Payload) > 0 && !bytes.Equal(r.Payload, []byte("null")) {
		out, err := decodePayload(r.Payload)
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		return out, nil
	}
	return nil, errors.New("failure record holds no records, only their offsets (KafkaBatchInfo.recordsInfo): read them from the source topic while it still has them")
}

// decodePayload reads a payload: the reference's Kafka event, that event as
// a JSON string (as the reference writes it to S3), or a single record.
func decodePayload(b []byte) ([]Entry, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		return decodePayload([]byte(s))
	}
	var ev struct {
		Records map[string][]json.RawMessage `json:"records"`
		Topic   *string                      `json:"topic"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, err
	}
	if ev.Records == nil {
		if ev.Topic == nil {
			return nil, errors.New("neither a Kafka event nor a record")
		}
		e, err := decodeEventRecord(b)
		if err != nil {
			return nil, err
		}
		return []Entry{e}, nil
	}
	// Map order is random; partitions in name order keep redrives
	// repeatable.
	keys := make([]string, 0, len(ev.Records))
	for k := range ev.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Entry
	for _, k := range keys {
		for i, raw := range ev.Records[k] {
			e, err := decodeEventRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("records[%q][%d]: %w", k, i, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// decodeEventRecord reads one record as the reference's Kafka event encodes
// it (see package event).
func decodeEventRecord(b []byte) (Entry, error) {
	var r struct {
		Topic     string   `json:"topic"`
		Partition *int32   `json:"partition"`
		Offset    *int64   `json:"offset"`
		Timestamp int64    `json:"timestamp"`
		Key       *string  `json:"key"`
		Value     *string  `json:"value"`
		Headers   []header `json:"headers"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Entry{}, err
	}
	if r.Topic == "" || r.Partition == nil || r.Offset == nil {
		return Entry{}, errors.New("record lacks its topic, partition or offset")
	}
	e := Entry{Topic: r.Topic, Partition: *r.Partition, Offset: *r.Offset, Timestamp: time.UnixMilli(r.Timestamp)}
	var err error
	if e.Key, err = decodeBase64(r.Key); err != nil {
		return Entry{}, fmt.Errorf("key: %w", err)
	}
	if e.Value, err = decodeBase64(r.Value); err != nil {
		return Entry{}, fmt.Errorf("value: %w", err)
	}
	for _, h := range r.Headers {
		e.Headers = append(e.Headers, h...)
	}
	return e, nil
}

// decodeBase64 keeps null (nil) apart from "" (empty, not nil).
func decodeBase64(s *string) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// header is one element of an event record's headers: an object whose keys
// are header names and whose values are arrays of bytes, signed as the
// reference writes them (0xFF is -1). Its keys are read in order, since a
// record may repeat a header.
type header []kgo.RecordHeader

func (h *header) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("header is not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var ints []int
		if err := dec.Decode(&ints); err != nil {
			return fmt.Errorf("header %q: %w", name, err)
		}
		v := make([]byte, len(ints))
		for i, n := range ints {
			// Signed, as written; unsigned too, as other writers do.
			if n < -128 || n > 255 {
				return fmt.Errorf("header %q: %d is not a byte", name, n)
			}
			v[i] = byte(n)
		}
		*h = append(*h, kgo.RecordHeader{Key: name, Value: v})
	}
	return nil
}
