package engine_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// TestLifecycle drives a pipe through update, disable, enable and delete
// while records flow: every state change lands, a changed batch size and
// target take effect with nothing lost and no finished batch delivered
// again, a disabled pipe keeps its group's offsets and resumes from them,
// and a deleted pipe passes through Deleting and is gone.
func TestLifecycle(t *testing.T) {
	const topic, parts = "life", 2
	c := newCluster(t, topic, parts)
	first, second := sink.New(), sink.New()
	srv1, srv2 := httptest.NewServer(first), httptest.NewServer(second)
	defer srv1.Close()
	defer srv2.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	state := func() pipe.State {
		p, err := h.eng.GetPipe(ctx, "life")
		if err != nil {
			return ""
		}
		return p.Status.State
	}

	p := h.create(pipe.Spec{Name: "life", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv1.URL}}, BatchSize: 10,
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 10*time.Second, "Enabled", func() bool { return state() == pipe.StateEnabled })
	produce(t, h.addrs, topic, parts, 100, time.Time{})
	waitFor(t, 30*time.Second, "the first 100 per partition at the first target", delivered(first, topic, counts(parts, 100)))

	// Update: a new target and batch size. Finished work is committed
	// when the old runner stops, so the new target starts after it.
	upd, err := h.eng.UpdatePipe(ctx, pipe.Spec{Name: "life", Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv2.URL}}, BatchSize: 25,
		MaximumBatchingWindowInSeconds: ptr(0.0)}, p.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Status.State != pipe.StateUpdating || upd.Revision != p.Revision+1 {
		t.Fatalf("after update: state %s revision %d", upd.Status.State, upd.Revision)
	}
	waitFor(t, 10*time.Second, "Enabled after the update", func() bool { return state() == pipe.StateEnabled })
	produce(t, h.addrs, topic, parts, 100, time.Time{})
	waitFor(t, 30*time.Second, "the next 100 per partition at the second target", func() bool {
		return second.Stats().Accepted >= 2*100
	})
	for _, r := range second.Records() {
		if r.Offset < 100 {
			t.Fatalf("partition %d offset %d, delivered before the update, came again after it", r.Partition, r.Offset)
		}
	}
	if got := second.Stats(); got.Batches > 2*100/25+2 {
		t.Fatalf("%d batches for 200 records: the new batch size of 25 did not apply", got.Batches)
	}

	// A stale revision is refused.
	if _, err := h.eng.UpdatePipe(ctx, pipe.Spec{Name: "life", Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv1.URL}}}, p.Revision); !errors.Is(err, pipe.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}

	// Disable: consuming stops and the group keeps its offsets.
	off := false
	if _, err := h.eng.UpdatePipe(ctx, pipe.Spec{Name: "life", Enabled: &off, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv2.URL}}, BatchSize: 25,
		MaximumBatchingWindowInSeconds: ptr(0.0)}, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Disabled", func() bool { return state() == pipe.StateDisabled })
	before := second.Stats().Accepted
	produce(t, h.addrs, topic, parts, 50, time.Time{})
	if got := committed(t, h.addrs, p.UUID); got[0] != 200 || got[1] != 200 {
		t.Fatalf("a disabled pipe's offsets: %v, want 200 per partition", got)
	}
	// Enable: it resumes from the committed offsets.
	on := true
	if _, err := h.eng.UpdatePipe(ctx, pipe.Spec{Name: "life", Enabled: &on, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv2.URL}}, BatchSize: 25,
		MaximumBatchingWindowInSeconds: ptr(0.0)}, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Enabled again", func() bool { return state() == pipe.StateEnabled })
	waitFor(t, 30*time.Second, "the records produced while disabled", func() bool { return second.Stats().Accepted >= before+2*50 })
	if got := second.Stats().Accepted; got != before+2*50 {
		t.Fatalf("%d records after enabling, want %d: the pipe did not resume at its offsets", got-before, 2*50)
	}
	all := append(first.Records(), second.Records()...)
	if _, err := sink.Check(all, topic, counts(parts, 250)); err != nil {
		t.Fatal(err)
	}

	// Delete: Deleting at once, then gone.
	if err := h.eng.DeletePipe(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != pipe.StateDeleting && s != "" {
		t.Fatalf("state right after delete: %s, want Deleting", s)
	}
	if _, err := h.eng.UpdatePipe(ctx, pipe.Spec{Name: "life", Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv1.URL}}}, 0); err != nil &&
		!errors.Is(err, pipe.ErrDeleting) && !errors.Is(err, pipe.ErrNotFound) {
		t.Fatalf("update while deleting: %v", err)
	}
	waitFor(t, 10*time.Second, "the pipe to be gone", func() bool {
		_, err := h.eng.GetPipe(ctx, "life")
		return errors.Is(err, pipe.ErrNotFound)
	})
}
