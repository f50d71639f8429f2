package source

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Orderings of Config.Ordering.
const (
	OrderingPartition = "PARTITION"
	OrderingKey       = "KEY"
	OrderingNone      = "NONE"
)

// keyedDone is a batch's outcome, back from its goroutine.
type keyedDone struct {
	entries []*entry
	b       *batch.Batch
	res     batch.Result
}

// runKeyed is the worker's loop for KEY and NONE ordering: batches of a
// partition are in flight together, each holding a token of the pipe's
// limiter. It keeps a window of the partition's oldest records (at most
// MaxInFlightRecords, so memory is bounded by count as the buffer bounds it
// by bytes). A batch takes records of the window that no batch holds; in
// KEY order only of keys no batch holds, each key's in offset order, and a
// record without a key waits for every record before it and holds back
// every record after it (see window). Commits advance
// to the first record of the window not final, whatever order batches end
// in; a record a batch left unfinished goes back to the window and is
// taken again, before any later record of its key.
func (w *worker) runKeyed(ctx context.Context) {
	cfg := &w.src.cfg
	lim := cfg.Limiter
	defer close(w.done)
	var (
		win      = newWindow(cfg.Ordering)
		inFlight int
		results  = make(chan keyedDone)
		wg       sync.WaitGroup
		timer    *time.Timer
	)
	defer func() {
		wg.Wait()
		if timer != nil {
			timer.Stop()
		}
		w.mu.Lock()
		w.src.freed(w.bytes)
		w.bytes = 0
		w.chunks = nil
		w.mu.Unlock()
	}()
	stopping := func() bool {
		select {
		case <-w.quit:
			return true
		case <-ctx.Done():
			return true
		default:
			return false
		}
	}
	finish := func(d keyedDone) {
		inFlight--
		if lim != nil {
			lim.Release()
		}
		n := min(d.res.Final(), d.b.Len())
		// Outcomes are per record: a final one past an unfinished one is
		// final too (the batch's retry stage decided so).
		win.finish(d.entries, func(i int) bool { return i < d.b.Len() && d.res.At(i).Status.Final() })
		if n == 0 && !stopping() {
			w.src.log.Error("handler returned a batch unfinished without stopping; delivering it again", "topic", w.tp.topic,
				"partition", w.tp.partition, "first_offset", d.b.FirstOffset(), "err", d.res.Err())
		}
		// Drop the final head of the window and commit past it.
		if k := win.doneHead(); k > 0 {
			freed := 0
			for _, e := range win.es[:k] {
				freed += recordBytes(e.rec)
			}
			last := win.es[k-1].rec
			next := last.Offset + 1
			if k < win.len() {
				next = win.es[k].rec.Offset
			}
			w.src.markOffset(w.tp, next, last, k)
			win.drop(k)
			w.freeBytes(freed)
		}
	}
	for {
		if stopping() {
			// Let the batches in flight end within the grace (ctx is
			// canceled after it), and keep what they finished.
			for inFlight > 0 {
				finish(<-results)
			}
			return
		}
		w.fill(win, cfg.MaxInFlightRecords)
		// Taken before any TryAcquire, as Limiter.Acquire does: a token
		// freed between a failed TryAcquire and taking the channel (the
		// raise that very failure triggered, say) would close a channel
		// never waited on, and the partition would sleep until some
		// other batch ended.
		var tokens <-chan struct{}
		if lim != nil {
			tokens = lim.Changed()
		}
		// Launch what the window and the tokens allow.
		var wait time.Duration
		for {
			b, entries, p, ripe := w.pick(win)
			if len(entries) == 0 {
				break
			}
			if d := cfg.Window - time.Since(ripe); d > 0 && len(entries) < cfg.BatchSize && !w.isPaused() && win.len() < cfg.MaxInFlightRecords {
				win.cancel(p)
				wait = d
				break
			}
			if lim != nil && !lim.TryAcquire() {
				win.cancel(p)
				break
			}
			win.launch(p, entries)
			// Offset order within the batch, as the target expects a
			// partition's records.
			sortByOffset(b.Records, entries)
			inFlight++
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := w.src.handler(ctx, b)
				results <- keyedDone{entries: entries, b: b, res: res}
			}()
		}
		var tick <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tick = timer.C
		}
		select {
		case d := <-results:
			finish(d)
		case <-w.notify:
		case <-tokens:
		case <-tick:
		case <-w.quit:
		case <-ctx.Done():
		}
	}
}

// pick builds the next batch from what the window lets go now (see
// window.pick), up to BatchSize and the payload limit. ripe is when the
// oldest record of it arrived, for the batching window.
//
// In KEY order the last key that does not fit fills the rest of the batch
// and its remainder waits for the next trip. (Keeping keys whole instead
// left batches half empty: twice the calls for the same records, which
// cost more than the remainders' extra trips; see the slow-target figures
// in the README.)
func (w *worker) pick(win *window) (*batch.Batch, []*entry, picked, time.Time) {
	cfg := &w.src.cfg
	b := batch.New(nil, w.quit)
	b.Topic, b.Partition = w.tp.topic, w.tp.partition
	b.Size = cfg.EnvelopeSize(w.tp.topic, w.tp.partition)
	var entries []*entry
	var ripe time.Time
	p := win.pick(func(e *entry) bool {
		if b.Oversized || len(entries) == cfg.BatchSize {
			return false
		}
		sz := cfg.SizeOf(e.rec)
		if b.Size+sz > cfg.MaxBatchBytes {
			if len(entries) > 0 {
				return false
			}
			b.Oversized = true
		}
		if len(entries) == 0 || e.at.Before(ripe) {
			ripe = e.at
		}
		b.Records = append(b.Records, e.rec)
		b.Size += sz
		entries = append(entries, e)
		return true
	})
	return b, entries, p, ripe
}

// sortByOffset sorts recs and es (the same records) by offset.
func sortByOffset(recs []*kgo.Record, es []*entry) {
	sort.Sort(byOffset{recs, es})
}

type byOffset struct {
	recs []*kgo.Record
	es   []*entry
}

func (s byOffset) Len() int           { return len(s.recs) }
func (s byOffset) Less(i, j int) bool { return s.recs[i].Offset < s.recs[j].Offset }
func (s byOffset) Swap(i, j int) {
	s.recs[i], s.recs[j] = s.recs[j], s.recs[i]
	s.es[i], s.es[j] = s.es[j], s.es[i]
}

// fill moves buffered records into the window, up to n records in it.
// Their bytes stay counted until they leave the window (freeBytes).
func (w *worker) fill(win *window, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for win.len() < n && len(w.chunks) > 0 {
		c := &w.chunks[0]
		take := min(n-win.len(), len(c.recs)-w.head)
		for _, r := range c.recs[w.head : w.head+take] {
			win.push(r, c.at)
		}
		w.head += take
		if w.head == len(c.recs) {
			w.chunks[0] = chunk{}
			w.chunks = w.chunks[1:]
			w.head = 0
		}
	}
}

// freeBytes returns the bytes of records that left the window, and
// resumes fetching if the buffer drained below half its share.
func (w *worker) freeBytes(freed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.freedLocked(freed)
}

func (w *worker) isPaused() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.paused
}

// markOffset marks next as tp's commit offset: the n records before it
// finished, the last of them epochOf (for its leader epoch).
func (s *Source) markOffset(tp topicPartition, next int64, epochOf *kgo.Record, n int) {
	s.done.add(tp, next, n)
	s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
		tp.topic: {tp.partition: {Epoch: epochOf.LeaderEpoch, Offset: next}},
	})
	select {
	case s.marked <- struct{}{}:
	default:
	}
}
