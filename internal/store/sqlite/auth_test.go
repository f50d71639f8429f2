package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/store"
)

// TestTokensFromBeforeScopes opens a store whose tokens table predates
// scopes: the column is added, and the old tokens keep the power they had.
func TestTokensFromBeforeScopes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL);
		INSERT INTO tokens VALUES ('old', 'h1', '2026-01-01 00:00:00')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tok, err := db.TokenByHash(context.Background(), "h1")
	if err != nil || tok.Scope != "admin" {
		t.Fatalf("old token: %+v, %v; want scope admin", tok, err)
	}
	if _, err := db.CreateToken(context.Background(), store.Token{Name: "new", Hash: "h2", Scope: "read"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := db.TokenByHash(context.Background(), "h2"); err != nil || tok.Scope != "read" {
		t.Fatalf("new token: %+v, %v", tok, err)
	}
	// Tables added since (members) are created in the old file.
	if err := db.Heartbeat(context.Background(), "m", time.Now()); err != nil {
		t.Fatal(err)
	}
}
