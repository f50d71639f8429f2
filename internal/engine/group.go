package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The group watch: a pipe can sit without consuming for a long time while
// nothing fails (a group waiting in PreparingRebalance for members that
// will never rejoin, partitions that no member is assigned), and neither
// the target nor the Kafka connection has anything to report. Each runner
// therefore asks the group's coordinator how the group is, every
// groupCheckInterval, and shows a PROBLEM when the pipe has lag and the
// group has been unable to consume it for stallAfter.
//
// A group that was Stable with nothing to report is looked at again only
// after groupCheckHealthy: with a thousand pipes, a DescribeGroups each
// every 3 s was a third of an idle process's Kafka requests. A change of
// this process's partitions (a rebalance it takes part in) brings the next
// look forward to at once.
const (
	groupCheckInterval = 3 * time.Second
	groupCheckHealthy  = 30 * time.Second
	stallAfter         = 5 * time.Second
	groupCheckTimeout  = 5 * time.Second
)

// groupView is one look at the pipe's consumer group.
type groupView struct {
	at      time.Time
	state   string // the coordinator's: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead
	members int
	held    int // partitions this process holds
	// lag is the pipe's lag when it was read (only when the group looked
	// unable to consume), -1 when not read; unassigned the lagging
	// partitions no member holds.
	lag        int64
	unassigned []string
}

// groupHealth remembers since when the group has been unable to consume,
// across checks; owned by the watch goroutine.
type groupHealth struct {
	badSince time.Time
}

// assess returns the PROBLEM (without prefix) the view calls for, or "".
// It is pure, for tests: the watch passes what it saw and how long the
// rebalance timeout is.
func (h *groupHealth) assess(v groupView, group string, rebalanceTimeout time.Duration) string {
	bad := v.lag != 0 && (v.state != "Stable" || len(v.unassigned) > 0)
	if !bad {
		h.badSince = time.Time{}
		return ""
	}
	if h.badSince.IsZero() {
		h.badSince = v.at
	}
	for_ := v.at.Sub(h.badSince)
	if for_ < stallAfter {
		return ""
	}
	lag := ""
	if v.lag > 0 {
		lag = fmt.Sprintf(" Lag: %d records.", v.lag)
	}
	held := "this process holds none of its partitions"
	if v.held > 0 {
		held = fmt.Sprintf("this process consumes the %d it holds", v.held)
	}
	d := for_.Round(time.Second)
	if v.state != "Stable" {
		return fmt.Sprintf("Not consuming: consumer group %q has been %s for %s (%d members listed by its coordinator) and %s; "+
			"the group waits up to the rebalance timeout (%s) for each member to rejoin, then drops those that did not.%s",
			group, orUnknown(v.state), d, v.members, held, rebalanceTimeout, lag)
	}
	names := v.unassigned
	if len(names) > 5 {
		names = append(slices.Clip(names[:5]), fmt.Sprintf("and %d more", len(v.unassigned)-5))
	}
	return fmt.Sprintf("Not consuming %d partitions: consumer group %q is Stable with %d members but has assigned %s to none of them for %s, and %s; "+
		"a member that was told to give them up has not rejoined yet, or a member does not subscribe to the pipe's topics.%s",
		len(v.unassigned), group, v.members, strings.Join(names, ", "), d, held, lag)
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

// watchGroup checks the group while the source runs, through its client:
// every groupCheckInterval, or groupCheckHealthy while the last look found
// it Stable and fine, and at once when this process's partitions change.
func (r *runner) watchGroup(ctx context.Context, spec pipe.Spec) {
	var h groupHealth
	t := time.NewTimer(groupCheckInterval)
	defer t.Stop()
	for next := groupCheckInterval; ; t.Reset(next) {
		next = groupCheckInterval
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.groupPoke:
			t.Stop() // since Go 1.23 a stopped timer delivers nothing stale
		}
		var cl *kgo.Client
		if src := r.source.Load(); src != nil {
			// Read each time: a transactional source has a client per
			// session, none between them.
			cl = (*src).Client()
		}
		if cl == nil {
			// No consumer (preflight, fenced): those show their own
			// problems, and the group's state is not ours to report.
			h = groupHealth{}
			r.update(func() { r.groupIssue = "" })
			continue
		}
		v, err := r.viewGroup(ctx, cl, spec)
		if err != nil {
			// Connection problems show through the client's hooks;
			// this check only adds what they cannot see.
			r.log.Debug("cannot describe the consumer group", "err", err)
			continue
		}
		problem := h.assess(v, spec.GroupID(), r.rebalanceTimeout)
		if problem == "" && h.badSince.IsZero() && v.state == "Stable" {
			next = groupCheckHealthy
		}
		r.update(func() {
			r.groupIssue = problem
			r.group = &observe.Group{State: v.state, Members: v.members, CheckedAt: v.at.UTC()}
		})
	}
}

