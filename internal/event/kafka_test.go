package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var ts = time.UnixMilli(1545084650987)

func rec(offset int64, key, value []byte, headers ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: "mytopic", Partition: 0, Offset: offset, Timestamp: ts, Key: key, Value: value, Headers: headers}
}

func logAppend(r *kgo.Record) *kgo.Record {
	r.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{TimestampType: 1})
	return r
}

var selfManaged = Source{EventSource: SourceSelfManaged, BootstrapServers: []string{"b-1.example.com:9092", "b-2.example.com:9092"}}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		src  Source
		recs []*kgo.Record
	}{
		{"key_and_value", selfManaged, []*kgo.Record{rec(15, []byte("order-1"), []byte("Hello, this is a test."))}},
		{"null_key", selfManaged, []*kgo.Record{rec(0, nil, []byte(`{"a":1}`))}},
		{"empty_key_and_tombstone", selfManaged, []*kgo.Record{rec(7, []byte{}, nil)}},
		{"binary_headers", selfManaged, []*kgo.Record{rec(3, []byte("k"), []byte("v"),
			kgo.RecordHeader{Key: "headerKey", Value: []byte("headerValue")},
			kgo.RecordHeader{Key: "bin", Value: []byte{0x00, 0x7f, 0x80, 0xff, 0xc3, 0xab}},
			kgo.RecordHeader{Key: "empty", Value: nil},
			kgo.RecordHeader{Key: "quo\"te\n", Value: []byte{1}},
		)}},
		{"several_records", selfManaged, []*kgo.Record{
			rec(100, []byte("a"), []byte("1")), rec(101, nil, []byte("2")), rec(102, []byte("c"), []byte{0xff, 0xfe}),
		}},
		{"log_append_time", selfManaged, []*kgo.Record{logAppend(rec(9, nil, []byte("x")))}},
		{"msk", Source{EventSource: SourceMSK, EventSourceARN: "arn:aws:kafka:sa-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2", BootstrapServers: []string{"b-2.demo:9092", "b-1.demo:9092"}},
			[]*kgo.Record{rec(15, []byte("abc"), []byte("Hello, this is a test."), kgo.RecordHeader{Key: "headerKey", Value: []byte("headerValue")})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := NewEncoder(c.src)
			got := enc.Append(nil, c.recs)
			checkGolden(t, c.name, got)
			checkSize(t, enc, c.recs, got)
			checkDecodes(t, c.src, c.recs, got)
		})
	}
}

// checkSize holds the promise batching relies on: envelope plus the sum of
// record sizes is the body's length, give or take the first record's comma.
func checkSize(t *testing.T, enc *Encoder, recs []*kgo.Record, body []byte) {
	t.Helper()
	want := enc.EnvelopeSize(recs[0].Topic, recs[0].Partition) - 1
	for _, r := range recs {
		want += enc.Size(r)
	}
	if want != len(body) {
		t.Errorf("predicted size %d, encoded %d", want, len(body))
	}
}

// wire is the event as a consumer library declares it, decoded with
// encoding/json: an independent check of the encoder.
type wire struct {
	EventSource      string `json:"eventSource"`
	EventSourceArn   string `json:"eventSourceArn"`
	BootstrapServers string `json:"bootstrapServers"`
	Records          map[string][]struct {
		Topic         string              `json:"topic"`
		Partition     int32               `json:"partition"`
		Offset        int64               `json:"offset"`
		Timestamp     int64               `json:"timestamp"`
		TimestampType string              `json:"timestampType"`
		Key           *string             `json:"key"`
		Value         *string             `json:"value"`
		Headers       []map[string][]int8 `json:"headers"`
	} `json:"records"`
}

