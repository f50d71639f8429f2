package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// PutFunction creates or replaces f.
func (s *DB) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	f.LastModified = s.now().UTC()
	f.Status = nil
	handler := ""
	if f.Handler != nil {
		b, err := json.Marshal(f.Handler)
		if err != nil {
			return pipe.Function{}, fmt.Errorf("put function %q: %w", f.Name, err)
		}
		handler = string(b)
	}
	if _, err := s.q.ExecContext(ctx, `
		INSERT INTO functions (name, url, updated_at, handler) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at, handler = excluded.handler`,
		f.Name, f.URL, f.LastModified, handler); err != nil {
		return pipe.Function{}, fmt.Errorf("put function %q: %w", f.Name, err)
	}
	return f, nil
}

// GetFunction returns the named function, or an error wrapping
// pipe.ErrFunctionNotFound.
func (s *DB) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	var f pipe.Function
	var handler string
	err := s.q.QueryRowContext(ctx, `SELECT name, url, updated_at, handler FROM functions WHERE name = $1`, name).
		Scan(&f.Name, &f.URL, &f.LastModified, &handler)
	if errors.Is(err, sql.ErrNoRows) {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, pipe.ErrFunctionNotFound)
	}
	if err == nil {
		err = decodeHandler(&f, handler)
	}
	if err != nil {
		return pipe.Function{}, fmt.Errorf("get function %q: %w", name, err)
	}
	f.LastModified = f.LastModified.UTC()
	return f, nil
}

// ListFunctions returns every function ordered by name.
func (s *DB) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, url, updated_at, handler FROM functions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	defer rows.Close()
	out := []pipe.Function{}
	for rows.Next() {
		var f pipe.Function
		var t time.Time
		var handler string
		if err := rows.Scan(&f.Name, &f.URL, &t, &handler); err != nil {
			return nil, fmt.Errorf("list functions: %w", err)
		}
		if err := decodeHandler(&f, handler); err != nil {
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

// decodeHandler reads the handler column into f (” is none).
func decodeHandler(f *pipe.Function, handler string) error {
	if handler == "" {
		return nil
	}
	f.Handler = &pipe.Handler{}
	if err := json.Unmarshal([]byte(handler), f.Handler); err != nil {
		return fmt.Errorf("function %q: stored handler: %w", f.Name, err)
	}
	return nil
}
