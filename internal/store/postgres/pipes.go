package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// CreatePipe stores p with Revision 1. The caller assigns p.UUID; a pipe
// without one is refused rather than stored with an empty identity.
func (s *DB) CreatePipe(ctx context.Context, p pipe.Pipe) (pipe.Pipe, error) {
	if p.UUID == "" {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: no UUID: the service assigns one before storing", p.Name)
	}
	p.Revision = 1
	spec, status, err := encode(p)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, err)
	}
	// ON CONFLICT DO NOTHING turns a taken name or UUID into zero rows
	// instead of a unique violation, which would also abort an enclosing
	// transaction.
	tag, err := s.q.Exec(ctx, `
		INSERT INTO pipes (name, uuid, spec, status, revision, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT DO NOTHING`,
		p.Name, p.UUID, spec, status, p.Revision, s.stamp())
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetPipe(ctx, p.Name); errors.Is(err, pipe.ErrNotFound) {
			return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w: its UUID %s belongs to another pipe", p.Name, pipe.ErrExists, p.UUID)
		}
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, pipe.ErrExists)
	}
	return p, nil
}

const pipeColumns = `name, uuid, spec, status, revision`

// GetPipe returns the named pipe, or an error wrapping pipe.ErrNotFound.
func (s *DB) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	p, err := scanPipe(s.q.QueryRow(ctx, `SELECT `+pipeColumns+` FROM pipes WHERE name = $1`, name))
	if isNoRows(err) {
		return pipe.Pipe{}, fmt.Errorf("get pipe %q: %w", name, pipe.ErrNotFound)
	}
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("get pipe %q: %w", name, err)
	}
	return p, nil
}

// ListPipes returns every pipe ordered by name; an empty store gives an
// empty, non-nil slice.
func (s *DB) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	rows, _ := s.q.Query(ctx, `SELECT `+pipeColumns+` FROM pipes ORDER BY name`)
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pipe.Pipe, error) { return scanPipe(r) })
	if err != nil {
		return nil, fmt.Errorf("list pipes: %w", err)
	}
	return ps, nil
}

// UpdatePipe replaces p's spec and status if the stored revision is
// revision, and returns p with the next revision. The check is in the
// UPDATE's WHERE clause: of writers racing from one revision, in any
// processes, the row lock lets one through and the others find the new
// revision.
func (s *DB) UpdatePipe(ctx context.Context, p pipe.Pipe, revision int64) (pipe.Pipe, error) {
	p.Revision = revision + 1
	spec, status, err := encode(p)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, err)
	}
	tag, err := s.q.Exec(ctx, `
		UPDATE pipes SET spec = $1, status = $2, revision = $3, updated_at = $4
		WHERE name = $5 AND uuid = $6 AND revision = $7`,
		spec, status, p.Revision, s.stamp(), p.Name, p.UUID, revision)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, err)
	}
	if tag.RowsAffected() == 0 {
		cur, err := s.GetPipe(ctx, p.Name)
		if err != nil || cur.UUID != p.UUID {
			return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, pipe.ErrNotFound)
		}
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: revision %d is not the stored %d: %w", p.Name, revision, cur.Revision, pipe.ErrConflict)
	}
	return p, nil
}

// DeletePipe removes the named pipe and its UUID's member statuses in one
// statement, or returns an error wrapping pipe.ErrNotFound.
func (s *DB) DeletePipe(ctx context.Context, name string) error {
	var n int
	err := s.q.QueryRow(ctx, `
		WITH gone AS (DELETE FROM pipes WHERE name = $1 RETURNING uuid),
		     statuses AS (DELETE FROM member_statuses WHERE pipe_uuid IN (SELECT uuid FROM gone))
		SELECT count(*) FROM gone`, name).Scan(&n)
	if err != nil {
		return fmt.Errorf("delete pipe %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete pipe %q: %w", name, pipe.ErrNotFound)
	}
	return nil
}

// SetStatus replaces the status of the pipe with this name, UUID and (when
// not 0) revision, or returns an error wrapping pipe.ErrNotFound if there
// is none. Revision is unchanged, and no change is announced.
func (s *DB) SetStatus(ctx context.Context, name, uuid string, revision int64, st pipe.Status) error {
	status, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("set status of pipe %q: encode: %w", name, err)
	}
	tag, err := s.q.Exec(ctx, `
		UPDATE pipes SET status = $1, updated_at = $2
		WHERE name = $3 AND uuid = $4 AND ($5::bigint = 0 OR revision = $5::bigint)`,
		string(status), s.stamp(), name, uuid, revision)
	if err != nil {
		return fmt.Errorf("set status of pipe %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set status of pipe %q (uuid %s): %w", name, uuid, pipe.ErrNotFound)
	}
	return nil
}

func encode(p pipe.Pipe) (spec, status string, err error) {
	sb, err := json.Marshal(p.Spec)
	if err != nil {
		return "", "", fmt.Errorf("encode spec: %w", err)
	}
	tb, err := json.Marshal(p.Status)
	if err != nil {
		return "", "", fmt.Errorf("encode status: %w", err)
	}
	return string(sb), string(tb), nil
}

func scanPipe(r pgx.Row) (pipe.Pipe, error) {
	var (
		p            pipe.Pipe
		name, uuid   string
		spec, status string
		revision     int64
	)
	if err := r.Scan(&name, &uuid, &spec, &status, &revision); err != nil {
		return pipe.Pipe{}, err
	}
	var err error
	if p.Spec, err = pipe.DecodeStored([]byte(spec)); err != nil {
		return pipe.Pipe{}, fmt.Errorf("decode spec of pipe %q: %w", name, err)
	}
	if err := json.Unmarshal([]byte(status), &p.Status); err != nil {
		return pipe.Pipe{}, fmt.Errorf("decode status of pipe %q: %w", name, err)
	}
	// The columns are the indexed truth; the JSON copies cannot disagree
	// unless someone edited the rows by hand, and then the keys win.
	p.Name, p.UUID, p.Revision = name, uuid, revision
	return p, nil
}
