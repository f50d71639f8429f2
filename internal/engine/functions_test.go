package engine_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// TestFunctionTargets: a pipe targeting a function posts to its URL, moves
// to a new URL when the function changes, shows a PROBLEM while its
// function is not registered, and keeps the function from being deleted.
func TestFunctionTargets(t *testing.T) {
	const topic = "fn"
	c := newCluster(t, topic, 1)
	first, second := sink.New(), sink.New()
	srv1, srv2 := httptest.NewServer(first), httptest.NewServer(second)
	defer srv1.Close()
	defer srv2.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()

	// No function yet: the pipe says so instead of failing silently.
	h.create(pipe.Spec{Name: "fn", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{Function: "billing"}}, MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 10*time.Second, "the missing function's PROBLEM", func() bool {
		p, err := h.eng.GetPipe(ctx, "fn")
		return err == nil && strings.Contains(p.Status.LastProcessingResult, `PROBLEM: Function "billing" is not registered`)
	})

	if _, err := h.eng.PutFunction(ctx, pipe.Function{Name: "billing", URL: srv1.URL}); err != nil {
		t.Fatal(err)
	}
	produce(t, h.addrs, topic, 1, 10, time.Time{})
	waitFor(t, 30*time.Second, "10 records at the function's first URL", func() bool { return first.Stats().Accepted >= 10 })

	if _, err := h.eng.PutFunction(ctx, pipe.Function{Name: "billing", URL: srv2.URL}); err != nil {
		t.Fatal(err)
	}
	// Records produced until the new URL gets one show the restart has
	// happened; from then on the old URL must get nothing.
	waitFor(t, 30*time.Second, "a record at the new URL", func() bool {
		produce(t, h.addrs, topic, 1, 1, time.Time{})
		return second.Stats().Accepted > 0
	})
	before, already := first.Stats().Accepted, second.Stats().Accepted
	produce(t, h.addrs, topic, 1, 10, time.Time{})
	waitFor(t, 30*time.Second, "the next records at the new URL", func() bool { return second.Stats().Accepted >= already+10 })
	if got := first.Stats().Accepted; got != before {
		t.Fatalf("the old URL got %d more records after the function moved", got-before)
	}

	err := h.eng.DeleteFunction(ctx, "billing")
	if !errors.Is(err, pipe.ErrFunctionInUse) || !strings.Contains(err.Error(), "fn") {
		t.Fatalf("deleting a function in use: %v", err)
	}
	if _, err := h.eng.PutFunction(ctx, pipe.Function{Name: "bad", URL: "ftp://x"}); err == nil {
		t.Fatal("a non-http URL must be refused")
	}
}