// viewGroup describes the group and, when it looks unable to consume, reads
// the pipe's lag to see whether that matters.
func (r *runner) viewGroup(ctx context.Context, cl *kgo.Client, spec pipe.Spec) (groupView, error) {
	ctx, cancel := context.WithTimeout(ctx, groupCheckTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	group := spec.GroupID()
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return groupView{}, err
	}
	g, ok := gs[group]
	if !ok {
		return groupView{}, fmt.Errorf("group %q missing from the answer", group)
	}
	if g.Err != nil {
		return groupView{}, g.Err
	}
	r.mu.Lock()
	held := r.heldCount
	r.mu.Unlock()
	v := groupView{at: time.Now(), state: g.State, members: len(g.Members), held: held, lag: -1}
	assigned := map[string]map[int32]bool{}
	n := 0
	for _, m := range g.Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				if assigned[tp.Topic] == nil {
					assigned[tp.Topic] = map[int32]bool{}
				}
				for _, p := range tp.Partitions {
					assigned[tp.Topic][p] = true
					n++
				}
			}
		}
	}
	known := r.knownPartitions()
	if v.state == "Stable" && held > 0 && (known == 0 || n >= known) {
		return v, nil // consuming, and every partition has an owner
	}
	p := pipe.Pipe{Spec: spec}
	offs := readOffsets(ctx, adm, []pipe.Pipe{p})
	if offs.err != nil {
		return v, offs.err
	}
	lag, err := measurePipe(ctx, adm, p, offs.ends, offs.starts, offs.fetched[group], v.at)
	if err != nil {
		return v, err
	}
	v.lag = lag.Total
	for _, pl := range lag.Partitions {
		if pl.Lag > 0 && !assigned[pl.Topic][pl.Partition] {
			v.unassigned = append(v.unassigned, fmt.Sprintf("%s-%d", pl.Topic, pl.Partition))
		}
	}
	return v, nil
}

// knownPartitions is how many partitions the pipe's topics had at the lag
// monitor's last measurement, 0 if none yet.
func (r *runner) knownPartitions() int {
	po := r.obs
	po.mu.Lock()
	defer po.mu.Unlock()
	if po.lag == nil || po.lagUUID != r.uuid {
		return 0
	}
	return len(po.lag.Partitions)
}

// assignment is the source's OnAssignment: what this process holds now.
func (r *runner) assignment(held map[string][]int32) {
	n := 0
	for _, ps := range held {
		slices.Sort(ps)
		n += len(ps)
	}
	select {
	case r.groupPoke <- struct{}{}:
	default:
	}
	r.mu.Lock()
	r.held, r.heldCount = held, n
	fenced := r.memberIssue != ""
	var gone []partitionKey // exhausted batches of partitions no longer ours
	for key := range r.exhausted {
		if !slices.Contains(held[key.topic], key.partition) {
			gone = append(gone, key)
		}
	}
	r.mu.Unlock()
	if len(gone) > 0 {
		r.update(func() {
			for _, k := range gone {
				delete(r.exhausted, k)
			}
		})
	}
	r.mu.Lock()
	for key := range r.retrying {
		if !slices.Contains(held[key.topic], key.partition) {
			delete(r.retrying, key) // another member retries it now
		}
	}
	r.mu.Unlock()
	r.obs.m.PartitionsHeld.Set(float64(n))
	// The other members show what this one holds (describe).
	r.markDirty()
	if fenced && n > 0 {
		// A member again, with partitions: the collision is over.
		r.update(func() { r.memberIssue = "" })
	}
}

// heldPartitions is a copy of what this process holds, by topic.
func (r *runner) heldPartitions() map[string][]int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]int32, len(r.held))
	for _, t := range slices.Sorted(maps.Keys(r.held)) {
		out[t] = slices.Clone(r.held[t])
	}
	return out
}
