package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/store"
)

// Heartbeat records that member is alive at t.
func (s *DB) Heartbeat(ctx context.Context, member string, t time.Time) error {
	if member == "" {
		return errors.New("heartbeat: empty member name")
	}
	if _, err := s.q.Exec(ctx, `
		INSERT INTO members (name, heartbeat_at) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
		member, t); err != nil {
		return fmt.Errorf("heartbeat of %q: %w", member, err)
	}
	return nil
}

// LiveMembers returns the members whose last heartbeat is at or after
// since, ordered by name; none gives an empty, non-nil slice.
func (s *DB) LiveMembers(ctx context.Context, since time.Time) ([]string, error) {
	rows, _ := s.q.Query(ctx, `SELECT name FROM members WHERE heartbeat_at >= $1 ORDER BY name`, since)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
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
		updated = s.stamp()
	}
	if _, err := s.q.Exec(ctx, `
		INSERT INTO member_statuses (pipe_uuid, member, partitions, last_processing_result, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (pipe_uuid, member) DO UPDATE SET partitions = excluded.partitions,
			last_processing_result = excluded.last_processing_result, updated_at = excluded.updated_at`,
		ms.PipeUUID, ms.Member, string(parts), ms.LastProcessingResult, updated); err != nil {
		return fmt.Errorf("set status of member %q for pipe %s: %w", ms.Member, ms.PipeUUID, err)
	}
	return nil
}

// MemberStatuses returns pipeUUID's member statuses updated at or after
// since, ordered by member; none gives an empty, non-nil slice.
func (s *DB) MemberStatuses(ctx context.Context, pipeUUID string, since time.Time) ([]store.MemberStatus, error) {
	rows, _ := s.q.Query(ctx, `
		SELECT member, partitions, last_processing_result, updated_at FROM member_statuses
		WHERE pipe_uuid = $1 AND updated_at >= $2 ORDER BY member`, pipeUUID, since)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.MemberStatus, error) {
		ms := store.MemberStatus{PipeUUID: pipeUUID}
		var parts string
		if err := r.Scan(&ms.Member, &parts, &ms.LastProcessingResult, &ms.Updated); err != nil {
			return store.MemberStatus{}, err
		}
		if err := json.Unmarshal([]byte(parts), &ms.Partitions); err != nil {
			return store.MemberStatus{}, fmt.Errorf("member %q: partitions: %w", ms.Member, err)
		}
		ms.Updated = ms.Updated.UTC()
		return ms, nil
	})
	if err != nil {
		return nil, fmt.Errorf("member statuses of pipe %s: %w", pipeUUID, err)
	}
	return out, nil
}
