// These tests need a PostgreSQL server (13 or newer). Point them at one:
//
//	SLUICE_TEST_POSTGRES='postgres://USER:PASSWORD@127.0.0.1:5432/DB?sslmode=disable' \
//	    go test ./internal/store/postgres
//
// The role must be allowed to create schemas in DB (owning it is simplest):
// each test creates a schema of its own (sluice_test_<random>), runs against
// it through search_path, and drops it at the end, so tests run in parallel,
// in one database, and leave nothing behind. On a Debian machine with the
// postgresql package, .ci/run's start_postgres starts the cluster and makes
// such a role and database (sluice_test, password sluice_test).
//
// Without SLUICE_TEST_POSTGRES the tests that need a server skip, unless CI
// is set: then they fail, since .ci/run should have started PostgreSQL.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/storetest"
)

const envDSN = "SLUICE_TEST_POSTGRES"

// serverDSN is the DSN of the test server, or skips (fails under CI).
func serverDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: under CI, .ci/run should have started PostgreSQL and set it", envDSN)
		}
		t.Skipf("%s is not set; see the top of postgres_test.go", envDSN)
	}
	return dsn
}

// freshSchema creates an empty schema, dropped when t ends, and returns a
// DSN whose search_path selects it.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := serverDSN(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "sluice_test_" + hex.EncodeToString(b)
	admin(t, base, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { admin(t, base, `DROP SCHEMA `+schema+` CASCADE`) })
	return withParam(base, "search_path", schema)
}

// admin runs sql on its own connection to the server.
func admin(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withParam adds a connection parameter to a URL or keyword/value DSN.
func withParam(dsn, key, value string) string {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set(key, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " " + key + "=" + value
}

func openDSN(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	serverDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openDSN(t, freshSchema(t)) })
}

// TestMigrationsRunOnce: processes starting together on an empty schema
// all come up, and each migration is applied and recorded once.
func TestMigrationsRunOnce(t *testing.T) {
	dsn := freshSchema(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 3)
	errs := make([]error, 3)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := dbs[0].pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(ms) {
		t.Fatalf("schema_migrations = %v, want versions 1…%d once each", versions, len(ms))
	}
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("schema_migrations = %v, want versions 1…%d once each", versions, len(ms))
		}
	}
	// Each works on the one schema.
	if _, err := dbs[1].CreatePipe(t.Context(), storetest.TestPipe("orders", "u-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[2].GetPipe(t.Context(), "orders"); err != nil {
		t.Fatal(err)
	}
	// A later start finds nothing to do.
	openDSN(t, dsn).Close()
}

func TestSchemaTooNew(t *testing.T) {
	dsn := freshSchema(t)
	db := openDSN(t, dsn)
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES (9999)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew naming version 9999", err)
	}
}

func TestSearchPathWithoutSchema(t *testing.T) {
	dsn := withParam(serverDSN(t), "search_path", "sluice_test_no_such_schema")
	_, err := Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "search_path") {
		t.Fatalf("open: %v, want an error about the search_path", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil || len(ms) < 2 || ms[0].version != 1 {
		t.Fatalf("migrations %v, %v", ms, err)
	}
}

// recv waits for a send on ch.
func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: nothing sent within 15s", what)
	}
}

// TestChanges: a write through another DB (another process) is heard of,
// and so is a lost listening connection, after which writes are heard of
// again.
func TestChanges(t *testing.T) {
	dsn := freshSchema(t)
	listener := openDSN(t, dsn)
	writer := openDSN(t, dsn)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := listener.Changes(ctx)

	if _, err := writer.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://f/"}); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "after another process's write")

	old := listener.listenPID.Load()
	admin(t, serverDSN(t), `SELECT pg_terminate_backend($1)`, old)
	recv(t, ch, "after the listening connection was killed")
	if pid := listener.listenPID.Load(); pid == old {
		t.Fatalf("still listening on backend %d", pid)
	}
	if _, err := writer.CreatePipe(ctx, storetest.TestPipe("orders", "u-1")); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "after a write on the new connection")

	cancel()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after ctx ended")
		}
	}
}

