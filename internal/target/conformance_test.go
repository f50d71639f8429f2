package target

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// receiver is a live endpoint of a kind's, as the conformance test sees
// it: what it received, per "topic-partition", in arrival order, and a
// switch to make it refuse deliveries.
type receiver struct {
	mu     sync.Mutex
	got    map[string][]string
	refuse atomic.Bool
	// settle, when set, waits until what the kind delivered has reached
	// got (a Kafka target's records are read back asynchronously).
	settle func()
}

func (r *receiver) add(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]string{}
	}
	r.got[key] = append(r.got[key], value)
}

func (r *receiver) values(key string) []string {
	if r.settle != nil {
		r.settle()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[key])
}

// conformance is how the shared test drives one kind: setup starts a
// live receiver and returns a spec whose target section is aimed at it,
// with the Env to open it in. Every kind adds its case here.
var conformance = map[string]func(t *testing.T, rcv *receiver) (pipe.Spec, Env){
	pipe.KindHTTP: func(t *testing.T, rcv *receiver) (pipe.Spec, Env) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			if rcv.refuse.Load() {
				http.Error(w, "refused", http.StatusInternalServerError)
				return
			}
			var ev decodedEvent
			if err := json.Unmarshal(body, &ev); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for key, recs := range ev.Records {
				for _, r := range recs {
					v, _ := base64.StdEncoding.DecodeString(*r.Value)
					rcv.add(key, string(v))
				}
			}
		}))
		t.Cleanup(srv.Close)
		spec := pipe.Spec{Name: "conf", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
			Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}}
		return spec, Env{Pipe: "conf", Encoder: testEncoder}
	},
	// A shell script that hands what it read on stdin to the test and exits
	// with its answer; see execReceiver.
	pipe.KindExec:  execReceiver,
	pipe.KindKafka: kafkaReceiver,
	// A fake Lambda Invoke endpoint; see lambdaReceiver.
	pipe.KindLambda: lambdaReceiver,
	// A hosted function that decodes the event; see functionReceiver.
	pipe.KindFunction: functionReceiver,
}

// TestTargetConformance holds every registered kind to the Target
// contract: it opens from its spec section, delivers every record of a
// batch in order and answers one outcome per record, is safe for many
// partitions at once, answers failures as Failed with a reason, never
// reports a canceled attempt delivered, refuses an oversized record with
// its condition, and closes.
func TestTargetConformance(t *testing.T) {
	for _, kind := range Kinds() {
		t.Run(kind, func(t *testing.T) {
			setup, ok := conformance[kind]
			if !ok {
				t.Fatalf("kind %q has no conformance case: add one to the conformance map", kind)
			}
			rcv := &receiver{}
			spec, env := setup(t, rcv)
			tg, err := Open(context.Background(), spec, env)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			ctx := context.Background()

			b := batchOf(records("c", 0, 0, 5, 20))
			if r := tg.Deliver(ctx, b); r.Len() != 5 || r.Count(batch.Delivered) != 5 {
				t.Fatalf("Deliver = %d outcomes, %d delivered (%v); want 5 delivered", r.Len(), r.Count(batch.Delivered), r.Err())
			}
			var want []string
			for _, rec := range b.Records {
				want = append(want, string(rec.Value))
			}
			if got := rcv.values("c-0"); !slices.Equal(got, want) {
				t.Fatalf("receiver got %d values, want the batch's 5 in order", len(got))
			}

			var wg sync.WaitGroup
			for p := range int32(4) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range int64(5) {
						if r := tg.Deliver(ctx, batchOf(records("p", p, i*3, 3, 10))); r.Count(batch.Delivered) != 3 {
							t.Errorf("partition %d: concurrent delivery failed: %v", p, r.Err())
						}
					}
				}()
			}
			wg.Wait()
			for p := range 4 {
				got := rcv.values(fmt.Sprintf("p-%d", p))
				var want []string
				for _, rec := range records("p", int32(p), 0, 15, 10) {
					want = append(want, string(rec.Value))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("partition %d: receiver got %d values out of order or missing, want 15 in order", p, len(got))
				}
			}

			rcv.refuse.Store(true)
			r := tg.Deliver(ctx, batchOf(records("c", 0, 5, 2, 20)))
			if r.Len() != 2 || r.Final() != 0 || r.Count(batch.Failed) != 2 || r.Err() == nil {
				t.Fatalf("refused delivery = %d outcomes, %d final, err %v; want 2 Failed with a reason", r.Len(), r.Final(), r.Err())
			}
			rcv.refuse.Store(false)

			canceled, cancel := context.WithCancel(ctx)
			cancel()
			if r := tg.Deliver(canceled, batchOf(records("c", 0, 5, 2, 20))); r.Final() != 0 {
				t.Fatalf("a canceled attempt answered %d records final", r.Final())
			}

			big := batchOf(records("c", 0, 7, 1, 20))
			big.Oversized = true
			if r := tg.Deliver(ctx, big); r.Final() != 0 || r.At(0).Condition != batch.MaximumPayloadSizeExceeded {
				t.Fatalf("oversized record = %+v, want Failed with MaximumPayloadSizeExceeded", r.At(0))
			}

			if err := tg.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}
