package source

import (
	"container/heap"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// entry is one record of a keyed worker's window.
type entry struct {
	rec      *kgo.Record
	at       time.Time // when its fetch arrived
	q        *keyQueue // its key's queue in KEY order; nil otherwise
	inFlight bool
	done     bool // its outcome is final
}

// keyQueue is one key's records of a KEY window that no batch holds, in
// offset order. While a batch holds records of the key (busy), none of
// the rest may go.
type keyQueue struct {
	key     string
	pending []*entry
	busy    bool
}

// window is a KEY or NONE worker's records from the oldest not final on,
// in offset order, and what may go next. It keeps that incrementally —
// per key queues, and a heap of the keys free to go by their oldest
// record — so a pick costs the records it takes, not the window's length
// (rescanning a 10,000-record window per batch made KEY order CPU-bound).
//
// In KEY order a record without a key is a barrier: records after it are
// not admitted to their keys until it is final, and it goes alone once
// every record before it is.
type window struct {
	keyed    bool
	es       []*entry // offset order; the final head is dropped
	admitted int      // es[:admitted] are queued (or in flight, or final)

	keys  map[string]*keyQueue // KEY: keys with records pending or in flight
	ready readyHeap            // KEY: keys with records pending, none in flight
	free  []*entry             // NONE: records no batch holds
}

func newWindow(ordering string) *window {
	return &window{keyed: ordering == OrderingKey, keys: map[string]*keyQueue{}}
}

func (w *window) len() int { return len(w.es) }

// push appends a record (the next offset of the partition).
func (w *window) push(rec *kgo.Record, at time.Time) {
	w.es = append(w.es, &entry{rec: rec, at: at})
	w.admit()
}

// admit queues the records not yet queued, up to a barrier.
func (w *window) admit() {
	for ; w.admitted < len(w.es); w.admitted++ {
		e := w.es[w.admitted]
		if !w.keyed {
			w.free = append(w.free, e)
			continue
		}
		if e.rec.Key == nil {
			return
		}
		q := w.keys[string(e.rec.Key)]
		if q == nil {
			q = &keyQueue{key: string(e.rec.Key)}
			w.keys[q.key] = q
		}
		e.q = q
		q.pending = append(q.pending, e)
		if len(q.pending) == 1 && !q.busy {
			heap.Push(&w.ready, q)
		}
	}
}

// picked is what a pick took, to launch or cancel.
type picked struct {
	queues []*keyQueue // KEY: the keys taken from, in order
	counts []int       // KEY: how many of each key's pending records
	n      int         // NONE: how many of the free records
}

// pick offers take the records that may go now, in the order a batch
// should take them, until take refuses one: in NONE order the free
// records; in KEY order, key by key by their oldest record, each key's
// records in offset order (the last key taken may be taken in part), or
// a barrier alone. Nothing changes until launch; cancel undoes the pick.
func (w *window) pick(take func(*entry) bool) picked {
	var p picked
	if !w.keyed {
		for _, e := range w.free {
			if !take(e) {
				break
			}
			p.n++
		}
		return p
	}
	if w.admitted == 0 && len(w.es) > 0 {
		// A barrier at the head: everything before it is final.
		if e := w.es[0]; e.rec.Key == nil && !e.inFlight {
			take(e)
		}
		return p
	}
	for w.ready.Len() > 0 {
		q := heap.Pop(&w.ready).(*keyQueue)
		n := 0
		for _, e := range q.pending {
			if !take(e) {
				break
			}
			n++
		}
		if n == 0 {
			heap.Push(&w.ready, q)
			break
		}
		p.queues = append(p.queues, q)
		p.counts = append(p.counts, n)
		if n < len(q.pending) {
			break
		}
	}
	return p
}

// launch marks what p took (es, as take was given them) in flight.
func (w *window) launch(p picked, es []*entry) {
	for _, e := range es {
		e.inFlight = true
	}
	if !w.keyed {
		clear(w.free[:p.n])
		w.free = w.free[p.n:]
		return
	}
	for i, q := range p.queues {
		clear(q.pending[:p.counts[i]])
		q.pending = q.pending[p.counts[i]:]
		q.busy = true
	}
}

// cancel returns what p took to the window, as if never picked.
func (w *window) cancel(p picked) {
	for _, q := range p.queues {
		heap.Push(&w.ready, q)
	}
}

// finish takes a launched batch's records back, final(i) telling whether
// the i-th has a final outcome. The others go back ahead of their key's
// (or the window's) other records and will be taken again.
func (w *window) finish(es []*entry, final func(i int) bool) {
	var redo []*entry
	for i, e := range es {
		e.inFlight = false
		if final(i) {
			e.done = true
		} else {
			redo = append(redo, e)
		}
	}
	if !w.keyed {
		if len(redo) > 0 {
			w.free = append(redo, w.free...)
		}
		return
	}
	// es is in offset order, so each key's unfinished records are too.
	for i := len(redo) - 1; i >= 0; i-- {
		if q := redo[i].q; q != nil {
			q.pending = append(q.pending, nil)
			copy(q.pending[1:], q.pending)
			q.pending[0] = redo[i]
		}
	}
	for _, e := range es {
		q := e.q
		if q == nil || !q.busy {
			continue
		}
		q.busy = false
		if len(q.pending) > 0 {
			heap.Push(&w.ready, q)
		} else {
			delete(w.keys, q.key)
		}
	}
}

// doneHead is how many records at the head of the window are final.
func (w *window) doneHead() int {
	k := 0
	for k < len(w.es) && w.es[k].done {
		k++
	}
	return k
}

// drop removes the first k records (final) and admits what a barrier
// among them held back.
func (w *window) drop(k int) {
	clear(w.es[:k])
	w.es = w.es[k:]
	w.admitted = max(w.admitted-k, 0)
	w.admit()
}

// readyHeap is the keys free to go, oldest first record first.
type readyHeap []*keyQueue

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	return h[i].pending[0].rec.Offset < h[j].pending[0].rec.Offset
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(*keyQueue)) }
func (h *readyHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return q
}
