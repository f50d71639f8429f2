package source

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testWindow is a window over records of the given keys ("" for none),
// at offsets 0, 1, ...
func testWindow(ordering string, keys ...string) *window {
	w := newWindow(ordering)
	for _, k := range keys {
		pushKey(w, k)
	}
	return w
}

func pushKey(w *window, key string) {
	r := &kgo.Record{Offset: int64(w.len())}
	if n := len(w.es); n > 0 {
		r.Offset = w.es[n-1].rec.Offset + 1
	}
	if key != "" {
		r.Key = []byte(key)
	}
	w.push(r, time.Time{})
}

// pickUpTo picks at most n records, returning them and the pick.
func pickUpTo(w *window, n int) ([]*entry, picked) {
	var es []*entry
	p := w.pick(func(e *entry) bool {
		if len(es) == n {
			return false
		}
		es = append(es, e)
		return true
	})
	return es, p
}

func offsets(es []*entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.rec.Offset)
	}
	return out
}

func wantOffsets(t *testing.T, what string, es []*entry, want ...int64) {
	t.Helper()
	if got := offsets(es); !slices.Equal(got, want) {
		t.Fatalf("%s: offsets %v, want %v", what, got, want)
	}
}

func TestWindowKeyTakesKeysByOldestRecord(t *testing.T) {
	w := testWindow(OrderingKey, "a", "b", "a", "c", "b")
	es, _ := pickUpTo(w, 10)
	wantOffsets(t, "everything free", es, 0, 2, 1, 4, 3)
}

func TestWindowKeyHoldsABusyKeyAndRedeliversItsRestFirst(t *testing.T) {
	w := testWindow(OrderingKey, "a", "b", "a", "c", "b")
	first, p := pickUpTo(w, 2)
	wantOffsets(t, "first batch", first, 0, 2)
	w.launch(p, first)
	second, p := pickUpTo(w, 1) // b in part: its offset 4 stays behind 1
	wantOffsets(t, "second batch", second, 1)
	w.launch(p, second)
	third, p := pickUpTo(w, 10)
	wantOffsets(t, "third batch (b busy)", third, 3)
	w.launch(p, third)
	pushKey(w, "a") // offset 5, behind a's batch in flight
	if es, _ := pickUpTo(w, 10); len(es) != 0 {
		t.Fatalf("picked %v while every key is busy", offsets(es))
	}

	// a's batch ends with offset 0 final and 2 not: 2 goes again, ahead
	// of 5.
	w.finish(first, func(i int) bool { return i == 0 })
	again, p := pickUpTo(w, 10)
	wantOffsets(t, "a again", again, 2, 5)
	if k := w.doneHead(); k != 1 {
		t.Fatalf("done head %d, want 1 (offset 1 is in flight)", k)
	}
	w.drop(1)
	w.launch(p, again)

	w.finish(second, func(int) bool { return true })
	rest, _ := pickUpTo(w, 10)
	wantOffsets(t, "b's rest once its first ended", rest, 4)
	if k := w.doneHead(); k != 1 {
		t.Fatalf("done head %d, want 1 (offset 2 is in flight again)", k)
	}
}

func TestWindowKeyCancelLeavesItAsItWas(t *testing.T) {
	w := testWindow(OrderingKey, "a", "b", "c")
	es, p := pickUpTo(w, 2)
	wantOffsets(t, "picked", es, 0, 1)
	w.cancel(p)
	es, _ = pickUpTo(w, 10)
	wantOffsets(t, "after cancel", es, 0, 1, 2)
}

func TestWindowKeylessRecordIsABarrier(t *testing.T) {
	w := testWindow(OrderingKey, "a", "", "b")
	es, p := pickUpTo(w, 10)
	wantOffsets(t, "before the barrier", es, 0)
	w.launch(p, es)
	if more, _ := pickUpTo(w, 10); len(more) != 0 {
		t.Fatalf("picked %v past a barrier whose predecessors are in flight", offsets(more))
	}
	w.finish(es, func(int) bool { return true })
	w.drop(w.doneHead())

	barrier, p := pickUpTo(w, 10)
	wantOffsets(t, "the barrier, alone", barrier, 1)
	w.launch(p, barrier)
	if more, _ := pickUpTo(w, 10); len(more) != 0 {
		t.Fatalf("picked %v while the barrier is in flight", offsets(more))
	}
	w.finish(barrier, func(int) bool { return false })
	barrier, p = pickUpTo(w, 10)
	wantOffsets(t, "the barrier again, unfinished", barrier, 1)
	w.launch(p, barrier)
	w.finish(barrier, func(int) bool { return true })
	w.drop(w.doneHead())
	es, _ = pickUpTo(w, 10)
	wantOffsets(t, "after the barrier", es, 2)
}

func TestWindowNoneTakesAnythingFreeUnfinishedFirst(t *testing.T) {
	w := testWindow(OrderingNone, "a", "a", "", "a")
	first, p := pickUpTo(w, 2)
	wantOffsets(t, "first", first, 0, 1)
	w.launch(p, first)
	second, p := pickUpTo(w, 10)
	wantOffsets(t, "second: same key and no key alike", second, 2, 3)
	w.launch(p, second)
	w.finish(first, func(i int) bool { return i == 0 })
	again, _ := pickUpTo(w, 10)
	wantOffsets(t, "unfinished", again, 1)
}

func TestWindowForgetsKeysWithNothingLeft(t *testing.T) {
	w := testWindow(OrderingKey, "a", "b")
	es, p := pickUpTo(w, 10)
	w.launch(p, es)
	w.finish(es, func(int) bool { return true })
	w.drop(w.doneHead())
	if len(w.keys) != 0 || w.len() != 0 || w.ready.Len() != 0 {
		t.Fatalf("after every record ended: %d keys, %d records, %d ready", len(w.keys), w.len(), w.ready.Len())
	}
}