func checkDecodes(t *testing.T, src Source, recs []*kgo.Record, body []byte) {
	t.Helper()
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		t.Fatal(err)
	}
	if w.EventSource != src.EventSource || w.EventSourceArn != src.EventSourceARN {
		t.Errorf("source %q/%q", w.EventSource, w.EventSourceArn)
	}
	got := w.Records["mytopic-0"]
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		g := got[i]
		if g.Offset != r.Offset || g.Timestamp != r.Timestamp.UnixMilli() || g.Topic != r.Topic {
			t.Errorf("record %d: %+v", i, g)
		}
		if (g.Key == nil) != (r.Key == nil) || (g.Key != nil && *g.Key != base64.StdEncoding.EncodeToString(r.Key)) {
			t.Errorf("record %d key %v, want %q", i, g.Key, r.Key)
		}
		if (g.Value == nil) != (r.Value == nil) || (g.Value != nil && *g.Value != base64.StdEncoding.EncodeToString(r.Value)) {
			t.Errorf("record %d value %v, want %q", i, g.Value, r.Value)
		}
		for j, h := range r.Headers {
			vals := g.Headers[j][h.Key]
			if len(vals) != len(h.Value) {
				t.Fatalf("header %q: %v", h.Key, vals)
			}
			for k := range vals {
				if byte(vals[k]) != h.Value[k] {
					t.Errorf("header %q byte %d = %d, want %d", h.Key, k, vals[k], int8(h.Value[k]))
				}
			}
		}
	}
}

func TestSizeMatchesRandomRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	enc := NewEncoder(selfManaged)
	for i := 0; i < 500; i++ {
		var recs []*kgo.Record
		for j := 0; j < 1+rng.IntN(5); j++ {
			r := &kgo.Record{Topic: "t.x_y-z", Partition: int32(rng.IntN(1000)), Offset: rng.Int64N(1 << 50), Timestamp: time.UnixMilli(rng.Int64N(1 << 42))}
			if rng.IntN(3) > 0 {
				r.Key = bytesOf(rng.IntN(40))
			}
			if rng.IntN(5) > 0 {
				r.Value = bytesOf(rng.IntN(300))
			}
			for h := 0; h < rng.IntN(4); h++ {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(bytesOf(rng.IntN(8))), Value: bytesOf(rng.IntN(10))})
			}
			r.Partition = 3
			recs = append(recs, r)
		}
		body := enc.Append(nil, recs)
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %s", body)
		}
		checkSize(t, enc, recs, body)
	}
}

func BenchmarkAppend1KB(b *testing.B) {
	enc := NewEncoder(selfManaged)
	recs := make([]*kgo.Record, 100)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "bench", Partition: 1, Offset: int64(i), Timestamp: ts, Key: []byte("key-123"), Value: bytes.Repeat([]byte("x"), 1024)}
	}
	var buf []byte
	b.SetBytes(100 * 1024)
	for b.Loop() {
		buf = enc.Append(buf[:0], recs)
	}
}

// FuzzAppend: any record encodes to valid JSON whose size Size predicts.
func FuzzAppend(f *testing.F) {
	f.Add("t", []byte("k"), []byte("v"), "h", []byte{0xff}, int64(0), int64(1545084650987), false)
	f.Add("a.b_c-d", []byte(nil), []byte(nil), "\"\\\n\u2028\xff", []byte{}, int64(-1), int64(-5), true)
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, hk string, hv []byte, offset, ts int64, nilKey bool) {
		if nilKey {
			key = nil
		}
		r := &kgo.Record{Topic: topic, Partition: 2, Offset: offset, Timestamp: time.UnixMilli(ts), Key: key, Value: value,
			Headers: []kgo.RecordHeader{{Key: hk, Value: hv}}}
		enc := NewEncoder(selfManaged)
		body := enc.Append(nil, []*kgo.Record{r, r})
		if !json.Valid(body) {
			t.Fatalf("invalid JSON: %q", body)
		}
		checkSize(t, enc, []*kgo.Record{r, r}, body)
	})
}

// checkGolden compares body, indented, with testdata/NAME.json (rewritten
// with -update).
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, body)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/event -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("golden mismatch for %s:\ngot:\n%s\nwant:\n%s", path, pretty.Bytes(), want)
	}
}
