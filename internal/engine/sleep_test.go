package engine_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// TestIdlePipeSleepsAndWakes: a pipe that delivered everything sleeps once
// it has seen no record for SleepAfter (out of its group, holding
// nothing), the next records wake it and arrive, none lost, and it falls
// asleep again; a sleeping pipe can be deleted.
func TestIdlePipeSleepsAndWakes(t *testing.T) {
	const topic, parts = "quiet", 3
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, 20, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"), func(cfg *engine.Config) {
		cfg.Tuning.SleepAfter = 500 * time.Millisecond
	})
	p := h.create(pipe.Spec{Name: "quiet", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10})
	waitFor(t, 30*time.Second, "the first records", delivered(s, topic, counts(parts, 20)))
	asleep := func() bool {
		d, err := h.eng.Describe(context.Background(), "quiet")
		return err == nil && d.Asleep != nil && len(d.HeldPartitions) == 0
	}
	waitFor(t, 20*time.Second, "the pipe to fall asleep", asleep)
	if got := committed(t, h.addrs, p.UUID); got[0] != 20 || got[1] != 20 || got[2] != 20 {
		t.Fatalf("committed %v before sleeping, want 20 on each partition", got)
	}

	start := time.Now()
	before := len(s.Records())
	produce(t, c.ListenAddrs(), topic, parts, 20, time.Time{}) // offsets 20..39
	waitFor(t, 20*time.Second, "a record after the wake", func() bool { return len(s.Records()) > before })
	t.Logf("first record delivered %s after it was produced to the sleeping pipe", time.Since(start).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "every record after the wake", delivered(s, topic, counts(parts, 40)))
	dups, err := sink.Check(s.Records(), topic, counts(parts, 40))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d duplicates", dups)
	waitFor(t, 20*time.Second, "the pipe to fall asleep again", asleep)
	got, err := h.eng.GetPipe(context.Background(), "quiet")
	if err != nil || got.Status.State != pipe.StateEnabled || got.Status.LastProcessingResult != pipe.ResultOK {
		t.Fatalf("sleeping pipe's status %+v (%v), want Enabled and OK", got.Status, err)
	}

	if err := h.eng.DeletePipe(context.Background(), "quiet"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the sleeping pipe to be deleted", func() bool {
		_, err := h.eng.GetPipe(context.Background(), "quiet")
		return err != nil
	})
}

// TestSharedPipeSleepsInEveryMember: two engines run one pipe in one
// consumer group; idle, both sleep with their shares, and records produced
// to every partition then wake them and all arrive.
func TestSharedPipeSleepsInEveryMember(t *testing.T) {
	const topic, parts = "shared-quiet", 4
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, 10, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	sleepSoon := func(cfg *engine.Config) { cfg.Tuning.SleepAfter = time.Second }
	var hs []*harness
	for _, db := range []string{"a.db", "b.db"} {
		h := startEngine(t, c, filepath.Join(t.TempDir(), db), sleepSoon)
		h.create(pipe.Spec{Name: "shared", Topics: []string{topic}, ConsumerGroupID: "shared-quiet-group",
			Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10})
		hs = append(hs, h)
	}
	waitFor(t, 30*time.Second, "the first records", delivered(s, topic, counts(parts, 10)))
	bothAsleep := func() bool {
		for _, h := range hs {
			if d, err := h.eng.Describe(context.Background(), "shared"); err != nil || d.Asleep == nil {
				return false
			}
		}
		return true
	}
	waitFor(t, 30*time.Second, "both members to fall asleep", bothAsleep)
	produce(t, c.ListenAddrs(), topic, parts, 10, time.Time{})
	waitFor(t, 30*time.Second, "every record after the wake", delivered(s, topic, counts(parts, 20)))
	dups, err := sink.Check(s.Records(), topic, counts(parts, 20))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d duplicates", dups)
	waitFor(t, 30*time.Second, "both members to fall asleep again", bothAsleep)
}
