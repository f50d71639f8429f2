// Package event encodes batches of Kafka records into the bodies Sluice
// delivers, and decodes the responses targets send back.
//
// The default format is the reference platform's Kafka event, byte-for-byte
// compatible with what its runtimes and libraries already parse:
//
//	{"eventSource":"SelfManagedKafka","bootstrapServers":"b1:9092,b2:9092",
//	 "records":{"orders-0":[{"topic":"orders","partition":0,"offset":15,
//	   "timestamp":1545084650987,"timestampType":"CREATE_TIME",
//	   "key":"a2V5","value":"dmFsdWU=","headers":[{"h":[104,-1]}]}]}}
//
// Keys and values are standard base64. A null key is omitted; a null value
// (a tombstone) is written as null so it differs from an empty value. Header
// values are JSON arrays of signed bytes (-128..127), as the reference's Java
// runtime writes them: 0xFF is -1.
//
// The encoder appends to a caller's buffer with no reflection, because it
// runs once per record on the hot path; Size gives the exact number of bytes
// a record adds, so batches can be cut before they pass the payload limit
// without encoding twice.
package event

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/jsonstr"
)

// Event sources, as the reference names them.
const (
	SourceMSK         = "aws:kafka"
	SourceSelfManaged = "SelfManagedKafka"
)

// Source describes where a batch came from; it is the same for every batch
// of a pipe, so its encoded form is computed once.
type Source struct {
	// EventSource is SourceMSK or SourceSelfManaged.
	EventSource string
	// EventSourceARN is the MSK cluster ARN; omitted when empty.
	EventSourceARN string
	// BootstrapServers is written comma-separated.
	BootstrapServers []string
}

// Encoder writes one partition's batch in a Format: by default the
// reference Kafka event.
type Encoder struct {
	format Format
	prefix []byte // lambda: {"eventSource":…,"records":{   pipes: {"eventSource":…,"eventSourceKey":
	// ceSource is the CloudEvents source, to which the topic is added
	// when ceTopicInSource (see cloudevents.go).
	ceSource        string
	ceTopicInSource bool
	// ceBinary sends a batch of one record in CloudEvents binary mode.
	ceBinary bool
}

// NewEncoder prepares an encoder of the Lambda Kafka event for batches
// from src.
func NewEncoder(src Source) *Encoder {
	b := []byte(`{"eventSource":`)
	b = appendString(b, src.EventSource)
	if src.EventSourceARN != "" {
		b = append(b, `,"eventSourceArn":`...)
		b = appendString(b, src.EventSourceARN)
	}
	b = append(b, `,"bootstrapServers":`...)
	servers := ""
	for i, s := range src.BootstrapServers {
		if i > 0 {
			servers += ","
		}
		servers += s
	}
	b = appendString(b, servers)
	b = append(b, `,"records":{`...)
	return &Encoder{prefix: b}
}

// EnvelopeSize is the number of bytes of a batch body besides its records:
// everything Append writes for a batch of topic/partition except what Size
// counts per record.
func (e *Encoder) EnvelopeSize(topic string, partition int32) int {
	if e.format == FormatPipes || e.format == FormatCloudEvents {
		return 2 // [ ]
	}
	// prefix + "topic-p":[ + ]}}
	return len(e.prefix) + stringSize(topic+"-"+strconv.Itoa(int(partition))) + 2 + 3
}

// Size is the exact number of bytes rec adds to a batch body, including the
// comma that separates it from the record before it (every record but the
// first has one; Size counts it for all, so a cut is conservative by one
// byte at most).
func (e *Encoder) Size(rec *kgo.Record) int {
	if e.format == FormatCloudEvents {
		return e.ceSize(rec)
	}
	n := len(`,{"topic":,"partition":,"offset":,"timestamp":,"timestampType":,"value":,"headers":[]}`)
	if e.format == FormatPipes {
		// The record's own envelope and eventSourceKey "topic-p" before
		// its fields, in place of the lambda record's "{".
		n += len(e.prefix) - 1 + stringSize(rec.Topic) + 1 + intSize(int64(rec.Partition)) + 1
	}
	n += stringSize(rec.Topic)
	n += intSize(int64(rec.Partition)) + intSize(rec.Offset) + intSize(rec.Timestamp.UnixMilli())
	n += len(timestampType(rec)) + 2
	if rec.Key != nil {
		n += len(`,"key":""`) + base64.StdEncoding.EncodedLen(len(rec.Key))
	}
	if rec.Value == nil {
		n += len("null")
	} else {
		n += 2 + base64.StdEncoding.EncodedLen(len(rec.Value))
	}
	for i, h := range rec.Headers {
		if i > 0 {
			n++ // comma
		}
		n += len(`{:[]}`) + stringSize(h.Key)
		for j, c := range h.Value {
			if j > 0 {
				n++
			}
			n += intSize(int64(int8(c)))
		}
	}
	return n
}

// Append writes the event for recs, which must all be of one topic and
// partition, in offset order, and returns the extended buffer.
func (e *Encoder) Append(dst []byte, recs []*kgo.Record) []byte {
	switch e.format {
	case FormatPipes:
		return e.appendPipes(dst, recs)
	case FormatCloudEvents:
		return e.appendCloudEvents(dst, recs)
	}
	dst = append(dst, e.prefix...)
	if len(recs) > 0 {
		dst = appendString(dst, recs[0].Topic+"-"+strconv.Itoa(int(recs[0].Partition)))
		dst = append(dst, ':', '[')
		for i, r := range recs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRecord(dst, r)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}', '}')
}

func appendRecord(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, '{')
	return appendFields(dst, r)
}

// appendFields writes a record's fields and its closing brace.
func appendFields(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `"topic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"timestampType":"`...)
	dst = append(dst, timestampType(r)...)
	dst = append(dst, '"')
	if r.Key != nil {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Key)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"value":`...)
	if r.Value == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, r.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.AppendHeader(dst, h.Key, h.Value)
	}
	return append(dst, ']', '}')
}

// timestampType names the record's timestamp type as Kafka's Java client
// does.
func timestampType(r *kgo.Record) string {
	if r.Attrs.TimestampType() == 1 {
		return "LOG_APPEND_TIME"
	}
	return "CREATE_TIME"
}

func intSize(v int64) int {
	n := 1
	if v < 0 {
		n++
		v = -v
	}
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string (see AppendStringContent).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = jsonstr.AppendContent(dst, s)
	return append(dst, '"')
}

// stringSize is len(appendString(nil, s)) without the allocation when s
// needs no escaping, which is the common case for topics and header keys.
func stringSize(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return len(appendString(nil, s))
		}
	}
	return len(s) + 2
}
