package engine_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/member"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// asMember makes the engine a static member named name.
func asMember(name, setting string) func(*engine.Config) {
	return func(c *engine.Config) {
		c.Member, c.MemberSetting = name, setting
		c.Tuning.LagInterval = 500 * time.Millisecond
	}
}

func result(t *testing.T, h *harness, name string) string {
	t.Helper()
	p, err := h.eng.GetPipe(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return p.Status.LastProcessingResult
}

// TestStatusSaysWhenTheGroupCannotConsume reproduces a pipe that joins a
// group whose other member never rejoins the rebalance (here: a consumer
// that blocks rebalances and stops polling): nothing fails, nothing moves.
// The status must say PROBLEM, naming the group's state, while it lasts,
// and clear once the pipe consumes again.
func TestStatusSaysWhenTheGroupCannotConsume(t *testing.T) {
	const topic, parts, n, group = "stall", 2, 50, "stall-group"
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})

	// The member that will not rejoin: it holds both partitions, polls
	// once and then neither polls nor allows a rebalance.
	stuck, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.BlockRebalanceOnPoll(), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(30*time.Second), kgo.RebalanceTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			stuck.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for got := 0; got == 0; {
		fs := stuck.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the blocking member never got records")
		}
		got = fs.NumRecords()
	}
	cancel()

	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"), asMember("m1", "memberName in the serve config"))
	p := h.create(pipe.Spec{Name: "stall", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10,
		ConsumerGroupID: group, MaximumBatchingWindowInSeconds: ptr(0.0)})

	waitFor(t, 30*time.Second, "a PROBLEM saying the group cannot consume", func() bool {
		r := result(t, h, "stall")
		return strings.HasPrefix(r, pipe.ProblemPrefix+"Not consuming") && strings.Contains(r, group)
	})
	r := result(t, h, "stall")
	if !strings.Contains(r, "this process holds none of its partitions") || !strings.Contains(r, "Lag: 100 records") {
		t.Errorf("problem = %q, want it to say this process holds nothing and the lag", r)
	}
	if len(s.Records()) != 0 {
		t.Fatalf("%d records delivered while the group was stuck", len(s.Records()))
	}
	d, err := h.eng.Describe(context.Background(), "stall")
	if err != nil {
		t.Fatal(err)
	}
	if d.Group == nil || d.Group.State == "Stable" || d.Group.Members != 2 {
		t.Errorf("describe's group = %+v, want a group that is not Stable, with 2 members", d.Group)
	}
	if len(d.HeldPartitions) != 0 || d.GroupInstanceID != member.InstanceID("m1", p.UUID) {
		t.Errorf("describe: held %v, instance id %q; want none and %q", d.HeldPartitions, d.GroupInstanceID, member.InstanceID("m1", p.UUID))
	}

	// The stuck member goes away: the pipe consumes everything and the
	// problem clears.
	stuck.AllowRebalance()
	stuck.Close()
	closed = true
	waitFor(t, 60*time.Second, "every record", delivered(s, topic, counts(parts, n)))
	waitFor(t, 30*time.Second, "status OK", func() bool { return result(t, h, "stall") == pipe.ResultOK })
	d, err = h.eng.Describe(context.Background(), "stall")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.HeldPartitions[topic]); got != parts {
		t.Errorf("describe holds %v, want both partitions", d.HeldPartitions)
	}
}

// TestFencedMemberShowsTheSetting joins the pipe's group with the pipe's
// own group instance id, as a second process with the same member name
// would: the pipe is fenced and says which setting collides, and takes its
// place back (with its records) once the twin is gone.
func TestFencedMemberShowsTheSetting(t *testing.T) {
	const topic, parts, n = "twin", 2, 20
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"), asMember("worker", "memberName in the serve config"))
	p := h.create(pipe.Spec{Name: "twin", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10,
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 30*time.Second, "every record", delivered(s, topic, counts(parts, n)))

	twin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup(p.GroupID()), kgo.ConsumeTopics(topic),
		kgo.InstanceID(member.InstanceID("worker", p.UUID)), kgo.DisableAutoCommit(), kgo.SessionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var polling atomic.Bool
	polling.Store(true)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for polling.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			twin.PollFetches(ctx)
			cancel()
		}
	}()
	waitFor(t, 30*time.Second, "a PROBLEM naming the colliding setting", func() bool {
		r := result(t, h, "twin")
		return strings.Contains(r, "group instance id") && strings.Contains(r, "memberName in the serve config") &&
			strings.Contains(r, `"worker"`)
	})
	// The twin goes (a static member leaves nothing behind but its id):
	// the pipe rejoins after its backoff and delivers what comes next.
	polling.Store(false)
	<-pollDone
	twin.Close()
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	waitFor(t, 60*time.Second, "the records produced after the twin left", delivered(s, topic, counts(parts, 2*n)))
	waitFor(t, 30*time.Second, "status OK", func() bool { return result(t, h, "twin") == pipe.ResultOK })
}

