package event

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Format is the body a target gets.
type Format string

// Formats.
const (
	// FormatLambda is the Lambda Kafka event: records grouped under
	// "<topic>-<partition>" in one object (the default).
	FormatLambda Format = "lambda"
	// FormatPipes is the EventBridge Pipes event: a flat JSON array of
	// records, each with its source and "eventSourceKey":"<topic>-<p>",
	// as a pipe with a Kafka source sends it.
	FormatPipes Format = "pipes"
)

// Formats lists the formats, for messages.
var Formats = []Format{FormatLambda, FormatPipes, FormatCloudEvents}

// NewFormatEncoder prepares an encoder of format f for batches from src.
func NewFormatEncoder(src Source, f Format) (*Encoder, error) {
	switch f {
	case "", FormatLambda:
		return NewEncoder(src), nil
	case FormatPipes:
		// The example events: a self-managed source names its brokers, an
		// MSK one its cluster ARN.
		b := []byte(`{"eventSource":`)
		b = appendString(b, src.EventSource)
		if src.EventSourceARN != "" {
			b = append(b, `,"eventSourceArn":`...)
			b = appendString(b, src.EventSourceARN)
		} else {
			b = append(b, `,"bootstrapServers":`...)
			servers := ""
			for i, s := range src.BootstrapServers {
				if i > 0 {
					servers += ","
				}
				servers += s
			}
			b = appendString(b, servers)
		}
		b = append(b, `,"eventSourceKey":`...)
		return &Encoder{format: FormatPipes, prefix: b}, nil
	case FormatCloudEvents:
		return newCloudEventsEncoder(src), nil
	}
	return nil, fmt.Errorf("unknown event format %q: use one of %v", f, Formats)
}

// Format is the encoder's format.
func (e *Encoder) Format() Format {
	if e.format == "" {
		return FormatLambda
	}
	return e.format
}

func (e *Encoder) appendPipes(dst []byte, recs []*kgo.Record) []byte {
	dst = append(dst, '[')
	for i, r := range recs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.prefix...)
		// "<topic>-<p>" without building the string: the topic escaped,
		// its closing quote replaced by the partition.
		dst = appendString(dst, r.Topic)
		dst = append(dst[:len(dst)-1], '-')
		dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		dst = append(dst, '"', ',')
		dst = appendFields(dst, r)
	}
	return append(dst, ']')
}
