package source

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// chunk is the records of one fetch, with when they arrived: the batching
// window runs from the arrival of a batch's first record.
type chunk struct {
	recs []*kgo.Record
	at   time.Time
}

// worker owns one partition: it cuts batches from the partition's buffer
// and runs them through the handler one at a time, so the partition's
// records are delivered in offset order with at most one batch in flight.
type worker struct {
	src *Source
	tp  topicPartition

	mu     sync.Mutex
	chunks []chunk // buffered records, oldest first; chunks[0].recs[head:] are pending
	head   int
	bytes  int  // record bytes buffered, including the batch in flight
	limit  int  // the partition's byte share when last pushed
	paused bool // fetching paused because bytes reached limit

	notify chan struct{} // a push happened; capacity 1
	quit   chan struct{} // closed to stop after the current attempt
	done   chan struct{} // closed when run returns
	cancel context.CancelFunc
	once   sync.Once
}

func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 64 // 64: the record's fixed fields and pointers
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// push appends fetched records and pauses the partition's fetching when
// its buffer is full, or when another fetch as large as this one would
// take it past three quarters of the budget: fetches arrive whole, so a
// stuck partition paused only at that cap holds it plus one fetch, which
// for a small budget is all of it and closes the poll gate on every other
// partition. Pause and resume happen under w.mu so that they reach the
// client in the order w.paused changed.
func (w *worker) push(recs []*kgo.Record, at time.Time, limit int) {
	n := 0
	for _, r := range recs {
		n += recordBytes(r)
	}
	w.src.buffered.Add(int64(n))
	w.mu.Lock()
	w.chunks = append(w.chunks, chunk{recs: recs, at: at})
	w.bytes += n
	w.limit = limit
	if !w.paused && (w.bytes >= limit || w.bytes+n > 3*w.src.cfg.BufferBytes/4) {
		w.paused = true
		w.src.cl.PauseFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// stop asks the worker to stop after its current attempt, and cancels that
// attempt after grace.
func (w *worker) stop(grace time.Duration) {
	w.once.Do(func() {
		close(w.quit)
		if grace <= 0 {
			w.cancel()
			return
		}
		t := time.AfterFunc(grace, w.cancel)
		go func() {
			<-w.done
			t.Stop()
			w.cancel()
		}()
	})
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	defer func() {
		// What a stopped partition still holds leaves the budget with it.
		w.mu.Lock()
		w.src.freed(w.bytes)
		w.bytes = 0
		w.chunks = nil
		w.mu.Unlock()
	}()
	for {
		b, ok := w.next(ctx)
		if !ok {
			return
		}
		lim := w.src.cfg.Limiter
		if lim != nil && !lim.Acquire(w.quit, ctx.Done()) {
			return
		}
		w.src.cp.cut(b)
		res := w.src.handler(ctx, b)
		if lim != nil {
			lim.Release()
		}
		n := min(res.Final(), b.Len())
		if n > 0 {
			w.src.markDone(b, n)
			w.release(n)
		}
		if n == b.Len() {
			continue
		}
		// The rest is not final: it is cut again, from its first record,
		// unless the partition is stopping, in which case its next owner
		// redelivers it.
		select {
		case <-w.quit:
			return
		default:
		}
		if n == 0 {
			// A handler answers no progress only when asked to stop;
			// anything else is a bug that must neither lose nor spin on
			// the batch.
			w.src.log.Error("handler returned a batch unfinished without stopping; delivering it again", "topic", w.tp.topic,
				"partition", w.tp.partition, "first_offset", b.FirstOffset(), "err", res.Err())
			select {
			case <-time.After(time.Second):
			case <-w.quit:
				return
			}
		}
	}
}

// next waits for and cuts the next batch: at BatchSize records, before the
// encoded size would pass MaxBatchBytes, when the window since the first
// record's arrival has passed, or at once when the buffer is full (no more
// records can arrive until it drains). It returns false when stopping.
func (w *worker) next(ctx context.Context) (*batch.Batch, bool) {
	cfg := &w.src.cfg
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-w.quit:
			return nil, false
		case <-ctx.Done():
			return nil, false
		default:
		}
		w.mu.Lock()
		b, first, complete := w.cut()
		paused := w.paused
		w.mu.Unlock()
		if b != nil {
			wait := cfg.Window - time.Since(first)
			if complete || paused || wait <= 0 {
				return b, true
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-w.notify:
			case <-timer.C:
			case <-w.quit:
				return nil, false
			case <-ctx.Done():
				return nil, false
			}
			continue
		}
		select {
		case <-w.notify:
		case <-w.quit:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// cut builds the largest batch the pending records allow, without removing
// them (they leave the buffer in release, after the outcome). complete says
// the batch cannot grow: it hit the count or size cap. w.mu is held.
func (w *worker) cut() (b *batch.Batch, first time.Time, complete bool) {
	cfg := &w.src.cfg
	if len(w.chunks) == 0 {
		return nil, time.Time{}, false
	}
	first = w.chunks[0].at
	b = batch.New(nil, w.quit)
	b.Topic, b.Partition = w.tp.topic, w.tp.partition
	b.Size = cfg.EnvelopeSize(w.tp.topic, w.tp.partition)
	head := w.head
	for _, c := range w.chunks {
		for _, r := range c.recs[head:] {
			sz := cfg.SizeOf(r)
			if b.Size+sz > cfg.MaxBatchBytes {
				if len(b.Records) == 0 {
					// Alone over the limit: a batch of its own that the
					// handler fails, rather than a partition stuck forever.
					b.Records = append(b.Records, r)
					b.Size += sz
					b.Oversized = true
				}
				return b, first, true
			}
			b.Records = append(b.Records, r)
			b.Size += sz
			if len(b.Records) == cfg.BatchSize {
				return b, first, true
			}
		}
		head = 0
	}
	return b, first, false
}

// release drops the first n pending records after their outcome, and
// resumes fetching if the buffer drained below half its share.
func (w *worker) release(n int) {
	w.mu.Lock()
	freed := 0
	for n > 0 {
		c := &w.chunks[0]
		take := min(n, len(c.recs)-w.head)
		for _, r := range c.recs[w.head : w.head+take] {
			freed += recordBytes(r)
		}
		w.head += take
		n -= take
		if w.head == len(c.recs) {
			w.chunks[0] = chunk{}
			w.chunks = w.chunks[1:]
			w.head = 0
		}
	}
	w.freedLocked(freed)
	w.mu.Unlock()
}

// freedLocked returns the bytes of records that left the partition and
// resumes its fetching if the buffer drained below half its share; w.mu
// is held.
func (w *worker) freedLocked(freed int) {
	w.bytes -= freed
	w.src.freed(freed)
	if w.paused && w.bytes < w.limit/2 {
		w.paused = false
		w.src.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
}
