package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/host"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/target"
)

// NoopHandlerName is the name the sluice binary answers to as a no-op
// Lambda handler (busybox style: hosted-function links it so), built with
// aws-lambda-go as a user's handler is.
const NoopHandlerName = "sluice-noop-handler"

// RunNoopHandler serves the Lambda Runtime API's invocations with an
// empty answer until the process is killed.
func RunNoopHandler() {
	lambda.Start(func(context.Context, json.RawMessage) (json.RawMessage, error) {
		return json.RawMessage(`{}`), nil
	})
}

// Invoke is the hosted-function scenario's figures: the same batch
// delivered over and over by the HTTP target to a no-op endpoint and by
// the function target to a hosted no-op handler, at each concurrency.
type Invoke struct {
	RecordsPerBatch int           `json:"records_per_batch"`
	BatchBytes      int           `json:"batch_bytes"`
	Runs            []InvokePhase `json:"runs"`
}

// InvokePhase is one target at one concurrency.
type InvokePhase struct {
	Target        string  `json:"target"`
	Concurrency   int     `json:"concurrency"`
	Batches       int     `json:"batches"`
	Seconds       float64 `json:"seconds"`
	BatchesPerSec float64 `json:"batches_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	// ToHTTP is the batches per second over the HTTP target's at the same
	// concurrency, and P99OverheadMs the p99 over the HTTP target's.
	ToHTTP        float64 `json:"to_http_ratio,omitempty"`
	P99OverheadMs float64 `json:"p99_overhead_ms,omitempty"`
}

// hostedFunction runs the hosted-function scenario: o.Records batches of
// BatchSizes[0] records at each concurrency, HTTP first.
func (b *bench) hostedFunction(ctx context.Context) error {
	o := b.o
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the sluice binary to run as the no-op handler: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	handler := filepath.Join(dir, NoopHandlerName)
	if err := os.Symlink(exe, handler); err != nil {
		return fmt.Errorf("link the no-op handler: %w", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	bs := o.BatchSizes[0]
	recs := make([]*kgo.Record, bs)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "bench", Partition: 0, Offset: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: b.value(time.Now()), Timestamp: time.Now()}
	}
	enc := event.NewEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"127.0.0.1:9092"}})
	res := &Invoke{RecordsPerBatch: bs, BatchBytes: len(enc.Append(nil, recs))}
	b.res.Invoke = res

	concs := []int{1, 8}
	fn, err := host.New(host.Config{Name: "bench-noop", Path: handler, Concurrency: slices.Max(concs), Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer fn.Close()
	env := target.Env{Encoder: enc, Hosted: func(string) (target.Hosted, error) { return fn, nil }}
	base := pipe.Spec{PayloadLimitBytes: pipe.DefaultPayloadLimitBytes}
	httpSpec, fnSpec := base, base
	httpSpec.Target = pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL, TimeoutSeconds: 10}}
	fnSpec.Target = pipe.Target{Function: &pipe.FunctionTarget{Name: "bench-noop"}}
	httpT, err := target.Open(ctx, httpSpec, env)
	if err != nil {
		return err
	}
	defer httpT.Close()
	fnT, err := target.Open(ctx, fnSpec, env)
	if err != nil {
		return err
	}
	defer fnT.Close()

	for _, c := range concs {
		// Warm both up (connections, processes), then measure.
		if _, err := deliverLoop(ctx, httpT, recs, c, 4*c); err != nil {
			return err
		}
		if _, err := deliverLoop(ctx, fnT, recs, c, 4*c); err != nil {
			return err
		}
		h, err := b.invokePhase(ctx, "http", httpT, recs, c)
		if err != nil {
			return err
		}
		f, err := b.invokePhase(ctx, "hosted function", fnT, recs, c)
		if err != nil {
			return err
		}
		f.ToHTTP = ratio(f.BatchesPerSec, h.BatchesPerSec)
		f.P99OverheadMs = f.P99Ms - h.P99Ms
		res.Runs = append(res.Runs, h, f)
	}
	return nil
}

func (b *bench) invokePhase(ctx context.Context, name string, t target.Target, recs []*kgo.Record, conc int) (InvokePhase, error) {
	m := startMeter()
	lat, err := deliverLoop(ctx, t, recs, conc, b.o.Records)
	var p Phase
	m.stop(&p, int64(b.o.Records), 0)
	if err != nil {
		return InvokePhase{}, fmt.Errorf("%s: %w", name, err)
	}
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	return InvokePhase{Target: name, Concurrency: conc, Batches: len(lat), Seconds: p.Seconds, BatchesPerSec: float64(len(lat)) / p.Seconds,
		P50Ms: ms(0.5), P99Ms: ms(0.99), MaxMs: float64(lat[len(lat)-1].Microseconds()) / 1000, CPUSeconds: p.CPUSeconds}, nil
}

// deliverLoop delivers the batch n times from conc goroutines and returns
// each delivery's duration; a delivery that is not delivered fails it.
func deliverLoop(ctx context.Context, t target.Target, recs []*kgo.Record, conc, n int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, n)
		next  = make(chan struct{}, n)
		wg    sync.WaitGroup
		first error
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				b := batch.New(recs, nil)
				start := time.Now()
				res := t.Deliver(ctx, b)
				d := time.Since(start)
				mu.Lock()
				if res.Final() != len(recs) && first == nil {
					first = fmt.Errorf("a delivery failed: %v", res.Err())
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, first
}
