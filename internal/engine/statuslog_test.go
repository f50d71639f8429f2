package engine

import (
	"strings"
	"testing"
	"time"
)

func TestResultLogOneLinePerInterval(t *testing.T) {
	var l resultLog
	t0 := time.Unix(1_800_000_000, 0)
	if !l.change(t0, "PROBLEM: x") {
		t.Fatal("the first change is not logged at once")
	}
	for i := 1; i <= 9; i++ {
		r := "OK"
		if i%2 == 0 {
			r = "PROBLEM: x"
		}
		if l.change(t0.Add(time.Duration(i)*time.Second), r) {
			t.Fatalf("change %d within the interval logged at once", i)
		}
	}
	if _, ok := l.flush(t0.Add(10*time.Second), false); ok {
		t.Fatal("flushed before the interval ended")
	}
	sum, ok := l.flush(t0.Add(resultLogInterval), false)
	if !ok || sum.n != 9 || sum.problems != 4 {
		t.Fatalf("flush = %+v, %v; want 9 changes, 4 of them problems", sum, ok)
	}
	if got := sum.String(); got != "5× OK; 4× PROBLEM: x" {
		t.Errorf("summary = %q", got)
	}
	// Right after a summary, a change waits for the next interval; after a
	// quiet interval it is logged at once again.
	if l.change(t0.Add(resultLogInterval+time.Second), "OK") {
		t.Error("a change right after a summary was logged at once")
	}
	if sum, ok := l.flush(t0.Add(resultLogInterval+2*time.Second), true); !ok || sum.n != 1 {
		t.Errorf("final flush = %+v, %v", sum, ok)
	}
	if !l.change(t0.Add(3*resultLogInterval), "PROBLEM: y") {
		t.Error("a change after a quiet interval was not logged at once")
	}
}

func TestGroupHealthAssess(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	view := func(after time.Duration, state string, held int, lag int64, unassigned ...string) groupView {
		return groupView{at: t0.Add(after), state: state, members: 15, held: held, lag: lag, unassigned: unassigned}
	}
	var h groupHealth
	if p := h.assess(view(0, "PreparingRebalance", 0, 500), "g", 15*time.Second); p != "" {
		t.Errorf("problem at the first sight: %q", p)
	}
	p := h.assess(view(6*time.Second, "PreparingRebalance", 0, 500), "g", 15*time.Second)
	for _, want := range []string{`Not consuming: consumer group "g" has been PreparingRebalance for 6s`, "15 members", "holds none", "(15s)", "Lag: 500 records."} {
		if !strings.Contains(p, want) {
			t.Errorf("problem %q lacks %q", p, want)
		}
	}
	// No lag: nothing to consume, nothing wrong.
	if p := h.assess(view(7*time.Second, "PreparingRebalance", 0, 0), "g", time.Second); p != "" {
		t.Errorf("problem without lag: %q", p)
	}
	// The clock restarts after a good look.
	if p := h.assess(view(8*time.Second, "PreparingRebalance", 0, 5), "g", time.Second); p != "" {
		t.Errorf("problem right after a good look: %q", p)
	}
	// Stable, but partitions without an owner.
	h = groupHealth{}
	h.assess(view(0, "Stable", 1, 9, "t-1"), "g", time.Second)
	p = h.assess(view(5*time.Second, "Stable", 1, 9, "t-1", "t-2", "t-3", "t-4", "t-5", "t-6"), "g", time.Second)
	if !strings.Contains(p, "Not consuming 6 partitions") || !strings.Contains(p, "t-1, t-2, t-3, t-4, t-5, and 1 more") ||
		!strings.Contains(p, "consumes the 1 it holds") {
		t.Errorf("unassigned problem = %q", p)
	}
	// A standby: Stable, every lagging partition owned by another member.
	h = groupHealth{}
	h.assess(view(0, "Stable", 0, 9), "g", time.Second)
	if p := h.assess(view(10*time.Second, "Stable", 0, 9), "g", time.Second); p != "" {
		t.Errorf("problem for a standby member: %q", p)
	}
}
