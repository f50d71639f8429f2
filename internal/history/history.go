// Package history keeps a pipe's recent lag and throughput in fixed rings,
// so the console can chart the last hour without a Prometheus server. A
// ring has one slot per Step over Window: memory is bounded however long
// the pipe runs, and a slot is reused once its time has passed. It does no
// I/O and keeps no clock: callers pass the time, and guard a Pipe with
// their own lock.
package history

import (
	"cmp"
	"slices"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
)

const (
	// Step is one slot's span. The lag monitor measures every 10 s by
	// default, so a finer step would only add empty slots.
	Step = 10 * time.Second
	// Window is how far back a ring reaches.
	Window = time.Hour
	// Slots is the number of slots in a ring.
	Slots = int(Window / Step)
	// MaxPartitions bounds the partitions whose lag a pipe keeps one by
	// one (360 slots of 8 bytes each, about 2.9 KiB a partition); a pipe
	// with more keeps the total for all and the first MaxPartitions by
	// topic and number.
	MaxPartitions = 256
)

// stepOf is the index of the step holding t, counted from the Unix epoch.
func stepOf(t time.Time) int64 { return t.Unix() / int64(Step/time.Second) }

// partKey names a partition.
type partKey struct {
	topic     string
	partition int32
}

// Pipe is one pipe's history. The zero value is empty and ready. One
// slot per step holds that step's latest lag and its flow; 360 slots take
// about 8.6 KiB, and 2.9 KiB more per partition.
type Pipe struct {
	// step[i] is the step slot i holds; 0 means none (the epoch's first
	// step is never current). Moving a slot to a new step clears it.
	step      [Slots]int64
	lagTotal  [Slots]int64 // -1: no measurement in the step
	delivered [Slots]int32 // records per step: 2^31 in 10 s is out of reach
	failed    [Slots]int32
	// parts are the partitions' lag rings, -1 where a step had no
	// measurement of the partition.
	parts     map[partKey]*[Slots]int64
	truncated bool
}

// slot returns the index of at's step, clearing the slot if it held an
// older step.
func (p *Pipe) slot(at time.Time) int {
	s := stepOf(at)
	i := int(s % int64(Slots))
	if p.step[i] != s {
		p.step[i], p.lagTotal[i], p.delivered[i], p.failed[i] = s, -1, 0, 0
		for _, ring := range p.parts {
			ring[i] = -1
		}
	}
	return i
}

// AddLag records one lag measurement taken at at. A later measurement in
// the same step replaces it: the chart shows the latest figure of each
// step. Partitions not in the measurement are dropped (the pipe's topics
// changed), so the map never holds more than MaxPartitions.
func (p *Pipe) AddLag(at time.Time, lag observe.Lag) {
	i := p.slot(at)
	p.lagTotal[i] = lag.Total

	parts := slices.Clone(lag.Partitions)
	slices.SortFunc(parts, func(a, b observe.Partition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	p.truncated = len(parts) > MaxPartitions
	if p.truncated {
		parts = parts[:MaxPartitions]
	}
	seen := make(map[partKey]bool, len(parts))
	if p.parts == nil {
		p.parts = map[partKey]*[Slots]int64{}
	}
	for _, pl := range parts {
		k := partKey{pl.Topic, pl.Partition}
		seen[k] = true
		ring := p.parts[k]
		if ring == nil {
			ring = new([Slots]int64)
			for j := range ring {
				ring[j] = -1
			}
			p.parts[k] = ring
		}
		ring[i] = pl.Lag
	}
	for k := range p.parts {
		if !seen[k] {
			delete(p.parts, k)
		}
	}
}

// AddFlow counts records that left the pipe at at: delivered, or failed
// (handed to the failure destination or discarded).
func (p *Pipe) AddFlow(at time.Time, delivered, failed int) {
	i := p.slot(at)
	p.delivered[i] = addClamped(p.delivered[i], delivered)
	p.failed[i] = addClamped(p.failed[i], failed)
}

func addClamped(v int32, n int) int32 {
	return int32(min(int64(v)+int64(n), 1<<31-1))
}

// Series returns the last window of history up to now, oldest first, one
// point per Step; window is clamped to (0, Window].
func (p *Pipe) Series(now time.Time, window time.Duration) observe.History {
	n := int(window / Step)
	if n <= 0 || n > Slots {
		n = Slots
	}
	last := stepOf(now)
	first := last - int64(n) + 1
	h := observe.History{
		StepSeconds:         int(Step / time.Second),
		Start:               time.Unix(first*int64(Step/time.Second), 0).UTC(),
		Lag:                 make([]*int64, n),
		Delivered:           make([]int64, n),
		Failed:              make([]int64, n),
		PartitionsTruncated: p.truncated,
	}
	keys := make([]partKey, 0, len(p.parts))
	for k := range p.parts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	h.Partitions = make([]observe.PartitionHistory, len(keys))
	for j, k := range keys {
		h.Partitions[j] = observe.PartitionHistory{Topic: k.topic, Partition: k.partition, Lag: make([]*int64, n)}
	}
	for x := range n {
		s := first + int64(x)
		i := int(s % int64(Slots))
		if p.step[i] != s {
			continue
		}
		if v := p.lagTotal[i]; v >= 0 {
			h.Lag[x] = &v
		}
		for j, k := range keys {
			if v := p.parts[k][i]; v >= 0 {
				h.Partitions[j].Lag[x] = &v
			}
		}
		h.Delivered[x], h.Failed[x] = int64(p.delivered[i]), int64(p.failed[i])
	}
	return h
}

// Coarsen merges every k points of a lag series into one, the largest
// (a sparkline should show a spike, not average it away); a group with
// no measurement stays nil. A last, shorter group is kept.
func Coarsen(lag []*int64, k int) []*int64 {
	if k <= 1 {
		return lag
	}
	out := make([]*int64, 0, (len(lag)+k-1)/k)
	for i := 0; i < len(lag); i += k {
		var m *int64
		for _, v := range lag[i:min(i+k, len(lag))] {
			if v != nil && (m == nil || *v > *m) {
				m = v
			}
		}
		out = append(out, m)
	}
	return out
}
