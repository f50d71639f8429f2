package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
)

func lagOf(parts map[int32]int64) observe.Lag {
	var l observe.Lag
	for p := int32(0); p < int32(len(parts)); p++ {
		l.Partitions = append(l.Partitions, observe.Partition{Topic: "t", Partition: p, Lag: parts[p]})
		l.Total += parts[p]
	}
	return l
}

func vals(s []*int64) string {
	out := ""
	for _, v := range s {
		if v == nil {
			out += "- "
		} else {
			out += fmt.Sprint(*v) + " "
		}
	}
	return out
}

func TestSeriesPlacesPointsByStep(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0) // a step boundary
	var p Pipe
	p.AddLag(t0, lagOf(map[int32]int64{0: 5, 1: 7}))
	p.AddLag(t0.Add(3*time.Second), lagOf(map[int32]int64{0: 4, 1: 6})) // same step: replaces
	p.AddLag(t0.Add(20*time.Second), lagOf(map[int32]int64{0: 1, 1: 0}))
	p.AddFlow(t0.Add(time.Second), 10, 0)
	p.AddFlow(t0.Add(9*time.Second), 5, 2)
	p.AddFlow(t0.Add(25*time.Second), 3, 0)

	h := p.Series(t0.Add(25*time.Second), 40*time.Second)
	if h.StepSeconds != 10 || len(h.Lag) != 4 {
		t.Fatalf("step %d, %d points; want 10 and 4", h.StepSeconds, len(h.Lag))
	}
	if want := t0.Add(-10 * time.Second).UTC(); !h.Start.Equal(want) {
		t.Fatalf("start %s, want %s", h.Start, want)
	}
	if got := vals(h.Lag); got != "- 10 - 1 " {
		t.Fatalf("lag %q", got)
	}
	if got := vals(h.Partitions[1].Lag); got != "- 6 - 0 " {
		t.Fatalf("partition 1 lag %q", got)
	}
	if fmt.Sprint(h.Delivered, h.Failed) != "[0 15 0 3] [0 2 0 0]" {
		t.Fatalf("delivered %v failed %v", h.Delivered, h.Failed)
	}
}

func TestRingForgetsWhatIsOlderThanTheWindow(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	var p Pipe
	p.AddLag(t0, lagOf(map[int32]int64{0: 9}))
	p.AddFlow(t0, 4, 0)
	// An hour later the same slot is current again: the old figures
	// must not show as the new step's.
	later := t0.Add(Window)
	h := p.Series(later, Window)
	if len(h.Lag) != Slots {
		t.Fatalf("%d points, want %d", len(h.Lag), Slots)
	}
	for i, v := range h.Lag {
		if v != nil {
			t.Fatalf("point %d holds %d from an hour ago", i, *v)
		}
	}
	if h.Delivered[Slots-1] != 0 {
		t.Fatalf("delivered %d from an hour ago", h.Delivered[Slots-1])
	}
	p.AddFlow(later, 1, 0)
	if h := p.Series(later, Window); h.Delivered[Slots-1] != 1 {
		t.Fatalf("delivered %d, want 1: the reused slot must start from 0", h.Delivered[Slots-1])
	}
}

func TestPartitionsAreBoundedAndFollowTheTopics(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	var p Pipe
	many := map[int32]int64{}
	for i := range int32(MaxPartitions + 10) {
		many[i] = 1
	}
	p.AddLag(t0, lagOf(many))
	h := p.Series(t0, Step)
	if len(h.Partitions) != MaxPartitions || !h.PartitionsTruncated || *h.Lag[0] != int64(MaxPartitions+10) {
		t.Fatalf("%d partitions kept (truncated %v), total %d", len(h.Partitions), h.PartitionsTruncated, *h.Lag[0])
	}
	// The topics change: partitions no longer measured are dropped.
	p.AddLag(t0.Add(Step), observe.Lag{Total: 2, Partitions: []observe.Partition{{Topic: "u", Partition: 0, Lag: 2}}})
	h = p.Series(t0.Add(Step), 2*Step)
	if len(h.Partitions) != 1 || h.Partitions[0].Topic != "u" || h.PartitionsTruncated {
		t.Fatalf("partitions %+v truncated %v", h.Partitions, h.PartitionsTruncated)
	}
	if got := vals(h.Partitions[0].Lag); got != "- 2 " {
		t.Fatalf("new partition's lag %q: before it was measured it has no points", got)
	}
}

func TestCoarsenKeepsTheLargest(t *testing.T) {
	v := func(n int64) *int64 { return &n }
	got := vals(Coarsen([]*int64{v(1), v(5), nil, nil, nil, v(2), v(3)}, 3))
	if got != "5 2 3 " {
		t.Fatalf("coarsened %q", got)
	}
}
