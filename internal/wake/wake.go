// Package wake watches the partitions of sleeping pipes and tells each one
// when a record reaches it.
//
// An idle pipe costs a Kafka client of its own: a group membership that
// heartbeats, a fetch that long-polls, goroutines and buffers. A pipe that
// has seen no record for a while leaves its group and hands its committed
// offsets to a Watcher instead: one direct consumer per cluster reading
// every sleeping pipe's partitions from those offsets in one fetch session.
// The first record at or past a pipe's offset wakes it; the pipe then joins
// its group again and reads that record itself. The watcher discards what it
// reads: it only has to know that something is there.
package wake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Offsets are a sleeping pipe's offsets: per topic and partition, the offset
// of the first record it has not delivered, for the partitions it watches
// (a member that shared its group watches its own share).
type Offsets map[string]map[int32]int64

// Watcher is one cluster's direct consumer of sleeping pipes' partitions.
// Create it with New; Close stops it.
type Watcher struct {
	cl  *kgo.Client
	adm *kadm.Client
	log *slog.Logger

	// checkEvery is how often watched topics are checked for new or
	// deleted partitions.
	checkEvery time.Duration

	mu    sync.Mutex
	parts map[tp]*part
	all   map[*watch]struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

type tp struct {
	topic     string
	partition int32
}

// part is a watched partition: read from pos, the least offset of its
// watches not yet reached.
type part struct {
	pos     int64
	watches map[*watch]int64 // each watch's offset on this partition
}

type watch struct {
	offsets    Offsets
	partitions map[string]int // each topic's partition count when the watch began
	wake       func(reason string)
	fired      bool
}

// DefaultCheckInterval is how often a Watcher looks for partitions added to
// or topics deleted from what it watches.
const DefaultCheckInterval = 30 * time.Second

// New creates a watcher on the cluster the options reach (brokers, auth)
// and starts its poll loop. checkEvery is how often watched topics are
// checked for added partitions (0: DefaultCheckInterval).
func New(opts []kgo.Opt, log *slog.Logger, checkEvery time.Duration) (*Watcher, error) {
	if checkEvery <= 0 {
		checkEvery = DefaultCheckInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		// A second of long poll: a fetch in flight answers as soon as a
		// record reaches any partition it asks for, but a partition added
		// to the session waits for it, and a pipe that just fell asleep
		// should hear of its next record within about a second.
		kgo.FetchMaxWait(time.Second),
		kgo.FetchMaxBytes(1 << 20),
		kgo.FetchMaxPartitionBytes(16 << 10),
		// As the pipes read: an aborted record wakes nobody.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// An offset gone from the log (retention) means the group will
		// reset to the log's start, so reading from there is what wakes it.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableClientMetrics(),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("wake: kafka client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{
		cl: cl, adm: kadm.NewClient(cl), log: log, checkEvery: checkEvery,
		parts: map[tp]*part{}, all: map[*watch]struct{}{},
		cancel: cancel, done: make(chan struct{}),
	}
	go w.run(ctx)
	return w, nil
}

// Close stops the poll loop and closes the client; watches still open are
// dropped without waking.
func (w *Watcher) Close() {
	w.cancel()
	<-w.done
	w.cl.Close()
}

// Watch watches offsets and calls wake once, from the watcher's goroutine,
// when a record at or past one of them arrives, when a topic of partitions
// (the topics' partition counts when the pipe fell asleep) gains a
// partition or is gone, or when the watcher cannot read a partition (the
// awake pipe shows why). wake must not block nor call the watcher. Stop ends the watch without
// waking; it is safe to call after wake.
func (w *Watcher) Watch(offsets Offsets, partitions map[string]int, wake func(reason string)) (stop func()) {
	wt := &watch{offsets: offsets, partitions: partitions, wake: wake}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all[wt] = struct{}{}
	add := map[string]map[int32]kgo.Offset{}
	var rewind map[string][]int32
	for topic, ps := range offsets {
		for p, off := range ps {
			k := tp{topic, p}
			pt := w.parts[k]
			if pt == nil {
				pt = &part{pos: off, watches: map[*watch]int64{}}
				w.parts[k] = pt
				addOffset(add, k, off)
			} else if off < pt.pos {
				// Read again from the earlier offset: what lies between
				// may be this pipe's undelivered records.
				pt.pos = off
				if rewind == nil {
					rewind = map[string][]int32{}
				}
				rewind[topic] = append(rewind[topic], p)
				addOffset(add, k, off)
			}
			pt.watches[wt] = off
		}
	}
	if rewind != nil {
		w.cl.RemoveConsumePartitions(rewind)
	}
	if len(add) > 0 {
		w.cl.AddConsumePartitions(add)
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.drop(wt)
	}
}

func addOffset(m map[string]map[int32]kgo.Offset, k tp, off int64) {
	if m[k.topic] == nil {
		m[k.topic] = map[int32]kgo.Offset{}
	}
	m[k.topic][k.partition] = kgo.NewOffset().At(off)
}

// Watching is the number of watches open, for tests and metrics.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.all)
}

