package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluice-dev/sluice/internal/store"
)

// Heartbeat records that member is alive at t.
func (s *DB) Heartbeat(ctx context.Context, member string, t time.Time) error {
	if member == "" {
		return errors.New("heartbeat: empty member name")
	}
	if _, err := s.q.ExecContext(ctx, `
		INSERT INTO members (name, heartbeat_at) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
		member, nanos(t)); err != nil {
		return fmt.Errorf("heartbeat of %q: %w", member, err)
	}
	return nil
}

// LiveMembers returns the members whose last heartbeat is at or after
// since, ordered by name; none gives an empty, non-nil slice.
func (s *DB) LiveMembers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name FROM members WHERE heartbeat_at >= $1 ORDER BY name`, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("live members: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("live members: %w", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("live members: %w", err)
	}
	return out, nil
}

// SetMemberStatus creates or replaces (PipeUUID, Member)'s status.
func (s *DB) SetMemberStatus(ctx context.Context, ms store.MemberStatus) error {
	if ms.PipeUUID == "" || ms.Member == "" {
		return fmt.Errorf("set member status: pipe UUID %q and member %q must both be set", ms.PipeUUID, ms.Member)
	}
	parts, err := json.Marshal(ms.Partitions)
	if err != nil {
		return fmt.Errorf("set status of member %q for pipe %s: %w", ms.Member, ms.PipeUUID, err)
	}
	updated := ms.Updated
	if updated.IsZero() {
		updated = s.now()
	}
	if _, err := s.q.ExecContext(ctx, `
		INSERT INTO member_statuses (pipe_uuid, member, partitions, last_processing_result, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (pipe_uuid, member) DO UPDATE SET partitions = excluded.partitions,
			last_processing_result = excluded.last_processing_result, updated_at = excluded.updated_at`,
		ms.PipeUUID, ms.Member, string(parts), ms.LastProcessingResult, nanos(updated)); err != nil {
		return fmt.Errorf("set status of member %q for pipe %s: %w", ms.Member, ms.PipeUUID, err)
	}
	return nil
}

// MemberStatuses returns pipeUUID's member statuses updated at or after
// since, ordered by member; none gives an empty, non-nil slice.
func (s *DB) MemberStatuses(ctx context.Context, pipeUUID string, since time.Time) ([]store.MemberStatus, error) {
	rows, err := s.q.QueryContext(ctx, `
		SELECT member, partitions, last_processing_result, updated_at FROM member_statuses
		WHERE pipe_uuid = $1 AND updated_at >= $2 ORDER BY member`, pipeUUID, nanos(since))
	if err != nil {
		return nil, fmt.Errorf("member statuses of pipe %s: %w", pipeUUID, err)
	}
	defer rows.Close()
	out := []store.MemberStatus{}
	for rows.Next() {
		ms := store.MemberStatus{PipeUUID: pipeUUID}
		var parts string
		var updated int64
		if err := rows.Scan(&ms.Member, &parts, &ms.LastProcessingResult, &updated); err != nil {
			return nil, fmt.Errorf("member statuses of pipe %s: %w", pipeUUID, err)
		}
		if err := json.Unmarshal([]byte(parts), &ms.Partitions); err != nil {
			return nil, fmt.Errorf("member statuses of pipe %s: member %q: partitions: %w", pipeUUID, ms.Member, err)
		}
		ms.Updated = time.Unix(0, updated).UTC()
		out = append(out, ms)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("member statuses of pipe %s: %w", pipeUUID, err)
	}
	return out, nil
}

// nanos is t in Unix nanoseconds, clamped to what an int64 holds, so a zero
// since (year 1) means "everything" rather than an overflowed number.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
