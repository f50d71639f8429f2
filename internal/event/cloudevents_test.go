package event

import (
	"encoding/json"
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
	checkGolden(t, "cloudevents_batch", got)
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
