package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/host/hosttest"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// TestHostedFunctionTarget: a pipe delivers to an unchanged aws-lambda-go
// handler Sluice runs; the offsets it names in batchItemFailures are
// delivered again, a panic shows as the pipe's PROBLEM and the handler
// recovers on a new process, every record reaches the handler in offset
// order per partition, and the commits reach the end.
func TestHostedFunctionTarget(t *testing.T) {
	const topic, parts, n = "hosted", 2, 100
	dir := t.TempDir()
	handler := hosttest.Build(t, dir)
	out, state := filepath.Join(dir, "seen.jsonl"), filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, topic, parts)
	logs := &syncBuffer{}
	h := startEngine(t, c, filepath.Join(dir, "s.db"), func(cfg *engine.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	ctx := context.Background()

	special := map[[2]int64]string{{0, 10}: "once:fail", {1, 50}: "once:fail", {0, 70}: "for:1500ms:panic", {1, 20}: "once:error"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := range n {
			v := fmt.Sprintf("v%d", i)
			if s, ok := special[[2]int64{int64(p), int64(i)}]; ok {
				v = s
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	f, err := h.eng.PutFunction(ctx, pipe.Function{Name: "orders", Handler: &pipe.Handler{Path: handler, Concurrency: 2, TimeoutSeconds: 10,
		Env: map[string]string{"TESTHANDLER_OUT": out, "TESTHANDLER_STATE": state}}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind() != pipe.FunctionHosted || f.Status == nil {
		t.Fatalf("put function: %+v", f)
	}
	p := h.create(pipe.Spec{Name: "hosted", Topics: []string{topic}, BatchSize: 10, MaximumBatchingWindowInSeconds: ptr(0.0),
		Target: pipe.Target{Function: &pipe.FunctionTarget{Name: "orders", ReportBatchItemFailures: true}}})

	// The handler panics on one record for 1.5 s: the pipe shows it
	// meanwhile, and goes on once the handler stops.
	waitFor(t, 30*time.Second, "the panic as the pipe's PROBLEM", func() bool {
		st, err := h.eng.GetPipe(ctx, "hosted")
		return err == nil && strings.Contains(st.Status.LastProcessingResult, "PROBLEM: function orders failed") &&
			strings.Contains(st.Status.LastProcessingResult, "asked to panic")
	})
	waitFor(t, 60*time.Second, "commits at the end of each partition", func() bool {
		got := committed(t, h.addrs, p.UUID)
		return got[0] == n && got[1] == n
	})

	// Every record reached the handler; first deliveries are in offset
	// order per partition; the failed ones came again.
	seen := hosttest.Read(t, out)
	times := map[[2]int64]int{}
	last := map[int64]int64{0: -1, 1: -1}
	for _, s := range seen {
		k := [2]int64{s.Partition, s.Offset}
		if times[k] == 0 {
			if s.Offset <= last[s.Partition] {
				t.Fatalf("partition %d: offset %d first seen after %d", s.Partition, s.Offset, last[s.Partition])
			}
			last[s.Partition] = s.Offset
		}
		times[k]++
	}
	for p := int64(0); p < parts; p++ {
		for i := int64(0); i < n; i++ {
			if times[[2]int64{p, i}] == 0 {
				t.Fatalf("partition %d offset %d never reached the handler", p, i)
			}
		}
	}
	for k := range special {
		if times[k] < 2 {
			t.Errorf("record %v (%s) reached the handler %d time(s), want it again after its failure", k, special[k], times[k])
		}
	}

	fn, err := h.eng.GetFunction(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if st := fn.Status; st == nil || st.Restarts < 1 || st.Errors < 2 || st.Invocations < 20 {
		t.Fatalf("function status %+v: want a restart after the panic, the panic's and the error's failures", fn.Status)
	}
	// The handler's output is in the log with its request id.
	// The handler's output is in the log with request ids of its
	// invocations. (A line read after the process took its next
	// invocation carries that one's: output comes through a pipe.)
	waitFor(t, 10*time.Second, "the handler's output in the log with its request ids", func() bool {
		l := logs.String()
		for _, s := range seen {
			if strings.Contains(l, "request_id="+s.RequestID) {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "status OK after the failures", func() bool {
		got, err := h.eng.GetPipe(ctx, "hosted")
		return err == nil && got.Status.LastProcessingResult == pipe.ResultOK
	})
}
