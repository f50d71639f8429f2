// Package redrive replays what a pipe's failure destination holds into its
// target: in original order per source partition, with progress, and from
// where the last redrive stopped, since each source remembers how far it
// was redriven (a consumer group for a Kafka destination, a cursor file
// beside a file destination).
package redrive

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/destination"
)

// Source reads back the records a destination holds.
type Source interface {
	// Next returns up to max entries not yet redriven, in the order they
	// were written, and a commit that records them as redriven; no entries
	// means the source is read to where it ended when the redrive began.
	Next(ctx context.Context, max int) (entries []destination.Entry, commit func(context.Context) error, err error)
	// Where names the source for messages.
	Where() string
	Close() error
}

// Partition is the redrive of one source partition.
type Partition struct {
	Partition   string `json:"partition"` // "<topic>-<n>"
	Records     int    `json:"records"`
	FirstOffset int64  `json:"firstOffset"`
	LastOffset  int64  `json:"lastOffset"`
}

// Progress is what a redrive has done so far; the last one is its result.
type Progress struct {
	From      string `json:"from"`
	DryRun    bool   `json:"dryRun,omitempty"`
	Read      int    `json:"read"`
	Delivered int    `json:"delivered"`
	// Duplicates is records read more than once (the destination may
	// hold a record twice); each is delivered once per chunk.
	Duplicates int         `json:"duplicates,omitempty"`
	Partitions []Partition `json:"partitions,omitempty"`
	Done       bool        `json:"done"`
	Error      string      `json:"error,omitempty"`
}

// Options shape a redrive.
type Options struct {
	// BatchSize is the most records per delivery (the pipe's).
	BatchSize int
	// Chunk is how many entries are read, ordered and delivered before
	// their progress is recorded (default 1,000): a redrive stopped
	// midway repeats at most one chunk.
	Chunk  int
	DryRun bool
	// Report is told of progress after each chunk; nil ignores it.
	Report func(Progress)
}

// Run replays src into h. A delivery that fails stops the redrive with
// the target's reason; what was delivered before its chunk stays
// recorded, so the next redrive starts at that chunk.
func Run(ctx context.Context, src Source, h batch.Handler, o Options) (Progress, error) {
	if o.BatchSize < 1 {
		o.BatchSize = 100
	}
	if o.Chunk < 1 {
		o.Chunk = 1000
	}
	p := Progress{From: src.Where(), DryRun: o.DryRun}
	parts := map[string]*Partition{}
	report := func() {
		p.Partitions = p.Partitions[:0]
		for _, pp := range parts {
			p.Partitions = append(p.Partitions, *pp)
		}
		slices.SortFunc(p.Partitions, func(a, b Partition) int { return cmp.Compare(a.Partition, b.Partition) })
		if o.Report != nil {
			o.Report(p)
		}
	}
	for {
		entries, commit, err := src.Next(ctx, o.Chunk)
		if err != nil {
			p.Error = err.Error()
			report()
			return p, fmt.Errorf("read %s: %w", src.Where(), err)
		}
		if len(entries) == 0 {
			p.Done = true
			report()
			return p, nil
		}
		p.Read += len(entries)
		// Original order per source partition: the destination's own
		// order may interleave partitions, and a Kafka destination with
		// several partitions spreads one source partition over them.
		slices.SortStableFunc(entries, func(a, b destination.Entry) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
		unique := slices.CompactFunc(entries, func(a, b destination.Entry) bool {
			return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset
		})
		p.Duplicates += len(entries) - len(unique)
		for _, e := range unique {
			key := fmt.Sprintf("%s-%d", e.Topic, e.Partition)
			pp := parts[key]
			if pp == nil {
				pp = &Partition{Partition: key, FirstOffset: e.Offset}
				parts[key] = pp
			}
			pp.Records++
			pp.LastOffset = max(pp.LastOffset, e.Offset)
			pp.FirstOffset = min(pp.FirstOffset, e.Offset)
		}
		if o.DryRun {
			report()
			continue // nothing delivered, nothing recorded
		}
		if err := deliver(ctx, h, unique, o.BatchSize, &p); err != nil {
			p.Error = err.Error()
			report()
			return p, err
		}
		if err := commit(ctx); err != nil {
			p.Error = fmt.Sprintf("delivered, but cannot record how far: %v (the next redrive repeats this chunk)", err)
			report()
			return p, fmt.Errorf("record progress in %s: %w", src.Where(), err)
		}
		report()
	}
}

// deliver sends sorted entries in batches of one source partition each.
func deliver(ctx context.Context, h batch.Handler, entries []destination.Entry, size int, p *Progress) error {
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && j-i < size && entries[j].Topic == entries[i].Topic && entries[j].Partition == entries[i].Partition {
			j++
		}
		recs := make([]*kgo.Record, 0, j-i)
		for _, e := range entries[i:j] {
			recs = append(recs, &kgo.Record{Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp,
				Key: e.Key, Value: e.Value, Headers: e.Headers})
		}
		b := batch.New(recs, nil)
		res := h(ctx, b)
		if n := res.Final(); n < b.Len() {
			p.Delivered += n
			r := b.Records[n]
			why := "it was not delivered"
			if err := res.Err(); err != nil {
				why = err.Error()
			}
			return fmt.Errorf("the target did not take %s-%d offset %d, so the redrive stopped there (run it again once the target is fixed): %s",
				r.Topic, r.Partition, r.Offset, why)
		}
		p.Delivered += b.Len()
		i = j
	}
	return nil
}

// keepFor bounds how long one Next waits for a Kafka destination that
// says it has more records but sends none.
const keepFor = 30 * time.Second