// TestChangesClosedByClose: Close stops the listeners it started.
func TestChangesClosedByClose(t *testing.T) {
	db, err := Open(t.Context(), freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	ch := db.Changes(context.Background())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		// A send may be pending; the close must follow.
		if _, ok := <-ch; ok {
			t.Fatal("channel still open after Close")
		}
	}
	if _, ok := <-db.Changes(context.Background()); ok {
		t.Fatal("Changes after Close sent instead of closing")
	}
}

// TestNotifiedTables listens on the raw channel, so what is announced can
// be checked in commit order: status, member statuses, heartbeats and a
// rolled-back transaction say nothing, and the desired-state tables do.
func TestNotifiedTables(t *testing.T) {
	dsn := freshSchema(t)
	db := openDSN(t, dsn)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			t.Fatal(err)
		}
		return n.Payload
	}
	want := func(table string) {
		t.Helper()
		if got := next(); got != db.schema+"."+table {
			t.Fatalf("notification %q, want %q", got, db.schema+"."+table)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	p, err := db.CreatePipe(ctx, storetest.TestPipe("orders", "u-1"))
	must(err)
	want("pipes")
	// Quiet writes, then one that speaks: it must be the next heard.
	must(db.SetStatus(ctx, "orders", "u-1", 0, pipe.Status{State: pipe.StateEnabled}))
	must(db.Heartbeat(ctx, "m", time.Now()))
	must(db.SetMemberStatus(ctx, store.MemberStatus{PipeUUID: "u-1", Member: "m"}))
	err = db.Atomic(ctx, func(tx store.Store) error {
		if _, err := tx.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://f/"}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("atomic did not fail")
	}
	_, err = db.PutCluster(ctx, cluster.Cluster{Name: "c"})
	must(err)
	want("clusters")

	_, err = db.UpdatePipe(ctx, p, 1)
	must(err)
	want("pipes")
	_, err = db.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://f/"})
	must(err)
	want("functions")
	_, err = db.PutSecret(ctx, store.SealedSecret{Name: "s", Type: "generic", Sealed: []byte{1}})
	must(err)
	want("secrets")
	_, err = db.CreateToken(ctx, store.Token{Name: "t", Hash: "h", Scope: "read"})
	must(err)
	want("tokens")
	must(db.DeletePipe(ctx, "orders"))
	want("pipes")
}

const sentinel = "pw-Sentinel-9f3e"

// TestPasswordNotInErrors: whatever fails, the DSN's password stays out of
// the error.
func TestPasswordNotInErrors(t *testing.T) {
	dsns := []string{
		"postgres://sluice:" + sentinel + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5", // refused
		"postgres://sluice:" + sentinel + "@127.0.0.1:notaport/db",                            // unparsable
		"postgres://sluice@127.0.0.1:notaport/db?password=" + sentinel,
		"host=127.0.0.1 port=1 user=sluice connect_timeout=5 password=" + sentinel,
		"host=127.0.0.1 port=notaport user=sluice password='" + sentinel + " quoted'",
		"postgres://sluice:" + sentinel + "@[::1/db", // broken brackets
	}
	if base := os.Getenv(envDSN); base != "" {
		// The server refuses the password.
		cfg, err := pgconn.ParseConfig(base)
		if err != nil {
			t.Fatal(err)
		}
		dsns = append(dsns, fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable",
			url.PathEscape(cfg.User), sentinel, cfg.Host, cfg.Port, url.PathEscape(cfg.Database)))
	}
	for _, dsn := range dsns {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		db, err := Open(ctx, dsn)
		cancel()
		if err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded", Redact(dsn))
			continue
		}
		if strings.Contains(err.Error(), sentinel) || strings.Contains(err.Error(), "Sentinel") {
			t.Errorf("error shows the password: %v", err)
		}
		if r := Redact(dsn); strings.Contains(r, "Sentinel") {
			t.Errorf("Redact(…) = %s", r)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u:s%40cret@h/db", "postgresql://u:xxxxx@h/db"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:secret@h:bad/db?password=secret", "postgres://xxxxx@h:bad/db?password=xxxxx"},
		{"host=h password=secret user=u", "host=h password=xxxxx user=u"},
		{"host=h password = 'sec ret\\'s' user=u", "host=h password = xxxxx user=u"},
		{"host=h user=u", "host=h user=u"},
		{"host=h sslpassword=secret", "host=h sslpassword=xxxxx"},
		{"postgres://u@h/db?sslpassword=secret", "postgres://u@h/db?sslpassword=xxxxx"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
