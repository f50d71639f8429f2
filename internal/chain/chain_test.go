package chain

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/target"
)

func env() Env {
	return Env{Target: target.Env{Encoder: event.NewEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}})},
		InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
}

func records(n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{Topic: "orders", Offset: int64(i), Timestamp: time.Now(), Value: []byte("ok")}
	}
	return out
}

// A pipeline built from a spec with bisect and a file destination, over a
// real HTTP target refusing any batch holding record 5: the record alone
// is in the file, every other record delivered, in order, once.
func TestOpenBuildsTheSpecsChain(t *testing.T) {
	var calls atomic.Int32
	var got []int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Records map[string][]struct {
				Offset int64 `json:"offset"`
			} `json:"records"`
		}
		_ = json.Unmarshal(body, &ev)
		for _, x := range ev.Records["orders-0"] {
			if x.Offset == 5 {
				http.Error(w, "poison", http.StatusInternalServerError)
				return
			}
		}
		for _, x := range ev.Records["orders-0"] {
			got = append(got, x.Offset)
		}
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	spec := pipe.Spec{Name: "c", Topics: []string{"orders"}, PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
		Target:    pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
		Retry:     pipe.RetryPolicy{MaximumRetryAttempts: new(int), BisectBatchOnError: true},
		OnFailure: pipe.OnFailure{Destination: "file://" + file}}
	pl, err := Open(context.Background(), spec, env())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	recs := records(8)
	for len(recs) > 0 {
		r := pl.Handler(context.Background(), batch.New(recs, nil))
		if r.Final() == 0 {
			t.Fatalf("no progress")
		}
		recs = recs[r.Final():]
	}
	if want := []int64{0, 1, 2, 3, 4, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	b, err := os.ReadFile(file)
	if err != nil || strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), `"firstRecordOffset":"5"`) {
		t.Fatalf("destination file %q, %v; want record 5 alone", b, err)
	}
}

