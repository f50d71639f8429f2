package scale

import (
	"testing"
	"time"
)

func TestLimiterBoundsAndWakes(t *testing.T) {
	l := NewLimiter(2)
	if !l.TryAcquire() || !l.TryAcquire() || l.TryAcquire() {
		t.Fatal("a limit of 2 gave out other than 2 tokens")
	}
	ch := l.Changed()
	l.Release()
	select {
	case <-ch:
	default:
		t.Fatal("a release did not wake waiters")
	}
	l.SetLimit(1) // one held, limit one: none free
	if l.TryAcquire() {
		t.Fatal("a lowered limit was exceeded")
	}
	stop := make(chan struct{})
	close(stop)
	if l.Acquire(stop, nil) {
		t.Fatal("Acquire returned a token after stop")
	}
}

// Slow start doubles per coalesced trigger up to the maximum; a throttle
// halves at the next tick, at most once per tick, not below the minimum;
// growth waits out the cooldown and is then additive.
func TestControllerAIMD(t *testing.T) {
	l := NewLimiter(1)
	var changes []Change
	c := NewController(l, Policy{Min: 2, Max: 40, UpEvery: 100 * time.Millisecond, Cooldown: time.Second}, func(ch Change) { changes = append(changes, ch) })
	now := time.Unix(1000, 0)
	if l.Limit() != 2 {
		t.Fatalf("starts at %d, want the minimum 2", l.Limit())
	}
	c.Starved(now)
	c.Starved(now.Add(10 * time.Millisecond)) // coalesced
	if l.Limit() != 4 {
		t.Fatalf("after one raise: %d, want 4", l.Limit())
	}
	for i := 1; i <= 5; i++ {
		c.Starved(now.Add(time.Duration(i) * 200 * time.Millisecond))
	}
	if l.Limit() != 40 {
		t.Fatalf("after slow start: %d, want the maximum 40", l.Limit())
	}
	c.Throttled()
	c.Throttled()
	c.Starved(now.Add(1500 * time.Millisecond)) // throttled since the tick: no raise
	c.Tick(now.Add(2 * time.Second))
	c.Tick(now.Add(3 * time.Second)) // nothing new: no change
	if l.Limit() != 20 {
		t.Fatalf("after a throttled tick: %d, want 20", l.Limit())
	}
	c.Starved(now.Add(2500 * time.Millisecond)) // within the cooldown
	if l.Limit() != 20 {
		t.Fatalf("raised within the cooldown: %d", l.Limit())
	}
	c.Starved(now.Add(3500 * time.Millisecond))
	if l.Limit() != 25 {
		t.Fatalf("after the cooldown: %d, want 25 (a quarter more)", l.Limit())
	}
	for range 10 {
		c.Throttled()
		c.Tick(now.Add(10 * time.Second))
	}
	if l.Limit() != 2 {
		t.Fatalf("after many throttles: %d, want the minimum 2", l.Limit())
	}
	cur, lo, hi, last := c.State()
	if cur != 2 || lo != 2 || hi != 40 || last == nil || last.Reason != ReasonThrottled || len(changes) == 0 {
		t.Fatalf("state %d %d %d %+v", cur, lo, hi, last)
	}
}
