package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/store"
)

// Several processes share one store (PostgreSQL) and Kafka spreads each
// pipe's partitions across them; Sluice adds no coordinator. What they do
// need of each other goes through the store: each process heartbeats its
// member name, so every one knows who is alive; each writes what it holds
// of the pipes it runs, so describe shows every member; and each measures
// the lag only of the pipes it leads (the live member a pipe's UUID hashes
// to), so a pipe's lag series exists once across the processes and the
// measuring is spread.

// Member timings. A member not heard of for memberTTL is gone: its
// partitions are Kafka's to move (the group's session timeout), and its
// lag pipes move to the others at their next round.
const (
	heartbeatInterval = 2 * time.Second
	memberTTL         = 3 * heartbeatInterval
)

// members is this process's view of the others.
type members struct {
	e    *Engine
	name string // this process's

	mu   sync.Mutex
	live []string // as of the last heartbeat round, this one included
}

func newMembers(e *Engine) *members {
	name := e.cfg.Member
	if name == "" {
		// A dynamic member still needs a name of its own in the store.
		var b [6]byte
		_, _ = rand.Read(b[:])
		name = "dynamic-" + hex.EncodeToString(b[:])
	}
	return &members{e: e, name: name, live: []string{name}}
}

// run heartbeats until ctx ends.
func (ms *members) run(ctx context.Context) {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		ms.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ms *members) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, heartbeatInterval)
	defer cancel()
	now := ms.e.cfg.Now()
	if err := ms.e.store.Heartbeat(ctx, ms.name, now); err != nil {
		if ctx.Err() == nil {
			ms.e.log.Warn("cannot heartbeat this member in the store; retrying", "member", ms.name, "err", err)
		}
		return
	}
	live, err := ms.e.store.LiveMembers(ctx, now.Add(-memberTTL))
	if err != nil {
		return
	}
	if !slices.Contains(live, ms.name) {
		live = append(live, ms.name)
		slices.Sort(live)
	}
	ms.mu.Lock()
	changed := !slices.Equal(ms.live, live)
	ms.live = live
	ms.mu.Unlock()
	if changed {
		ms.e.log.Info("members sharing the store", "members", live)
	}
}

// liveNames is the members alive as of the last round.
func (ms *members) liveNames() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.live)
}

// leads reports whether this process measures the lag of the pipe with
// uuid.
func (ms *members) leads(uuid string) bool { return ms.leader(uuid) == ms.name }

// leader is the live member that measures the lag of the pipe with uuid:
// the one its UUID hashes to, so the pipes spread over the members.
func (ms *members) leader(uuid string) string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.live) <= 1 {
		return ms.name
	}
	h := fnv.New32a()
	h.Write([]byte(uuid))
	return ms.live[int(h.Sum32()%uint32(len(ms.live)))]
}

// setStatus writes this member's share of a pipe it runs.
func (ms *members) setStatus(ctx context.Context, uuid string, held map[string][]int32, result string) error {
	return ms.e.store.SetMemberStatus(ctx, store.MemberStatus{PipeUUID: uuid, Member: ms.name, Partitions: held,
		LastProcessingResult: result, Updated: ms.e.cfg.Now().UTC()})
}

// describe lists the live members' shares of a pipe.
func (ms *members) describe(ctx context.Context, uuid string) []observe.Member {
	all, err := ms.e.store.MemberStatuses(ctx, uuid, time.Time{})
	if err != nil {
		return nil
	}
	live := ms.liveNames()
	var out []observe.Member
	for _, s := range all {
		if !slices.Contains(live, s.Member) || len(s.Partitions) == 0 && s.LastProcessingResult == "" {
			continue
		}
		out = append(out, observe.Member{Name: s.Member, Partitions: maps.Clone(s.Partitions),
			LastProcessingResult: s.LastProcessingResult, Updated: s.Updated, This: s.Member == ms.name})
	}
	return out
}
