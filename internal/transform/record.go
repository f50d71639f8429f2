package transform

import (
	"strconv"

	"github.com/sluice-dev/sluice/internal/jsonstr"
)

// Record is one Kafka record and where it came from, as RecordEvent needs
// it. Key and Value nil are Kafka nulls.
type Record struct {
	// EventSource is "aws:kafka" (MSK) or "SelfManagedKafka".
	EventSource string
	// EventSourceARN is the MSK cluster ARN; when empty the event names
	// BootstrapServers instead, as a self-managed source's does.
	EventSourceARN   string
	BootstrapServers []string
	Topic            string
	Partition        int32
	Offset           int64
	Timestamp        int64  // milliseconds since the Unix epoch
	TimestampType    string // "CREATE_TIME" (the default when empty) or "LOG_APPEND_TIME"
	Key, Value       []byte
	Headers          []Header
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// RecordEvent appends the event a template sees for rec: the EventBridge
// Pipes Kafka record object, field for field as the event package's
// "pipes" format writes it (key and value base64, a null key omitted, a
// null value null, header values arrays of signed bytes), except that
// per the documented implicit body data parsing ("Amazon MSK – key and
// value", "Self managed Apache Kafka – key and value") a key or value that
// is JSON is embedded as that JSON, so <$.value.orderId> works.
//
// What counts as JSON is a choice: an object, array, number or boolean
// (RFC 8259, UTF-8). A payload that is a bare JSON string or the word
// null stays base64, so that a string in the event always means base64
// and null always means a Kafka null; otherwise <aws.pipes.event> could
// not give back the original bytes, nor <aws.pipes.event.json> tell a
// JSON payload from a binary one.
func RecordEvent(dst []byte, rec Record) []byte {
	dst = append(dst, `{"eventSource":`...)
	dst = appendString(dst, rec.EventSource)
	if rec.EventSourceARN != "" {
		dst = append(dst, `,"eventSourceArn":`...)
		dst = appendString(dst, rec.EventSourceARN)
	} else {
		dst = append(dst, `,"bootstrapServers":"`...)
		for i, s := range rec.BootstrapServers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendStringContent(dst, s)
		}
		dst = append(dst, '"')
	}
	dst = append(dst, `,"eventSourceKey":"`...)
	dst = appendStringContent(dst, rec.Topic)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(rec.Partition), 10)
	dst = append(dst, `","topic":`...)
	dst = appendString(dst, rec.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(rec.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, rec.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, rec.Timestamp, 10)
	dst = append(dst, `,"timestampType":`...)
	tt := rec.TimestampType
	if tt == "" {
		tt = "CREATE_TIME"
	}
	dst = appendString(dst, tt)
	if rec.Key != nil {
		dst = append(dst, `,"key":`...)
		dst = appendPayload(dst, rec.Key)
	}
	dst = append(dst, `,"value":`...)
	if rec.Value == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendPayload(dst, rec.Value)
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range rec.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.AppendHeader(dst, h.Key, h.Value)
	}
	return append(dst, ']', '}')
}

// appendPayload writes a key or value: its JSON trimmed of surrounding
// whitespace when it parses as described at RecordEvent, else a base64
// string.
func appendPayload(dst, b []byte) []byte {
	if j, ok := payloadJSON(b); ok {
		return append(dst, j...)
	}
	dst = append(dst, '"')
	dst = appendBase64(dst, b)
	return append(dst, '"')
}

func payloadJSON(b []byte) ([]byte, bool) {
	i := skipWS(b, 0)
	if i == len(b) || b[i] == '"' || b[i] == 'n' {
		return nil, false
	}
	if off, _ := validate(b); off >= 0 {
		return nil, false
	}
	j := len(b)
	for isSpace(b[j-1]) {
		j--
	}
	return b[i:j], true
}
