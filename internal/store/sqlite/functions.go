package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// PutFunction creates or replaces f.
func (s *DB) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	f.LastModified = s.now().UTC()
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO functions (name, url, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at`,
		f.Name, f.URL, f.LastModified); err != nil {
		return pipe.Function{}, fmt.Errorf("put function %q: %w", f.Name, err)
	}
	return f, nil
}

// GetFunction returns the named function, or an error wrapping
// pipe.ErrFunctionNotFound.
func (s *DB) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	var f pipe.Function
	err := s.db.QueryRowContext(ctx, `SELECT name, url, updated_at FROM functions WHERE name = $1`, name).
		Scan(&f.Name, &f.URL, &f.LastModified)
	if errors.Is(err, sql.ErrNoRows) {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, pipe.ErrFunctionNotFound)
	}
	if err != nil {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, err)
	}
	f.LastModified = f.LastModified.UTC()
	return f, nil
}

// ListFunctions returns every function ordered by name.
func (s *DB) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, url, updated_at FROM functions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	defer rows.Close()
	out := []pipe.Function{}
	for rows.Next() {
		var f pipe.Function
		var t time.Time
		if err := rows.Scan(&f.Name, &f.URL, &t); err != nil {
			return nil, fmt.Errorf("list functions: %w", err)
		}
		f.LastModified = t.UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	return out, nil
}

// DeleteFunction removes the named function, or returns an error wrapping
// pipe.ErrFunctionNotFound.
func (s *DB) DeleteFunction(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "functions", name, pipe.ErrFunctionNotFound)
}
