package event

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FormatCloudEvents is CloudEvents 1.0 in structured batch mode: a JSON
// array of events, sent as application/cloudevents-batch+json. Each
// record is one event:
//
//	id              "<topic>-<partition>-<offset>" (unique per record)
//	source          the MSK cluster ARN, or kafka://<first broker>/<topic>
//	type            "sluice.kafka.record"
//	time            the record's timestamp, RFC 3339 with milliseconds, UTC
//	subject,
//	partitionkey    the record's key when it is UTF-8 (the Kafka protocol
//	                binding's partitionkey); absent otherwise
//	kafkatopic,
//	kafkapartition,
//	kafkaoffset     where the record is, as strings (extension attributes)
//	data            the value when it is JSON (datacontenttype
//	                application/json), null for a tombstone
//	data_base64     the value otherwise
//
// Headers are not carried: CloudEvents extension values are scalars, and a
// Kafka header may repeat and hold bytes. Size encodes the record to know
// its size, so this format costs more per record than the others.
const FormatCloudEvents Format = "cloudevents"

// ContentTypeCloudEventsBatch is the media type of a structured batch.
const ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"

// ContentType is the media type of the encoder's bodies.
func (e *Encoder) ContentType() string {
	if e.format == FormatCloudEvents {
		return ContentTypeCloudEventsBatch
	}
	return "application/json"
}

func newCloudEventsEncoder(src Source) *Encoder {
	source := src.EventSourceARN
	if source == "" {
		broker := ""
		if len(src.BootstrapServers) > 0 {
			broker = src.BootstrapServers[0]
		}
		source = "kafka://" + broker + "/"
	}
	return &Encoder{format: FormatCloudEvents, ceSource: source, ceTopicInSource: src.EventSourceARN == ""}
}

var ceScratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// ceSize is a record's exact size as an event, plus the comma before it.
func (e *Encoder) ceSize(r *kgo.Record) int {
	bp := ceScratch.Get().(*[]byte)
	*bp = e.appendCloudEvent((*bp)[:0], r)
	n := len(*bp) + 1
	ceScratch.Put(bp)
	return n
}

func (e *Encoder) appendCloudEvents(dst []byte, recs []*kgo.Record) []byte {
	dst = append(dst, '[')
	for i, r := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = e.appendCloudEvent(dst, r)
	}
	return append(dst, ']')
}

func (e *Encoder) appendCloudEvent(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `{"specversion":"1.0","id":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst[:len(dst)-1], '-')
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `","source":`...)
	if e.ceTopicInSource {
		dst = appendString(dst, e.ceSource+r.Topic)
	} else {
		dst = appendString(dst, e.ceSource)
	}
	dst = append(dst, `,"type":"sluice.kafka.record","time":"`...)
	dst = r.Timestamp.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","kafkatopic":`...)
	dst = appendString(dst, r.Topic)
	dst = append(dst, `,"kafkapartition":"`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `","kafkaoffset":"`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, '"')
	if r.Key != nil && utf8.Valid(r.Key) {
		dst = append(dst, `,"subject":`...)
		dst = appendString(dst, string(r.Key))
		dst = append(dst, `,"partitionkey":`...)
		dst = appendString(dst, string(r.Key))
	}
	switch {
	case r.Value == nil:
		dst = append(dst, `,"data":null`...)
	case json.Valid(r.Value):
		dst = append(dst, `,"datacontenttype":"application/json","data":`...)
		dst = append(dst, r.Value...)
	default:
		dst = append(dst, `,"data_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Value)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// UseBinaryMode makes a CloudEvents encoder send a batch of a single
// record in binary mode: the record's value is the body and the event's
// attributes are ce-* headers (BinaryHeaders), as CloudEvents' HTTP
// binding defines it. A pipe with batch size 1 uses it.
func (e *Encoder) UseBinaryMode() {
	if e.format == FormatCloudEvents {
		e.ceBinary = true
	}
}

// Binary reports whether a batch of n records goes in binary mode.
func (e *Encoder) Binary(n int) bool { return e.ceBinary && n == 1 }

// BinaryHeaders are the ce-* headers of r in binary mode, and the media
// type of its body: application/json for a JSON value, else
// application/octet-stream.
func (e *Encoder) BinaryHeaders(r *kgo.Record) (headers [][2]string, contentType string) {
	source := e.ceSource
	if e.ceTopicInSource {
		source += r.Topic
	}
	headers = [][2]string{
		{"ce-specversion", "1.0"},
		{"ce-id", r.Topic + "-" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10)},
		{"ce-source", source},
		{"ce-type", "sluice.kafka.record"},
		{"ce-time", r.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00")},
		{"ce-kafkatopic", r.Topic},
		{"ce-kafkapartition", strconv.Itoa(int(r.Partition))},
		{"ce-kafkaoffset", strconv.FormatInt(r.Offset, 10)},
	}
	if r.Key != nil && utf8.Valid(r.Key) && headerSafe(r.Key) {
		headers = append(headers, [2]string{"ce-subject", string(r.Key)}, [2]string{"ce-partitionkey", string(r.Key)})
	}
	contentType = "application/octet-stream"
	if r.Value != nil && json.Valid(r.Value) {
		contentType = "application/json"
	}
	return headers, contentType
}

// headerSafe reports whether b can be an HTTP header value as it is: no
// control characters (a key that has some is left out of the headers).
func headerSafe(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