// drop removes wt from every partition, and stops reading partitions no
// watch needs; w.mu is held.
func (w *Watcher) drop(wt *watch) {
	if _, ok := w.all[wt]; !ok {
		return
	}
	delete(w.all, wt)
	var remove map[string][]int32
	for topic, ps := range wt.offsets {
		for p := range ps {
			k := tp{topic, p}
			pt := w.parts[k]
			if pt == nil {
				continue
			}
			delete(pt.watches, wt)
			if len(pt.watches) == 0 {
				delete(w.parts, k)
				if remove == nil {
					remove = map[string][]int32{}
				}
				remove[topic] = append(remove[topic], p)
			}
		}
	}
	if remove != nil {
		w.cl.RemoveConsumePartitions(remove)
	}
}

// fire wakes wt once and drops it; w.mu is held.
func (w *Watcher) fire(wt *watch, reason string) {
	if wt.fired {
		return
	}
	wt.fired = true
	w.drop(wt)
	wt.wake(reason)
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	check := time.NewTicker(w.checkEvery)
	defer check.Stop()
	checked := make(chan struct{})
	go func() {
		// The partition check asks the cluster; it must not hold up the
		// poll loop, nor outlive it.
		defer close(checked)
		for {
			select {
			case <-ctx.Done():
				return
			case <-check.C:
				w.checkTopics(ctx)
			}
		}
	}()
	defer func() { <-checked }()
	for {
		fetches := w.cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			pt := w.parts[tp{topic, p}]
			if pt == nil {
				return
			}
			reason := fmt.Sprintf("cannot watch %s-%d: %v", topic, p, err)
			for wt := range pt.watches {
				w.fire(wt, reason)
			}
		})
		fetches.EachPartition(func(f kgo.FetchTopicPartition) {
			if len(f.Records) == 0 {
				return
			}
			k := tp{f.Topic, f.Partition}
			pt := w.parts[k]
			if pt == nil {
				return // removed since the fetch began
			}
			last := f.Records[len(f.Records)-1].Offset
			for wt, off := range pt.watches {
				if off <= last {
					w.fire(wt, fmt.Sprintf("a record arrived at %s-%d offset %d", f.Topic, f.Partition, last))
				}
			}
			if pt := w.parts[k]; pt != nil && last+1 > pt.pos {
				pt.pos = last + 1
			}
		})
		w.mu.Unlock()
	}
}

// checkTopics wakes the watches of topics that gained partitions (records
// there would go unseen) or are gone (the awake pipe says so).
func (w *Watcher) checkTopics(ctx context.Context) {
	w.mu.Lock()
	seen := map[string]bool{}
	for wt := range w.all {
		for t := range wt.partitions {
			seen[t] = true
		}
	}
	w.mu.Unlock()
	if len(seen) == 0 {
		return
	}
	topics := make([]string, 0, len(seen))
	for t := range seen {
		topics = append(topics, t)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := w.adm.ListTopics(ctx, topics...)
	if err != nil {
		w.log.Debug("cannot check sleeping pipes' topics", "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for wt := range w.all {
		for topic, n := range wt.partitions {
			d, ok := details[topic]
			switch {
			case !ok || d.Err != nil:
				w.fire(wt, fmt.Sprintf("topic %s cannot be described", topic))
			case len(d.Partitions) > n:
				w.fire(wt, fmt.Sprintf("topic %s has %d partitions now, %d before", topic, len(d.Partitions), n))
			}
			if wt.fired {
				break
			}
		}
	}
}
