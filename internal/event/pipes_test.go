package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pipesWire is the Pipes event as a consumer decodes it with encoding/json.
type pipesWire []struct {
	EventSource      string              `json:"eventSource"`
	EventSourceArn   string              `json:"eventSourceArn"`
	BootstrapServers string              `json:"bootstrapServers"`
	EventSourceKey   string              `json:"eventSourceKey"`
	Topic            string              `json:"topic"`
	Partition        int32               `json:"partition"`
	Offset           int64               `json:"offset"`
	Timestamp        int64               `json:"timestamp"`
	TimestampType    string              `json:"timestampType"`
	Key              *string             `json:"key"`
	Value            *string             `json:"value"`
	Headers          []map[string][]int8 `json:"headers"`
}

func TestPipesGolden(t *testing.T) {
	msk := Source{EventSource: SourceMSK, EventSourceARN: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc-1", BootstrapServers: []string{"b-1.demo:9092"}}
	for _, c := range []struct {
		name string
		src  Source
		recs []*kgo.Record
	}{
		{"pipes_self_managed", selfManaged, []*kgo.Record{
			rec(15, []byte("order-1"), []byte("Hello, this is a test."), kgo.RecordHeader{Key: "headerKey", Value: []byte("headerValue")}),
			rec(16, nil, nil),
		}},
		{"pipes_msk", msk, []*kgo.Record{logAppend(rec(3, []byte("k"), []byte{0xff, 0x00}))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, err := NewFormatEncoder(c.src, FormatPipes)
			if err != nil {
				t.Fatal(err)
			}
			got := enc.Append(nil, c.recs)
			checkGolden(t, c.name, got)
			checkSize(t, enc, c.recs, got)
			var w pipesWire
			if err := json.Unmarshal(got, &w); err != nil || len(w) != len(c.recs) {
				t.Fatalf("decoded %d records, %v", len(w), err)
			}
			for i, r := range c.recs {
				g := w[i]
				if g.EventSource != c.src.EventSource || g.EventSourceKey != "mytopic-0" || g.Topic != r.Topic || g.Offset != r.Offset ||
					g.Timestamp != r.Timestamp.UnixMilli() || (c.src.EventSourceARN == "") != (g.BootstrapServers != "") {
					t.Errorf("record %d decoded as %+v", i, g)
				}
				if (r.Value == nil) != (g.Value == nil) || (g.Value != nil && *g.Value != base64.StdEncoding.EncodeToString(r.Value)) {
					t.Errorf("record %d value %v", i, g.Value)
				}
			}
		})
	}
	if _, err := NewFormatEncoder(selfManaged, "xml"); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

func TestPipesSizeMatchesRandomRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	enc, _ := NewFormatEncoder(selfManaged, FormatPipes)
	for range 300 {
		var recs []*kgo.Record
		p := int32(rng.IntN(2000))
		for j := 0; j < 1+rng.IntN(5); j++ {
			r := &kgo.Record{Topic: "t.\"x\"_y", Partition: p, Offset: rng.Int64N(1 << 50), Timestamp: time.UnixMilli(rng.Int64N(1 << 42))}
			if rng.IntN(3) > 0 {
				r.Key = []byte("key\n\u00e9")
			}
			if rng.IntN(5) > 0 {
				r.Value = bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(100))
			}
			recs = append(recs, r)
		}
		body := enc.Append(nil, recs)
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %s", body)
		}
		checkSize(t, enc, recs, body)
	}
}
