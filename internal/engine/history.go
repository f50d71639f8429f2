package engine

import (
	"context"
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/destination"
	"github.com/sluice-dev/sluice/internal/history"
	"github.com/sluice-dev/sluice/internal/observe"
)

// History returns the named pipe's last window of lag and flow as this
// process kept it (package history): lag where this process measured it,
// flow of the records this process delivered. A pipe that does not exist
// is pipe.ErrNotFound, as for GetPipe.
func (e *Engine) History(ctx context.Context, name string, window time.Duration) (observe.History, error) {
	p, err := e.store.GetPipe(ctx, name)
	if err != nil {
		return observe.History{}, err
	}
	now := time.Now()
	po := e.obs.lookup(name)
	if po == nil {
		var empty history.Pipe
		return empty.Series(now, window), nil
	}
	po.mu.Lock()
	defer po.mu.Unlock()
	if po.histUUID != p.UUID {
		var empty history.Pipe
		return empty.Series(now, window), nil
	}
	return po.hist.Series(now, window), nil
}

// overviewStep is the span of one point of the Overview's sparklines: an
// hour in 60 points is what a row of a list has room for.
const overviewStep = time.Minute

// Overview returns every stored pipe's state, latest lag, lag sparkline
// over window (one point a minute, the largest lag in it) and recent
// throughput, ordered by name.
func (e *Engine) Overview(ctx context.Context, window time.Duration) (observe.Overview, error) {
	pipes, err := e.store.ListPipes(ctx)
	if err != nil {
		return observe.Overview{}, err
	}
	now := time.Now()
	k := int(overviewStep / history.Step)
	var empty history.Pipe
	base := empty.Series(now, window)
	ov := observe.Overview{StepSeconds: int(overviewStep / time.Second), Start: base.Start, Pipes: make([]observe.PipeOverview, 0, len(pipes))}
	rs := e.runnerList()
	asleep := make(map[string]bool, len(rs))
	for _, r := range rs {
		asleep[r.name] = r.sleepState() != nil
	}
	for _, p := range pipes {
		row := observe.PipeOverview{
			Name:                 p.Name,
			State:                string(p.Status.State),
			LastProcessingResult: p.Status.LastProcessingResult,
			Throughput:           observe.Throughput{WindowSeconds: throughputWindow},
			Asleep:               asleep[p.Name],
		}
		if l := e.members.leader(p.UUID); l != e.members.name {
			row.LagMeasuredBy = l
		}
		series := base
		if po := e.obs.lookup(p.Name); po != nil {
			po.mu.Lock()
			if po.histUUID == p.UUID {
				series = po.hist.Series(now, window)
			}
			if po.lag != nil && po.lagUUID == p.UUID {
				t := po.lag.Total
				row.Lag = &t
			}
			n := po.tput.total(now)
			po.mu.Unlock()
			row.Throughput.Records = n
			row.Throughput.RecordsPerSecond = float64(n) / throughputWindow
		}
		row.LagSeries = history.Coarsen(series.Lag, k)
		ov.Pipes = append(ov.Pipes, row)
	}
	return ov, nil
}

// maxPeek bounds a failure destination peek: the console shows a page of
// records, never the whole destination.
const maxPeek = 100

// PeekFailures returns up to limit records the pipe's failure destination
// holds that were not redriven yet, without moving the redrive's cursor
// (a kafka:// destination is read by a direct consumer; nothing commits).
func (e *Engine) PeekFailures(ctx context.Context, name string, limit int) (observe.FailurePeek, error) {
	if limit <= 0 || limit > maxPeek {
		limit = maxPeek
	}
	p, err := e.GetPipe(ctx, name)
	if err != nil {
		return observe.FailurePeek{}, err
	}
	src, _, _, err := e.openFailures(ctx, p)
	if err != nil {
		return observe.FailurePeek{}, err
	}
	defer src.Close()
	peek := observe.FailurePeek{Destination: p.OnFailure.Destination, Records: []observe.FailedRecord{}}
	// One more than asked tells whether there are more.
	entries, _, err := src.Next(ctx, limit+1)
	if err != nil {
		return observe.FailurePeek{}, err
	}
	if len(entries) > limit {
		entries, peek.More = entries[:limit], true
	}
	for _, en := range entries {
		peek.Records = append(peek.Records, failedRecord(en))
	}
	return peek, nil
}

func failedRecord(en destination.Entry) observe.FailedRecord {
	r := observe.FailedRecord{Topic: en.Topic, Partition: en.Partition, Offset: en.Offset, Timestamp: en.Timestamp.UTC(), Headers: len(en.Headers)}
	r.Base64 = !utf8.Valid(en.Key) || !utf8.Valid(en.Value)
	text := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := string(b)
		if r.Base64 {
			s = base64.StdEncoding.EncodeToString(b)
		}
		return &s
	}
	r.Key, r.Value = text(en.Key), text(en.Value)
	return r
}
