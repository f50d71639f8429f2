package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// PutCluster creates or replaces c.
func (s *DB) PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error) {
	c.LastModified = s.stamp()
	spec, err := json.Marshal(c)
	if err != nil {
		return cluster.Cluster{}, fmt.Errorf("put cluster %q: %w", c.Name, err)
	}
	if _, err := s.q.Exec(ctx, `
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
	err := s.q.QueryRow(ctx, `SELECT spec FROM clusters WHERE name = $1`, name).Scan(&spec)
	if isNoRows(err) {
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
	rows, _ := s.q.Query(ctx, `SELECT name, spec FROM clusters ORDER BY name`)
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cluster.Cluster, error) {
		var name, spec string
		if err := r.Scan(&name, &spec); err != nil {
			return cluster.Cluster{}, err
		}
		var c cluster.Cluster
		if err := json.Unmarshal([]byte(spec), &c); err != nil {
			return cluster.Cluster{}, fmt.Errorf("decode %q: %w", name, err)
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return cs, nil
}

// DeleteCluster removes the named cluster, or returns an error wrapping
// cluster.ErrNotFound.
func (s *DB) DeleteCluster(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "clusters", name, cluster.ErrNotFound)
}

const secretColumns = `name, type, keys, sealed, brokers, created_at, updated_at`

// PutSecret creates or replaces a sealed secret, keeping Created of an
// existing one, in one statement that returns the row as stored.
func (s *DB) PutSecret(ctx context.Context, sec store.SealedSecret) (store.SealedSecret, error) {
	keys, err := json.Marshal(sec.Keys)
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	brokers, err := json.Marshal(orEmpty(sec.Brokers))
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	sealed := sec.Sealed
	if sealed == nil {
		sealed = []byte{} // pgx sends a nil slice as NULL
	}
	got, err := scanSecret(s.q.QueryRow(ctx, `
		INSERT INTO secrets (name, type, keys, sealed, brokers, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (name) DO UPDATE SET type = excluded.type, keys = excluded.keys,
			sealed = excluded.sealed, brokers = excluded.brokers, updated_at = excluded.updated_at
		RETURNING `+secretColumns,
		sec.Name, sec.Type, string(keys), sealed, string(brokers), s.stamp()))
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("put secret %q: %w", sec.Name, err)
	}
	return got, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func scanSecret(row pgx.Row) (store.SealedSecret, error) {
	var sec store.SealedSecret
	var keys, brokers string
	if err := row.Scan(&sec.Name, &sec.Type, &keys, &sec.Sealed, &brokers, &sec.Created, &sec.Updated); err != nil {
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
	sec.Created, sec.Updated = sec.Created.UTC(), sec.Updated.UTC()
	return sec, nil
}

// GetSecret returns the named secret, or an error wrapping
// secret.ErrNotFound.
func (s *DB) GetSecret(ctx context.Context, name string) (store.SealedSecret, error) {
	sec, err := scanSecret(s.q.QueryRow(ctx, `SELECT `+secretColumns+` FROM secrets WHERE name = $1`, name))
	if isNoRows(err) {
		return store.SealedSecret{}, fmt.Errorf("get secret %q: %w", name, secret.ErrNotFound)
	}
	if err != nil {
		return store.SealedSecret{}, fmt.Errorf("get secret %q: %w", name, err)
	}
	return sec, nil
}

// ListSecrets returns every secret ordered by name.
func (s *DB) ListSecrets(ctx context.Context) ([]store.SealedSecret, error) {
	rows, _ := s.q.Query(ctx, `SELECT `+secretColumns+` FROM secrets ORDER BY name`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SealedSecret, error) { return scanSecret(r) })
	if err != nil {
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
	if t.Scope == "" {
		return store.Token{}, fmt.Errorf("create token %q: no scope", t.Name)
	}
	t.Created = s.stamp()
	// As for pipes, ON CONFLICT DO NOTHING keeps a taken name from
	// aborting an enclosing transaction.
	tag, err := s.q.Exec(ctx, `INSERT INTO tokens (name, hash, scope, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		t.Name, t.Hash, t.Scope, t.Created)
	if err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, pipe.ErrExists)
	}
	return t, nil
}

func scanToken(r pgx.Row) (store.Token, error) {
	var t store.Token
	if err := r.Scan(&t.Name, &t.Hash, &t.Scope, &t.Created); err != nil {
		return store.Token{}, err
	}
	t.Created = t.Created.UTC()
	return t, nil
}

// TokenByHash returns the token with hash, or store.ErrTokenNotFound.
func (s *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.q.QueryRow(ctx, `SELECT name, hash, scope, created_at FROM tokens WHERE hash = $1`, hash))
	if isNoRows(err) {
		return store.Token{}, store.ErrTokenNotFound
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("look up token: %w", err)
	}
	return t, nil
}

// ListTokens returns every token ordered by name.
func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, _ := s.q.Query(ctx, `SELECT name, hash, scope, created_at FROM tokens ORDER BY name`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes the named token, or returns an error wrapping
// store.ErrTokenNotFound.
func (s *DB) DeleteToken(ctx context.Context, name string) error {
	return s.deleteRow(ctx, "tokens", name, store.ErrTokenNotFound)
}
