package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/storetest"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// TestContract runs the suite every store.Store passes.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTest(t)
		return db
	})
}

func mustCreate(t *testing.T, db *DB, p pipe.Pipe) pipe.Pipe {
	t.Helper()
	got, err := db.CreatePipe(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReopenPersists(t *testing.T) {
	db, path := openTest(t)
	want := mustCreate(t, db, storetest.TestPipe("orders", "u-1"))
	st := pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK, LastModified: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
	if err := db.SetStatus(t.Context(), "orders", "u-1", 0, st); err != nil {
		t.Fatal(err)
	}
	want.Status = st
	fn, err := db.PutFunction(t.Context(), pipe.Function{Name: "f", Handler: &pipe.Handler{Path: "/bin/h", Concurrency: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ms := store.MemberStatus{PipeUUID: "u-1", Member: "m", Partitions: map[string][]int32{"orders": {3}}, Updated: time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)}
	if err := db.SetMemberStatus(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got, err := db2.GetPipe(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen = %+v\nwant %+v", got, want)
	}
	if got, err := db2.GetFunction(t.Context(), "f"); err != nil || !reflect.DeepEqual(got, fn) {
		t.Errorf("function after reopen = %+v, %v; want %+v", got, err, fn)
	}
	if got, err := db2.MemberStatuses(t.Context(), "u-1", time.Time{}); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], ms) {
		t.Errorf("member statuses after reopen = %+v, %v; want [%+v]", got, err, ms)
	}
}

// TestAtomicHoldsWriteLock: two stores on one file stand for two processes.
// A transaction that reads and then writes must not fail when the other
// writes in between: BEGIN IMMEDIATE makes the other wait (busy_timeout)
// instead. A deferred transaction would get SQLITE_BUSY at its write.
func TestAtomicHoldsWriteLock(t *testing.T) {
	ctx := t.Context()
	db, path := openTest(t)
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mustCreate(t, db, storetest.TestPipe("orders", "u-1"))
	otherDone := make(chan error, 1)
	err = db.Atomic(ctx, func(tx store.Store) error {
		p, err := tx.GetPipe(ctx, "orders")
		if err != nil {
			return err
		}
		go func() {
			otherDone <- other.SetStatus(ctx, "orders", "u-1", 0, pipe.Status{State: pipe.StateEnabled})
		}()
		// Give the other writer the chance to get in between; it must
		// not, and must not fail either.
		select {
		case err := <-otherDone:
			return fmt.Errorf("the other process wrote inside the transaction (err %v)", err)
		case <-time.After(200 * time.Millisecond):
		}
		_, err = tx.UpdatePipe(ctx, p, p.Revision)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("the other process, after the transaction: %v", err)
	}
	got, err := db.GetPipe(ctx, "orders")
	if err != nil || got.Revision != 2 || got.Status.State != pipe.StateEnabled {
		t.Fatalf("pipe = %+v, %v; want revision 2 with the other's status", got, err)
	}
}

// TestAtomicPanicReleases: the store has one connection, so a transaction
// a panic left open would stall every later call.
func TestAtomicPanicReleases(t *testing.T) {
	db, _ := openTest(t)
	func() {
		defer func() { _ = recover() }()
		_ = db.Atomic(t.Context(), func(tx store.Store) error {
			if _, err := tx.CreatePipe(t.Context(), storetest.TestPipe("orders", "u-1")); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := db.GetPipe(t.Context(), "orders"); !errors.Is(err, pipe.ErrNotFound) {
		t.Fatalf("after the panic: %v, want ErrNotFound (rolled back, connection free)", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "a?b.db"), filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if db, err := Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestPragmas(t *testing.T) {
	db, _ := openTest(t)
	var mode string
	var busy int
	if err := db.db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.db.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || busy != int(busyTimeout.Milliseconds()) {
		t.Errorf("journal_mode %q busy_timeout %d, want wal and %d", mode, busy, busyTimeout.Milliseconds())
	}
}

// TestStoreFilesPrivate: the store holds sealed secrets and token hashes,
// so a new store is readable by its user only, and an old one that others
// could read is tightened on open, with its WAL files.
func TestStoreFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ListPipes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	db.Close()

	old := filepath.Join(dir, "old.db")
	for _, p := range []string{old, old + "-wal"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err = Open(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{old, old + "-wal"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s after open: %v, %v; want mode 0600", p, st.Mode().Perm(), err)
		}
	}
}

// A spec stored before targets had kinds ({"target":{"url":…}}) reads as
// an http target.
func TestLegacyTargetReadsAsHTTP(t *testing.T) {
	s, err := pipe.DecodeStored([]byte(`{"name":"old","topics":["t"],"target":{"url":"http://127.0.0.1:9/","timeoutSeconds":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Target.Kind() != pipe.KindHTTP || s.Target.HTTP.URL != "http://127.0.0.1:9/" || s.Target.HTTP.TimeoutSeconds != 5 {
		t.Fatalf("target = %+v, want the http target of the stored fields", s.Target)
	}
}
