package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// PutFunction creates or replaces f. Status is what running processes
// report and is never stored.
func (s *DB) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	f.LastModified = s.stamp()
	f.Status = nil
	handler := ""
	if f.Handler != nil {
		b, err := json.Marshal(f.Handler)
		if err != nil {
			return pipe.Function{}, fmt.Errorf("put function %q: %w", f.Name, err)
		}
		handler = string(b)
	}
	if _, err := s.q.Exec(ctx, `
		INSERT INTO functions (name, url, handler, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, handler = excluded.handler, updated_at = excluded.updated_at`,
		f.Name, f.URL, handler, f.LastModified); err != nil {
		return pipe.Function{}, fmt.Errorf("put function %q: %w", f.Name, err)
	}
	return f, nil
}

const functionColumns = `name, url, handler, updated_at`

// GetFunction returns the named function, or an error wrapping
// pipe.ErrFunctionNotFound.
func (s *DB) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	f, err := scanFunction(s.q.QueryRow(ctx, `SELECT `+functionColumns+` FROM functions WHERE name = $1`, name))
	if isNoRows(err) {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, pipe.ErrFunctionNotFound)
	}
	if err != nil {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, err)
	}
	return f, nil
}

// ListFunctions returns every function ordered by name.
func (s *DB) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	rows, _ := s.q.Query(ctx, `SELECT `+functionColumns+` FROM functions ORDER BY name`)
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pipe.Function, error) { return scanFunction(r) })
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return fs, nil
}

// DeleteFunction removes the named function, or returns an error wrapping
// pipe.ErrFunctionNotFound.
func (s *DB) DeleteFunction(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "functions", name, pipe.ErrFunctionNotFound)
}

func scanFunction(r pgx.Row) (pipe.Function, error) {
	var f pipe.Function
	var handler string
	var t time.Time
	if err := r.Scan(&f.Name, &f.URL, &handler, &t); err != nil {
		return pipe.Function{}, err
	}
	f.LastModified = t.UTC()
	if handler != "" { // '' is a URL function
		f.Handler = &pipe.Handler{}
		if err := json.Unmarshal([]byte(handler), f.Handler); err != nil {
			return pipe.Function{}, fmt.Errorf("function %q: stored handler: %w", f.Name, err)
		}
	}
	return f, nil
}

// deleteRow deletes the row of table with name, or returns notFound.
// table is always one of ours, never input.
func (s *DB) deleteRow(ctx context.Context, table, name string, notFound error) error {
	tag, err := s.q.Exec(ctx, `DELETE FROM `+table+` WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete from %s %q: %w", table, name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete from %s %q: %w", table, name, notFound)
	}
	return nil
}