// TestFlappingTargetLogsQuietly fails one call in three: the result
// changes on most batches, and the log gets a line at the first change and
// a summary with counts, not a line per change.
func TestFlappingTargetLogsQuietly(t *testing.T) {
	const topic, parts, n = "flap", 2, 200
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	var calls, failures atomic.Int64
	s.Decide = func(*sink.Event) sink.Decision {
		if calls.Add(1)%3 == 0 {
			failures.Add(1)
			return sink.Decision{Status: 500}
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var logs syncBuffer
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"), func(cfg *engine.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	h.create(pipe.Spec{Name: "flap", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 5,
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 60*time.Second, "every record", delivered(s, topic, counts(parts, n)))
	h.stop()
	lines := 0
	summaries := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(l, `msg="pipe has a problem"`), strings.Contains(l, `msg="pipe processing"`):
			lines++
		case strings.Contains(l, "pipe result changed"):
			summaries++
			if !strings.Contains(l, "PROBLEM: target answered 500") || !strings.Contains(l, "× OK") {
				t.Errorf("summary without counts per result: %s", l)
			}
		}
	}
	if failures.Load() < 10 {
		t.Fatalf("only %d failures: the test did not flap", failures.Load())
	}
	if lines > 2 || summaries < 1 || summaries > 2 {
		t.Errorf("%d failures gave %d change lines and %d summaries, want at most 2 and 1–2:\n%s", failures.Load(), lines, summaries, logs.String())
	}
}

// TestRetriesExhaustedStaysInTheStatus: with a retry limit and no failure
// destination, the batch is retried on, and the status keeps saying its
// retries ran out (not the plain failure of each later attempt) until it
// is delivered.
func TestRetriesExhaustedStaysInTheStatus(t *testing.T) {
	const topic, parts, n = "exhaust", 1, 5
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	var down atomic.Bool
	down.Store(true)
	s.Decide = func(*sink.Event) sink.Decision {
		if down.Load() {
			return sink.Decision{Status: 503}
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	h := startEngine(t, c, filepath.Join(t.TempDir(), "s.db"))
	retries := 1
	h.create(pipe.Spec{Name: "exhaust", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 5,
		MaximumBatchingWindowInSeconds: ptr(0.0), Retry: pipe.RetryPolicy{MaximumRetryAttempts: &retries}})
	waitFor(t, 30*time.Second, "the exhausted problem", func() bool {
		return strings.Contains(result(t, h, "exhaust"), "retries exhausted")
	})
	// Later attempts fail too; the status keeps the exhaustion.
	// (Describe's last error is the latest result seen, at once; the
	// stored status follows within the write spacing.)
	seen := s.Stats().Rejected
	waitFor(t, 30*time.Second, "more failed attempts", func() bool { return s.Stats().Rejected >= seen+5 })
	d, _ := h.eng.Describe(context.Background(), "exhaust")
	if d.LastError == nil || !strings.Contains(d.LastError.Message, "retries exhausted") {
		t.Errorf("after more failed attempts the latest problem is %+v, want the exhaustion kept", d.LastError)
	}
	// describe says which batch is failing, its next attempt and when.
	if len(d.Retrying) != 1 || d.Retrying[0].Topic != topic || d.Retrying[0].FirstOffset != 0 || d.Retrying[0].NextAttempt < 3 ||
		d.Retrying[0].NextAttemptAt.IsZero() || !strings.Contains(d.Retrying[0].Problem, "503") {
		t.Errorf("describe's retrying = %+v", d.Retrying)
	}
	if r := result(t, h, "exhaust"); !strings.Contains(r, "retries exhausted") {
		t.Errorf("the stored status is %q, want the exhaustion", r)
	}
	down.Store(false)
	waitFor(t, 30*time.Second, "every record", delivered(s, topic, counts(parts, n)))
	waitFor(t, 30*time.Second, "status OK", func() bool { return result(t, h, "exhaust") == pipe.ResultOK })
	if d, _ := h.eng.Describe(context.Background(), "exhaust"); len(d.Retrying) != 0 {
		t.Errorf("after delivery describe still lists %+v", d.Retrying)
	}
}
