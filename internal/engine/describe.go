package engine

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
)

// Describe returns what this process knows about the named pipe beyond
// its stored status: whether it runs it, the latest problem seen, the
// latest lag measurement and the recent throughput. A pipe that does not
// exist is pipe.ErrNotFound, as for GetPipe.
func (e *Engine) Describe(ctx context.Context, name string) (observe.Description, error) {
	p, err := e.store.GetPipe(ctx, name)
	if err != nil {
		return observe.Description{}, err
	}
	d := observe.Description{
		Name:                  p.Name,
		UUID:                  p.UUID,
		ConsumerGroupID:       p.GroupID(),
		Topics:                p.Topics,
		State:                 string(p.Status.State),
		StateTransitionReason: p.Status.StateTransitionReason,
		LastProcessingResult:  p.Status.LastProcessingResult,
		Throughput:            observe.Throughput{WindowSeconds: throughputWindow},
	}
	e.mu.Lock()
	r, running := e.runners[name]
	e.mu.Unlock()
	d.Running = running && r.uuid == p.UUID
	if d.Running {
		d.GroupInstanceID = r.instanceID
		d.HeldPartitions = r.heldPartitions()
		d.Concurrency = r.concurrency()
		d.Asleep = r.sleepState()
		r.mu.Lock()
		if r.group != nil {
			g := *r.group
			d.Group = &g
		}
		for _, rt := range r.retrying {
			d.Retrying = append(d.Retrying, rt)
		}
		r.mu.Unlock()
		slices.SortFunc(d.Retrying, func(a, b observe.Retry) int {
			return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
	}
	d.Members = e.members.describe(ctx, p.UUID)
	if l := e.members.leader(p.UUID); l != e.members.name {
		d.LagMeasuredBy = l
	}
	po := e.obs.lookup(name)
	if po == nil {
		return d, nil
	}
	po.mu.Lock()
	defer po.mu.Unlock()
	if po.problem != "" {
		d.LastError = &observe.Problem{Message: po.problem, At: po.problemAt.UTC()}
	}
	if po.lag != nil && po.lagUUID == p.UUID {
		l := *po.lag
		d.Lag = &l
	}
	d.Failed = po.failed
	d.FilteredOut = po.filtered
	if l := po.failed.Last; l != nil {
		c := *l
		d.Failed.Last = &c
	}
	n := po.tput.total(time.Now())
	d.Throughput.Records = n
	d.Throughput.RecordsPerSecond = float64(n) / throughputWindow
	return d, nil
}