// Limits without anywhere to put the records keep retrying: the pipeline
// answers only when the target takes them.
func TestOpenWithoutDestinationRetriesOn(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 4 {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	spec := pipe.Spec{Name: "c", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
		Retry: pipe.RetryPolicy{MaximumRetryAttempts: new(int)}}
	pl, err := Open(context.Background(), spec, env())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if r := pl.Handler(context.Background(), batch.New(records(3), nil)); r.Count(batch.Delivered) != 3 || calls.Load() != 5 {
		t.Fatalf("result %d delivered after %d calls, want all after 5", r.Count(batch.Delivered), calls.Load())
	}
}

func TestOpenRefusesWhatItCannotBuild(t *testing.T) {
	spec := pipe.Spec{Name: "c", Target: pipe.Target{HTTP: &pipe.HTTPTarget{Function: "billing"}}}
	e := env()
	e.Target.FunctionURL = func(name string) (string, error) { return "", os.ErrNotExist }
	if _, err := Open(context.Background(), spec, e); err == nil {
		t.Fatal("a function that does not resolve opened")
	}
	spec = pipe.Spec{Name: "c", PayloadLimitBytes: 1 << 20, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:1/"}},
		OnFailure: pipe.OnFailure{Destination: "kafka://dlq"}}
	if _, err := Open(context.Background(), spec, env()); err == nil || !strings.Contains(err.Error(), "kafka://") {
		t.Fatalf("a kafka:// destination without Kafka: %v", err)
	}
}

// A record too large for any delivery goes to the destination at once,
// with MaximumPayloadSizeExceeded, without burning retries.
func TestOversizedRecordGoesToDestination(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	five := 5
	spec := pipe.Spec{Name: "c", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
		Retry: pipe.RetryPolicy{MaximumRetryAttempts: &five}, OnFailure: pipe.OnFailure{Destination: "file://" + file}}
	pl, err := Open(context.Background(), spec, env())
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	b := batch.New(records(1), nil)
	b.Oversized, b.Size = true, 7<<20
	if r := pl.Handler(context.Background(), b); r.At(0).Status != batch.DeadLettered || calls.Load() != 0 {
		t.Fatalf("outcome %+v after %d calls to the target, want dead-lettered without a call", r.At(0), calls.Load())
	}
	if got, _ := os.ReadFile(file); !strings.Contains(string(got), `"condition":"MaximumPayloadSizeExceeded"`) || !strings.Contains(string(got), `"responseContext":null`) {
		t.Fatalf("destination holds %s", got)
	}
}

// The enrichment gets the batch as the Pipes event and its answer is what
// the target gets; an empty answer delivers nothing and commits; a failing
// enrichment fails the batch like a failing target, so its limits and the
// destination apply.
func TestEnrichment(t *testing.T) {
	var mode atomic.Int32 // 0 answer, 1 empty, 2 fail
	var enrichIn atomic.Value
	enrich := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		enrichIn.Store(string(b))
		switch mode.Load() {
		case 1:
			w.Write([]byte("[]"))
		case 2:
			http.Error(w, "enricher down", http.StatusBadGateway)
		default:
			var recs []map[string]any
			_ = json.Unmarshal(b, &recs)
			w.Write([]byte(`{"enriched":` + string(rune('0'+len(recs))) + `}`))
		}
	}))
	defer enrich.Close()
	var targetIn []string
	tgt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		targetIn = append(targetIn, string(b))
	}))
	defer tgt.Close()
	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	e := env()
	e.Target.Source = event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}}
	spec := pipe.Spec{Name: "c", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: tgt.URL}},
		Enrichment: &pipe.Enrichment{URL: enrich.URL}, Retry: pipe.RetryPolicy{MaximumRetryAttempts: new(int)},
		OnFailure: pipe.OnFailure{Destination: "file://" + file}}
	pl, err := Open(context.Background(), spec, e)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	if r := pl.Handler(context.Background(), batch.New(records(3), nil)); r.Count(batch.Delivered) != 3 {
		t.Fatalf("result %+v", r.At(0))
	}
	if in, _ := enrichIn.Load().(string); !strings.HasPrefix(in, `[{"eventSource":"SelfManagedKafka"`) || !strings.Contains(in, `"eventSourceKey":"orders-0"`) {
		t.Fatalf("enrichment got %s, want the Pipes event", in)
	}
	if len(targetIn) != 1 || targetIn[0] != `{"enriched":3}` {
		t.Fatalf("target got %q, want the enrichment's answer", targetIn)
	}
	mode.Store(1)
	if r := pl.Handler(context.Background(), batch.New(records(2), nil)); r.Count(batch.Filtered) != 2 || len(targetIn) != 1 {
		t.Fatalf("an empty enrichment: %+v, target calls %d", r.At(0), len(targetIn))
	}
	mode.Store(2)
	if r := pl.Handler(context.Background(), batch.New(records(2), nil)); r.Count(batch.DeadLettered) != 2 || len(targetIn) != 1 {
		t.Fatalf("a failing enrichment: %+v, target calls %d", r.At(0), len(targetIn))
	}
	if b, _ := os.ReadFile(file); !strings.Contains(string(b), "enrichment answered 502") {
		t.Fatalf("destination holds %s", b)
	}
}

// The input template renders each record (its JSON value parsed, as the
// reference does) and the target gets the array of what it rendered;
// after an enrichment, it renders each element of the enrichment's answer.
func TestInputTemplate(t *testing.T) {
	var got []string
	tgt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
	}))
	defer tgt.Close()
	e := env()
	e.Target.Source = event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}}
	spec := pipe.Spec{Name: "tpl", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: tgt.URL}},
		InputTemplate: `{"order": <$.value.id>, "at": <$.offset>, "pipe": "<aws.pipes.pipe-name>"}`}
	pl, err := Open(context.Background(), spec, e)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	recs := records(2)
	recs[0].Value, recs[1].Value = []byte(`{"id":"a1"}`), []byte(`{"id":"b2"}`)
	if r := pl.Handler(context.Background(), batch.New(recs, nil)); r.Count(batch.Delivered) != 2 {
		t.Fatalf("result %+v", r.At(0))
	}
	if len(got) != 1 || got[0] != `[{"order":"a1","at":0,"pipe":"tpl"},{"order":"b2","at":1,"pipe":"tpl"}]` {
		t.Fatalf("target got %q", got)
	}
	if _, err := Open(context.Background(), pipe.Spec{Name: "x", Target: spec.Target, InputTemplate: `{"a": <$.value.>}`}, e); err == nil {
		t.Fatal("an invalid template opened")
	}
}
