package event

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCloudEventsGolden(t *testing.T) {
	enc, err := NewFormatEncoder(selfManaged, FormatCloudEvents)
	if err != nil {
		t.Fatal(err)
	}
	if enc.ContentType() != ContentTypeCloudEventsBatch {
		t.Fatalf("content type %q", enc.ContentType())
	}
	recs := []*kgo.Record{
		rec(15, []byte("order-1"), []byte(`{"status":"shipped","amount":42.5}`)),
		rec(16, []byte{0xff}, []byte("not json")),
		rec(17, nil, nil),
	}
	got := enc.Append(nil, recs)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", "cloudevents_batch.json")
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
		t.Errorf("golden mismatch:\ngot:\n%s\nwant:\n%s", pretty.Bytes(), want)
	}
	checkSize(t, enc, recs, got)
	// What a CloudEvents SDK requires of each event.
	var evs []map[string]any
	if err := json.Unmarshal(got, &evs); err != nil || len(evs) != 3 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for i, ev := range evs {
		for _, k := range []string{"specversion", "id", "source", "type"} {
			if s, _ := ev[k].(string); s == "" {
				t.Errorf("event %d lacks %s", i, k)
			}
		}
	}
	if evs[0]["data"].(map[string]any)["status"] != "shipped" || evs[1]["data_base64"] != "bm90IGpzb24=" || evs[2]["data"] != nil {
		t.Errorf("data: %v / %v / %v", evs[0]["data"], evs[1]["data_base64"], evs[2]["data"])
	}
}
