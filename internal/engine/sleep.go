package engine

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/source"
	"github.com/sluice-dev/sluice/internal/wake"
)

// DefaultSleepAfter is Tuning.SleepAfter's default: long enough that a
// pipe with a record every few seconds never leaves its group, short
// enough that a process with many quiet pipes is mostly asleep.
const DefaultSleepAfter = time.Minute

// sleepAfter is the tuning's SleepAfter with its default; 0 never sleeps.
func (t Tuning) sleepAfter() time.Duration {
	switch {
	case t.SleepAfter < 0:
		return 0
	case t.SleepAfter == 0:
		return DefaultSleepAfter
	}
	return t.SleepAfter
}

// watchers are the engine's wake.Watchers, one per Kafka connection (the
// same key runners use): made when a pipe on it falls asleep, closed by
// the reconcile that finds it watching nothing, and all closed when the
// engine stops.
type watchers struct {
	mu sync.Mutex
	m  map[string]*wake.Watcher
}

// watch watches offsets with the connection's watcher, making it if need
// be; under ws.mu, so closeIdle cannot close it in between.
func (ws *watchers) watch(e *Engine, key string, conn connection, idle *source.Idle, fn func(string)) (stop func(), err error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[key]
	if w == nil {
		w, err = wake.New(conn.clientOpts(), e.log.With("watcher", conn.brokers), e.cfg.Tuning.MetadataMaxAge)
		if err != nil {
			return nil, err
		}
		if ws.m == nil {
			ws.m = map[string]*wake.Watcher{}
		}
		ws.m[key] = w
	}
	return w.Watch(idle.Offsets, idle.Partitions, fn), nil
}

// closeIdle closes the watchers no sleeping pipe uses: a cluster whose
// pipes all woke, or a connection that changed.
func (ws *watchers) closeIdle() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for k, w := range ws.m {
		if w.Watching() == 0 {
			w.Close()
			delete(ws.m, k)
		}
	}
}

func (ws *watchers) closeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for k, w := range ws.m {
		w.Close()
		delete(ws.m, k)
	}
}

// sleep holds the runner between an idle source and the record that wakes
// it: the pipe is out of its group and one shared fetch per cluster
// watches its offsets. It returns false when ctx ended first. If the
// watcher cannot be made, the pipe stays awake: it returns true at once.
func (r *runner) sleep(ctx context.Context, conn connection, idle *source.Idle) bool {
	woke := make(chan string, 1)
	stop, err := r.eng.watchers.watch(r.eng, r.connKey, conn, idle, func(reason string) {
		select {
		case woke <- reason:
		default:
		}
	})
	if err != nil {
		r.log.Warn("cannot watch the idle pipe's partitions; it stays awake", "err", err)
		return true
	}
	defer stop()
	since := time.Now()
	r.mu.Lock()
	r.group = nil // it is not in the group now; the next look is after waking
	r.asleep = &observe.Sleep{Since: since.UTC(), IdleFor: idle.For.Round(time.Second).String()}
	r.mu.Unlock()
	r.obs.m.Asleep.Set(1)
	r.log.Debug("pipe asleep: no records for a while; it left its consumer group and the next record wakes it", "idle_for", idle.For.Round(time.Second))
	defer func() {
		r.mu.Lock()
		r.asleep = nil
		r.mu.Unlock()
		r.obs.m.Asleep.Set(0)
	}()
	select {
	case <-ctx.Done():
		return false
	case reason := <-woke:
		r.obs.m.Wakeups.Inc()
		r.log.Debug("pipe woken", "reason", reason, "asleep_for", time.Since(since).Round(time.Millisecond))
		return true
	}
}

// sleepState is what describe shows of a sleeping runner; nil when awake.
func (r *runner) sleepState() *observe.Sleep {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.asleep == nil {
		return nil
	}
	s := *r.asleep
	return &s
}

// Sleeping is how many of the engine's runners sleep now.
func (e *Engine) Sleeping() int {
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.runners))
	for _, r := range e.runners {
		rs = append(rs, r)
	}
	e.mu.Unlock()
	n := 0
	for _, r := range rs {
		if r.sleepState() != nil {
			n++
		}
	}
	return n
}
