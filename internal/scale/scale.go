// Package scale holds a pipe's concurrency: a Limiter, the tokens every
// batch in flight holds, and a Controller that moves the limit within
// [minimum, maximum] — up when batches wait for a token while the target
// is healthy, down by half when it throttles. It does no I/O; the clock
// is the caller's.
//
// The shape is additive-increase, multiplicative-decrease with a slow
// start, as TCP's: a pipe starts at its minimum and doubles on each
// coalesced "records are waiting" trigger until the target first
// throttles; after that it grows by a quarter. A throttle seen during a
// tick halves the limit at the tick, at most once per tick, and holds
// growth off for a cooldown, so one burst of 429s is one halving.
package scale

import (
	"sync"
	"time"
)

// Limiter hands out tokens up to a limit that may change while tokens are
// held (a lowered limit takes effect as tokens come back). Safe for
// concurrent use.
type Limiter struct {
	mu      sync.Mutex
	limit   int
	inUse   int
	changed chan struct{} // closed and replaced when a token may be free
	starved func()        // told when a TryAcquire found none; nil ignores
}

// NewLimiter returns a limiter of limit tokens (at least 1).
func NewLimiter(limit int) *Limiter {
	return &Limiter{limit: max(limit, 1), changed: make(chan struct{})}
}

// OnStarved sets what is told when a token was wanted and none was free:
// the controller's "records are waiting" trigger.
func (l *Limiter) OnStarved(f func()) {
	l.mu.Lock()
	l.starved = f
	l.mu.Unlock()
}

// TryAcquire takes a token if one is free.
func (l *Limiter) TryAcquire() bool {
	l.mu.Lock()
	if l.inUse < l.limit {
		l.inUse++
		l.mu.Unlock()
		return true
	}
	f := l.starved
	l.mu.Unlock()
	if f != nil {
		f()
	}
	return false
}

// Changed is closed when a token may have become free; take it again
// after each wake-up.
func (l *Limiter) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Acquire waits for a token; false when stop or done closed first.
func (l *Limiter) Acquire(stop, done <-chan struct{}) bool {
	for {
		ch := l.Changed()
		if l.TryAcquire() {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		case <-done:
			return false
		}
	}
}

// Release returns a token.
func (l *Limiter) Release() {
	l.mu.Lock()
	l.inUse--
	l.wake()
	l.mu.Unlock()
}

// SetLimit changes the limit (at least 1).
func (l *Limiter) SetLimit(n int) {
	l.mu.Lock()
	l.limit = max(n, 1)
	l.wake()
	l.mu.Unlock()
}

// Limit and InUse are the current figures.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// InUse is the tokens held now.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inUse
}

func (l *Limiter) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// Reasons of a change.
const (
	ReasonBacklog   = "backlog"   // batches waited for a token, the target healthy
	ReasonThrottled = "throttled" // the target throttled or timed out
)

// Change is one move of the limit.
type Change struct {
	From, To int
	Reason   string
	At       time.Time
}

// Policy shapes a Controller; zero values take the defaults.
type Policy struct {
	Min, Max int
	// Start is the first limit (default Min).
	Start int
	// UpEvery is the least time between two raises (default 100 ms): the
	// triggers coalesce, so a burst of waiting batches is one raise.
	UpEvery time.Duration
	// Cooldown after a throttle during which the limit is not raised
	// (default 5 s).
	Cooldown time.Duration
}

// Controller moves a Limiter's limit. Safe for concurrent use.
type Controller struct {
	mu        sync.Mutex
	p         Policy
	lim       *Limiter
	cur       int
	slowStart bool
	throttled bool // since the last tick
	lastDown  time.Time
	lastUp    time.Time
	last      *Change
	onChange  func(Change)
}

// NewController returns a controller of lim (its limit set to the
// policy's start), telling onChange (if not nil) of every change.
func NewController(lim *Limiter, p Policy, onChange func(Change)) *Controller {
	p.Min = max(p.Min, 1)
	p.Max = max(p.Max, p.Min)
	if p.Start <= 0 {
		p.Start = p.Min
	}
	p.Start = min(max(p.Start, p.Min), p.Max)
	if p.UpEvery <= 0 {
		p.UpEvery = 100 * time.Millisecond
	}
	if p.Cooldown <= 0 {
		p.Cooldown = 5 * time.Second
	}
	c := &Controller{p: p, lim: lim, cur: p.Start, slowStart: true, onChange: onChange}
	lim.SetLimit(p.Start)
	return c
}

// Throttled records that the target throttled (429, 503, Retry-After) or
// timed out; the next Tick halves the limit.
func (c *Controller) Throttled() {
	c.mu.Lock()
	c.throttled = true
	c.mu.Unlock()
}

// Starved is the trigger: a batch waited for a token at now. The limit
// grows unless it grew within UpEvery or the target throttled within the
// cooldown (or since the last tick).
func (c *Controller) Starved(now time.Time) {
	c.mu.Lock()
	if c.cur >= c.p.Max || c.throttled || now.Sub(c.lastUp) < c.p.UpEvery || (!c.lastDown.IsZero() && now.Sub(c.lastDown) < c.p.Cooldown) {
		c.mu.Unlock()
		return
	}
	next := c.cur * 2
	if !c.slowStart {
		next = c.cur + max(1, c.cur/4)
	}
	c.lastUp = now
	ch := c.set(min(next, c.p.Max), ReasonBacklog, now)
	c.mu.Unlock()
	c.tell(ch)
}

// Tick is the periodic check: a throttle since the last tick halves the
// limit (not below the minimum) and ends the slow start.
func (c *Controller) Tick(now time.Time) {
	c.mu.Lock()
	if !c.throttled {
		c.mu.Unlock()
		return
	}
	c.throttled = false
	c.slowStart = false
	c.lastDown = now
	ch := c.set(max(c.cur/2, c.p.Min), ReasonThrottled, now)
	c.mu.Unlock()
	c.tell(ch)
}

// set moves the limit; c.mu is held. It returns the change to tell, if
// any.
func (c *Controller) set(n int, reason string, now time.Time) *Change {
	if n == c.cur {
		return nil
	}
	ch := &Change{From: c.cur, To: n, Reason: reason, At: now}
	c.cur = n
	c.last = ch
	c.lim.SetLimit(n)
	return ch
}

func (c *Controller) tell(ch *Change) {
	if ch != nil && c.onChange != nil {
		c.onChange(*ch)
	}
}

// State is the current limit, the bounds and the last change (nil
// before any).
func (c *Controller) State() (cur, lo, hi int, last *Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil {
		l := *c.last
		last = &l
	}
	return c.cur, c.p.Min, c.p.Max, last
}
