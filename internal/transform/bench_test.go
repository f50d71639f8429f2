package transform

import (
	"testing"
	"time"
)

// value200 is a 200-byte JSON order, the size of a typical Kafka event.
const value200 = `{"orderId":"o-7f3a9c2e","customer":{"id":"c-1029","tier":"gold"},"amount":129.95,"currency":"EUR","items":[{"sku":"A-100","qty":2},{"sku":"B-220","qty":1}],"paid":true,"ts":"2024-03-05T07:08:09.123Z"}`

const benchTemplate = `{
  "id": <$.value.orderId>,
  "customer": <$.value.customer.id>,
  "amount": <$.value.amount>,
  "skus": <$.value.items[*].sku>,
  "where": "<$.topic>/<$.partition>@<$.offset>",
  "pipe": <aws.pipes.pipe-name>,
  "at": <aws.pipes.event.ingestion-time>
}`

func benchEvent(b *testing.B) []byte {
	if len(value200) != 200 {
		b.Fatalf("value is %d bytes", len(value200))
	}
	return RecordEvent(nil, Record{
		EventSource: "aws:kafka", EventSourceARN: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc-1",
		Topic: "orders", Partition: 3, Offset: 1234567, Timestamp: 1709622489000,
		Key: []byte("c-1029"), Value: []byte(value200),
		Headers: []Header{{Key: "trace", Value: []byte("0af7651916cd43dd")}},
	})
}

func benchApply(b *testing.B, tmpl string) {
	ev := benchEvent(b)
	tp, err := Compile(tmpl)
	if err != nil {
		b.Fatal(err)
	}
	v := Vars{PipeName: "orders-pipe", IngestionTime: time.Unix(1709622489, 0)}
	dst := make([]byte, 0, 1024)
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	for b.Loop() {
		if dst, err = tp.Apply(dst[:0], ev, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply200B: a JSON template with seven variables, one a
// wildcard, over a record with a 200-byte JSON value.
func BenchmarkApply200B(b *testing.B) { benchApply(b, benchTemplate) }

// BenchmarkApply200BWrap: the documented way to pass the payload on.
func BenchmarkApply200BWrap(b *testing.B) { benchApply(b, `{"data": <$.value>}`) }

// BenchmarkRecordEvent200B: building the event, which parses the value.
func BenchmarkRecordEvent200B(b *testing.B) {
	rec := Record{
		EventSource: "aws:kafka", EventSourceARN: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc-1",
		Topic: "orders", Partition: 3, Offset: 1234567, Timestamp: 1709622489000,
		Key: []byte("c-1029"), Value: []byte(value200),
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = RecordEvent(dst[:0], rec)
	}
}
