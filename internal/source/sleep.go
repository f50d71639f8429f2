package source

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Idle is what Run returns when the source stopped because it had nothing
// to do for Config.SleepAfter: every record it read is delivered and
// committed, and it left the group. Offsets are, for each partition it
// held, where the group goes on from: a record at or past one of them is
// work again (see package wake). Partitions are its topics' partition
// counts, so a partition added later is noticed.
//
// A member that shared the group sleeps with its share: Kafka hands the
// partitions to the members still awake, and the sleeper wakes when its
// old partitions have records again, to take its share back. Every
// partition stays held by a member awake or watched by one asleep: a
// sleeper's partitions go to the members still in the group, and those
// watch them in turn when they sleep; a watch ends only when its member
// wakes and rejoins.
type Idle struct {
	Offsets    map[string]map[int32]int64
	Partitions map[string]int
	// For is how long the source had seen no record.
	For time.Duration
}

func (i *Idle) Error() string {
	return fmt.Sprintf("idle for %s", i.For.Round(time.Second))
}

// sleepCheckTimeout bounds the requests that decide whether to sleep.
const sleepCheckTimeout = 5 * time.Second

// sleepable reports what to sleep on when the source may sleep now:
// nothing buffered, in flight or waiting for a commit, at least one
// partition held (a member holding none has no share to watch: it stays
// awake for when the group gives it one), and each held partition with a
// committed offset, or a start offset that finds the same records again
// when the group rejoins (LATEST would skip the record that wakes the
// pipe, so a partition without a commit keeps a LATEST source awake).
func (s *Source) sleepable(ctx context.Context) (*Idle, bool) {
	if s.buffered.Load() != 0 || !s.done.empty() {
		return nil, false
	}
	held := s.held.snapshot()
	if len(held) == 0 {
		return nil, false
	}
	committed := s.cl.CommittedOffsets()
	atEnd := s.cfg.StartOffset.EpochOffset().Offset == -1
	fromStart := map[string]bool{} // topics with a held partition without a commit
	for tp := range held {
		if eo, ok := committed[tp.topic][tp.partition]; !ok || eo.Offset < 0 {
			if atEnd {
				return nil, false // no request needed to know
			}
			fromStart[tp.topic] = true
		}
	}
	ctx, cancel := context.WithTimeout(ctx, sleepCheckTimeout)
	defer cancel()
	adm := kadm.NewClient(s.cl)
	ends, err := adm.ListEndOffsets(ctx, s.cfg.Topics...)
	if err != nil || ends.Error() != nil {
		return nil, false
	}
	offsets := map[string]map[int32]int64{}
	counts := map[string]int{}
	ends.Each(func(o kadm.ListedOffset) {
		counts[o.Topic]++
		if !held[topicPartition{o.Topic, o.Partition}] {
			return // another member's share
		}
		if offsets[o.Topic] == nil {
			offsets[o.Topic] = map[int32]int64{}
		}
		offsets[o.Topic][o.Partition] = -1
	})
	for topic, ps := range offsets {
		for p := range ps {
			if eo, ok := committed[topic][p]; ok && eo.Offset >= 0 {
				ps[p] = eo.Offset
			}
		}
	}
	if len(fromStart) > 0 {
		// No commit yet: the group starts such a partition at the pipe's
		// start position again, so the watch does too.
		topics := slices.Collect(maps.Keys(fromStart))
		var starts kadm.ListedOffsets
		if ms := s.cfg.StartOffset.EpochOffset().Offset; ms >= 0 {
			starts, err = adm.ListOffsetsAfterMilli(ctx, ms, topics...)
		} else {
			starts, err = adm.ListStartOffsets(ctx, topics...)
		}
		if err != nil || starts.Error() != nil {
			return nil, false
		}
		starts.Each(func(o kadm.ListedOffset) {
			if ps := offsets[o.Topic]; ps != nil && ps[o.Partition] == -1 {
				ps[o.Partition] = o.Offset
			}
		})
	}
	for _, ps := range offsets {
		for _, off := range ps {
			if off < 0 {
				return nil, false
			}
		}
	}
	// Checked again after the requests: a record may have arrived, or
	// the group moved partitions.
	if s.buffered.Load() != 0 || !s.done.empty() || !maps.Equal(s.held.snapshot(), held) {
		return nil, false
	}
	return &Idle{Offsets: offsets, Partitions: counts}, true
}
