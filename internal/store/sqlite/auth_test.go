package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

func TestClusters(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	c := cluster.Cluster{Name: "msk", BootstrapServers: []string{"b-1:9096"}, Auth: cluster.AuthScramSHA512,
		User: "alice", PasswordSecret: "msk-creds/password", MSK: true}
	put, err := db.PutCluster(ctx, c)
	if err != nil || put.LastModified.IsZero() {
		t.Fatalf("put: %v %+v", err, put)
	}
	got, err := db.GetCluster(ctx, "msk")
	if err != nil || !reflect.DeepEqual(got, put) {
		t.Fatalf("get = %+v, %v; want %+v", got, err, put)
	}
	c.User = "bob"
	if _, err := db.PutCluster(ctx, c); err != nil {
		t.Fatal(err)
	}
	all, err := db.ListClusters(ctx)
	if err != nil || len(all) != 1 || all[0].User != "bob" {
		t.Fatalf("list = %+v, %v", all, err)
	}
	if err := db.DeleteCluster(ctx, "msk"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetCluster(ctx, "msk"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := db.DeleteCluster(ctx, "msk"); !errors.Is(err, cluster.ErrNotFound) {
		t.Fatalf("delete again: %v", err)
	}
}

func TestSecretsAndTokens(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	sealed := []byte{0, 1, 2, 255, 254}
	put, err := db.PutSecret(ctx, store.SealedSecret{Name: "creds", Type: "generic", Keys: []string{"password", "username"}, Sealed: sealed})
	if err != nil || put.Created.IsZero() || !reflect.DeepEqual(put.Sealed, sealed) {
		t.Fatalf("put: %v %+v", err, put)
	}
	again, err := db.PutSecret(ctx, store.SealedSecret{Name: "creds", Type: "generic", Keys: []string{"password"}, Sealed: []byte{9}})
	if err != nil || !again.Created.Equal(put.Created) || len(again.Keys) != 1 {
		t.Fatalf("replace kept Created? %v %+v", err, again)
	}
	if l, err := db.ListSecrets(ctx); err != nil || len(l) != 1 {
		t.Fatalf("list: %v %+v", err, l)
	}
	if err := db.DeleteSecret(ctx, "creds"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSecret(ctx, "creds"); !errors.Is(err, secret.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}

	tok, err := db.CreateToken(ctx, store.Token{Name: "ci", Hash: "abc", Scope: "read"})
	if err != nil || tok.Created.IsZero() {
		t.Fatal(err)
	}
	if _, err := db.CreateToken(ctx, store.Token{Name: "ci", Hash: "def", Scope: "read"}); !errors.Is(err, pipe.ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if got, err := db.TokenByHash(ctx, "abc"); err != nil || got.Name != "ci" {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if _, err := db.TokenByHash(ctx, "nope"); !errors.Is(err, store.ErrTokenNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if l, err := db.ListTokens(ctx); err != nil || len(l) != 1 {
		t.Fatalf("list tokens: %+v %v", l, err)
	}
	if err := db.DeleteToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenByHash(ctx, "abc"); !errors.Is(err, store.ErrTokenNotFound) {
		t.Fatalf("deleted token still found: %v", err)
	}
}

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
}
