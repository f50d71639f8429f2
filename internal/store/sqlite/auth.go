package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// PutCluster creates or replaces c.
func (s *DB) PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error) {
	c.LastModified = s.now().UTC()
	spec, err := json.Marshal(c)
	if err != nil {
		return cluster.Cluster{}, fmt.Errorf("put cluster %q: %w", c.Name, err)
	}
	if _, err := s.q.ExecContext(ctx, `
		INSERT INTO clusters (name, spec, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		c.Name, string(spec), c.LastModified); err != nil {
		return cluster.Cluster{}, fmt.Errorf("put cluster %q: %w", c.Name, err)
	}
	return c, nil
}

// GetCluster returns the named cluster, or an error wrapping
// cluster.ErrNotFound.
func (s *DB) GetCluster(ctx context.Context, name string) (cluster.Cluster, error) {
	var spec string
	err := s.q.QueryRowContext(ctx, `SELECT spec FROM clusters WHERE name = $1`, name).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return cluster.Cluster{}, fmt.Errorf("get cluster %q: %w", name, cluster.ErrNotFound)
	}
	if err != nil {
		return cluster.Cluster{}, fmt.Errorf("get cluster %q: %w", name, err)
	}
	var c cluster.Cluster
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return cluster.Cluster{}, fmt.Errorf("get cluster %q: decode: %w", name, err)
	}
	return c, nil
}

// ListClusters returns every cluster ordered by name.
func (s *DB) ListClusters(ctx context.Context) ([]cluster.Cluster, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, spec FROM clusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	out := []cluster.Cluster{}
	for rows.Next() {
		var name, spec string
		if err := rows.Scan(&name, &spec); err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		var c cluster.Cluster
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			return nil, fmt.Errorf("list clusters: decode %q: %w", name, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return out, nil
}

// DeleteCluster removes the named cluster, or returns an error wrapping
// cluster.ErrNotFound.
func (s *DB) DeleteCluster(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "clusters", name, cluster.ErrNotFound)
}

// PutSecret creates or replaces a sealed secret.
func (s *DB) PutSecret(ctx context.Context, sec store.SealedSecret) (store.SealedSecret, error) {
	now := s.now().UTC()
	keys, err := json.Marshal(sec.Keys)
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	brokers, err := json.Marshal(orEmpty(sec.Brokers))
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	sealed := base64.StdEncoding.EncodeToString(sec.Sealed)
	if _, err := s.q.ExecContext(ctx, `
		INSERT INTO secrets (name, type, keys, sealed, brokers, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (name) DO UPDATE SET type = excluded.type, keys = excluded.keys,
			sealed = excluded.sealed, brokers = excluded.brokers, updated_at = excluded.updated_at`,
		sec.Name, sec.Type, string(keys), sealed, string(brokers), now); err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	return s.GetSecret(ctx, sec.Name)
}

const secretColumns = `name, type, keys, sealed, brokers, created_at, updated_at`

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanSecret(row interface{ Scan(...any) error }) (store.SealedSecret, error) {
	var sec store.SealedSecret
	var keys, sealed, brokers string
	if err := row.Scan(&sec.Name, &sec.Type, &keys, &sealed, &brokers, &sec.Created, &sec.Updated); err != nil {
		return store.SealedSecret{}, err
	}
	if err := json.Unmarshal([]byte(keys), &sec.Keys); err != nil {
		return store.SealedSecret{}, fmt.Errorf("decode keys: %w", err)
	}
	if err := json.Unmarshal([]byte(brokers), &sec.Brokers); err != nil {
		return store.SealedSecret{}, fmt.Errorf("decode brokers: %w", err)
	}
	if len(sec.Brokers) == 0 {
		sec.Brokers = nil
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("decode sealed value: %w", err)
	}
	sec.Sealed = b
	sec.Created, sec.Updated = sec.Created.UTC(), sec.Updated.UTC()
	return sec, nil
}

// GetSecret returns the named secret, or an error wrapping
// secret.ErrNotFound.
func (s *DB) GetSecret(ctx context.Context, name string) (store.SealedSecret, error) {
	sec, err := scanSecret(s.q.QueryRowContext(ctx, `SELECT `+secretColumns+` FROM secrets WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SealedSecret{}, fmt.Errorf("get secret %q: %w", name, secret.ErrNotFound)
	}
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("get secret %q: %w", name, err)
	}
	return sec, nil
}

// ListSecrets returns every secret ordered by name.
func (s *DB) ListSecrets(ctx context.Context) ([]store.SealedSecret, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+secretColumns+` FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	out := []store.SealedSecret{}
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret removes the named secret, or returns an error wrapping
// secret.ErrNotFound.
func (s *DB) DeleteSecret(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "secrets", name, secret.ErrNotFound)
}

// CreateToken stores t; pipe.ErrExists if its name is taken.
func (s *DB) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	t.Created = s.now().UTC()
	// As for pipes, ON CONFLICT DO NOTHING keeps the mapping to
	// pipe.ErrExists independent of driver error codes.
	if t.Scope == "" {
		return store.Token{}, fmt.Errorf("create token %q: no scope", t.Name)
	}
	res, err := s.q.ExecContext(ctx, `INSERT INTO tokens (name, hash, scope, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		t.Name, t.Hash, t.Scope, t.Created)
	if err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	} else if n == 0 {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, pipe.ErrExists)
	}
	return t, nil
}

// TokenByHash returns the token with hash, or an error wrapping
// store.ErrTokenNotFound.
func (s *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	var t store.Token
	err := s.q.QueryRowContext(ctx, `SELECT name, hash, scope, created_at FROM tokens WHERE hash = $1`, hash).
		Scan(&t.Name, &t.Hash, &t.Scope, &t.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, store.ErrTokenNotFound
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("look up token: %w", err)
	}
	t.Created = t.Created.UTC()
	return t, nil
}

// ListTokens returns every token ordered by name.
func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, hash, scope, created_at FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []store.Token{}
	for rows.Next() {
		var t store.Token
		var created time.Time
		if err := rows.Scan(&t.Name, &t.Hash, &t.Scope, &created); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Created = created.UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes the named token, or returns an error wrapping
// store.ErrTokenNotFound.
func (s *DB) DeleteToken(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "tokens", name, store.ErrTokenNotFound)
}

// deleteRow deletes the row of table with name, or returns notFound.
// table is always one of ours, never input.
func (s *DB) deleteRow(ctx context.Context, table, name string, notFound error) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete from %s %q: %w", table, name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete from %s %q: %w", table, name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete from %s %q: %w", table, name, notFound)
	}
	return nil
}
