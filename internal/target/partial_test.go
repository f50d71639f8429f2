package target

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
)

// The reference's partial batch response, from a real HTTP server: the
// records before the first failed one are delivered, the named ones fail
// (poison ones with their condition), the others after the first failure
// are delivered again; a body naming no record of the batch, or not a
// response at all, fails the whole batch; empty, null and an empty list
// are success.
func TestHTTPPartialBatchResponse(t *testing.T) {
	var answer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, ReportBatchItemFailures: true})
	const (
		D = batch.Delivered
		F = batch.Failed
		P = batch.Pending
	)
	for _, c := range []struct {
		name, body string
		want       []batch.Status
		poison     int // index of the record with PoisonRecord, or -1
		whole      string
	}{
		{"empty", ``, []batch.Status{D, D, D, D}, -1, ""},
		{"null", `null`, []batch.Status{D, D, D, D}, -1, ""},
		{"empty list", `{"batchItemFailures":[]}`, []batch.Status{D, D, D, D}, -1, ""},
		{"one failed", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":12}}]}`, []batch.Status{D, D, F, P}, -1, ""},
		{"string offset", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":"11"}}]}`, []batch.Status{D, F, P, P}, -1, ""},
		{"two failed", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":13}},{"itemIdentifier":{"partition":"t-0","offset":11}}]}`, []batch.Status{D, F, P, F}, -1, ""},
		{"poison", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":12},"poison":true}]}`, []batch.Status{D, D, F, P}, 2, ""},
		{"unknown offset", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":99}}]}`, []batch.Status{F, F, F, F}, -1, "not in the batch"},
		{"unknown partition", `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":11}}]}`, []batch.Status{F, F, F, F}, -1, "not in the batch"},
		{"not a response", `{"batchItemFailures":"all"}`, []batch.Status{F, F, F, F}, -1, "not a partial batch response"},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer = c.body
			r := h.Deliver(context.Background(), batchOf(records("t", 0, 10, 4, 10)))
			for i, want := range c.want {
				o := r.At(i)
				if o.Status != want {
					t.Fatalf("record %d is %s, want %s (result %v)", i, o.Status, want, o)
				}
				if (i == c.poison) != (o.Condition == batch.PoisonRecord) {
					t.Fatalf("record %d has condition %q", i, o.Condition)
				}
			}
			if c.whole != "" && !strings.Contains(ProblemOf(r.Err()), c.whole) {
				t.Fatalf("problem %q, want it to say %q", ProblemOf(r.Err()), c.whole)
			}
		})
	}
}

// Without ReportBatchItemFailures the body is not read: a 2xx is success.
func TestHTTPIgnoresBodyWithoutPartialResponses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":10}}]}`))
	}))
	t.Cleanup(srv.Close)
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL})
	if r := h.Deliver(context.Background(), batchOf(records("t", 0, 10, 2, 10))); r.Count(batch.Delivered) != 2 {
		t.Fatalf("result %+v, want both delivered", r)
	}
}

// CloudEvents binary mode: a batch of one record is its value as the body
// and its attributes as ce-* headers.
func TestHTTPCloudEventsBinaryMode(t *testing.T) {
	var body string
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body, hdr = string(b), r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	enc, err := event.NewFormatEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}}, event.FormatCloudEvents)
	if err != nil {
		t.Fatal(err)
	}
	enc.UseBinaryMode()
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, Encoder: enc})
	recs := records("t", 2, 41, 1, 0)
	recs[0].Key, recs[0].Value = []byte("order-7"), []byte(`{"a":1}`)
	if r := h.Deliver(context.Background(), batchOf(recs)); r.Count(batch.Delivered) != 1 {
		t.Fatalf("result %+v", r.At(0))
	}
	if body != `{"a":1}` || hdr.Get("Content-Type") != "application/json" || hdr.Get("Ce-Id") != "t-2-41" || hdr.Get("Ce-Specversion") != "1.0" ||
		hdr.Get("Ce-Source") != "kafka://b:9092/t" || hdr.Get("Ce-Subject") != "order-7" {
		t.Fatalf("body %q, headers %v", body, hdr)
	}
	// Two records: the structured batch.
	if r := h.Deliver(context.Background(), batchOf(records("t", 2, 50, 2, 5))); r.Count(batch.Delivered) != 2 {
		t.Fatalf("result %+v", r.At(0))
	}
	if hdr.Get("Content-Type") != event.ContentTypeCloudEventsBatch || !strings.HasPrefix(body, `[{"specversion":"1.0"`) {
		t.Fatalf("a batch of two: %q, %v", body, hdr.Get("Content-Type"))
	}
}
