package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

func testPipe(name, uuid string) pipe.Pipe {
	return pipe.Pipe{
		Spec: pipe.Spec{
			Name:             name,
			UUID:             uuid,
			BootstrapServers: []string{"127.0.0.1:9092"},
			Topics:           []string{"orders"},
			Target:           pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:9000/"}},
		}.Normalize(),
		Status: pipe.Status{
			State:                pipe.StateCreating,
			LastProcessingResult: pipe.ResultNoRecords,
			LastModified:         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
}

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

func TestStore(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, db *DB)
	}{
		{"create returns revision 1 and get reads it back", func(t *testing.T, db *DB) {
			in := testPipe("orders", "u-1")
			in.Revision = 7 // ignored: a new pipe is revision 1
			got, err := db.CreatePipe(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Revision != 1 {
				t.Errorf("revision = %d, want 1", got.Revision)
			}
			read, err := db.GetPipe(ctx, "orders")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(read, got) {
				t.Errorf("get = %+v\nwant %+v", read, got)
			}
		}},
		{"duplicate name is ErrExists", func(t *testing.T, db *DB) {
			mustCreate(t, db, testPipe("orders", "u-1"))
			_, err := db.CreatePipe(ctx, testPipe("orders", "u-2"))
			if !errors.Is(err, pipe.ErrExists) {
				t.Fatalf("err = %v, want ErrExists", err)
			}
		}},
		{"duplicate uuid is ErrExists", func(t *testing.T, db *DB) {
			mustCreate(t, db, testPipe("orders", "u-1"))
			_, err := db.CreatePipe(ctx, testPipe("payments", "u-1"))
			if !errors.Is(err, pipe.ErrExists) {
				t.Fatalf("err = %v, want ErrExists", err)
			}
		}},
		{"missing uuid is refused", func(t *testing.T, db *DB) {
			if _, err := db.CreatePipe(ctx, testPipe("orders", "")); err == nil {
				t.Fatal("created a pipe without a UUID")
			}
		}},
		{"get missing is ErrNotFound", func(t *testing.T, db *DB) {
			if _, err := db.GetPipe(ctx, "nope"); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		}},
		{"list is ordered by name and empty is non-nil", func(t *testing.T, db *DB) {
			empty, err := db.ListPipes(ctx)
			if err != nil || empty == nil || len(empty) != 0 {
				t.Fatalf("empty list = %#v, %v; want [] and nil", empty, err)
			}
			for i, n := range []string{"charlie", "alpha", "bravo"} {
				mustCreate(t, db, testPipe(n, "u-"+string(rune('a'+i))))
			}
			ps, err := db.ListPipes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			if want := []string{"alpha", "bravo", "charlie"}; !reflect.DeepEqual(names, want) {
				t.Errorf("names = %v, want %v", names, want)
			}
		}},
		{"delete removes, then ErrNotFound", func(t *testing.T, db *DB) {
			mustCreate(t, db, testPipe("orders", "u-1"))
			if err := db.DeletePipe(ctx, "orders"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.GetPipe(ctx, "orders"); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("get after delete: %v, want ErrNotFound", err)
			}
			if err := db.DeletePipe(ctx, "orders"); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("second delete: %v, want ErrNotFound", err)
			}
		}},
		{"delete then re-create with the same name", func(t *testing.T, db *DB) {
			mustCreate(t, db, testPipe("orders", "u-1"))
			if err := db.DeletePipe(ctx, "orders"); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, db, testPipe("orders", "u-2"))
		}},
		{"set status keeps revision", func(t *testing.T, db *DB) {
			mustCreate(t, db, testPipe("orders", "u-1"))
			st := pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK, LastModified: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
			if err := db.SetStatus(ctx, "orders", "u-1", 0, st); err != nil {
				t.Fatal(err)
			}
			got, err := db.GetPipe(ctx, "orders")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Status, st) || got.Revision != 1 {
				t.Errorf("status = %+v rev %d, want %+v rev 1", got.Status, got.Revision, st)
			}
		}},
		{"set status with wrong uuid is ErrNotFound and changes nothing", func(t *testing.T, db *DB) {
			want := mustCreate(t, db, testPipe("orders", "u-1"))
			err := db.SetStatus(ctx, "orders", "u-old", 0, pipe.Status{State: pipe.StateDisabled})
			if !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			got, _ := db.GetPipe(ctx, "orders")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("pipe changed to %+v", got)
			}
		}},
		{"update bumps revision and replaces spec and status", func(t *testing.T, db *DB) {
			p := mustCreate(t, db, testPipe("orders", "u-1"))
			p.BatchSize = 500
			p.Status.State = pipe.StateUpdating
			got, err := db.UpdatePipe(ctx, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := db.GetPipe(ctx, "orders")
			if got.Revision != 2 || !reflect.DeepEqual(stored, got) || stored.BatchSize != 500 || stored.Status.State != pipe.StateUpdating {
				t.Errorf("returned %+v, stored %+v", got, stored)
			}
		}},
		{"update from a stale revision is ErrConflict and changes nothing", func(t *testing.T, db *DB) {
			p := mustCreate(t, db, testPipe("orders", "u-1"))
			if _, err := db.UpdatePipe(ctx, p, 1); err != nil {
				t.Fatal(err)
			}
			p.BatchSize = 7
			if _, err := db.UpdatePipe(ctx, p, 1); !errors.Is(err, pipe.ErrConflict) {
				t.Fatalf("err = %v, want ErrConflict", err)
			}
			if got, _ := db.GetPipe(ctx, "orders"); got.Revision != 2 || got.BatchSize == 7 {
				t.Errorf("stale write landed: %+v", got)
			}
		}},
		{"update of a re-created pipe's old uuid is ErrNotFound", func(t *testing.T, db *DB) {
			old := mustCreate(t, db, testPipe("orders", "u-1"))
			if err := db.DeletePipe(ctx, "orders"); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, db, testPipe("orders", "u-2"))
			if _, err := db.UpdatePipe(ctx, old, 1); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		}},
		{"status from a stale revision is ErrNotFound", func(t *testing.T, db *DB) {
			p := mustCreate(t, db, testPipe("orders", "u-1"))
			if _, err := db.UpdatePipe(ctx, p, 1); err != nil {
				t.Fatal(err)
			}
			if err := db.SetStatus(ctx, "orders", "u-1", 1, pipe.Status{State: pipe.StateEnabled}); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if err := db.SetStatus(ctx, "orders", "u-1", 2, pipe.Status{State: pipe.StateEnabled}); err != nil {
				t.Fatal(err)
			}
		}},
		{"set status of missing pipe is ErrNotFound", func(t *testing.T, db *DB) {
			if err := db.SetStatus(ctx, "nope", "u-1", 0, pipe.Status{}); !errors.Is(err, pipe.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, _ := openTest(t)
			c.run(t, db)
		})
	}
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
	want := mustCreate(t, db, testPipe("orders", "u-1"))
	st := pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK, LastModified: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
	if err := db.SetStatus(t.Context(), "orders", "u-1", 0, st); err != nil {
		t.Fatal(err)
	}
	want.Status = st
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
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "a?b.db"), filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if db, err := Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

// The engine writes status while the API reads and writes pipes; the single
// pooled connection must serialise them without SQLITE_BUSY.
func TestConcurrentUse(t *testing.T) {
	db, _ := openTest(t)
	mustCreate(t, db, testPipe("orders", "u-1"))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Go(func() {
			errs <- db.SetStatus(t.Context(), "orders", "u-1", 0, pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK})
		})
		wg.Go(func() {
			_, err := db.CreatePipe(t.Context(), testPipe("p"+string(rune('a'+i)), "uu-"+string(rune('a'+i))))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ps, err := db.ListPipes(t.Context())
	if err != nil || len(ps) != 21 {
		t.Fatalf("list = %d pipes, %v; want 21", len(ps), err)
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

func TestFunctions(t *testing.T) {
	db, path := openTest(t)
	ctx := t.Context()
	if _, err := db.GetFunction(ctx, "f"); !errors.Is(err, pipe.ErrFunctionNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := db.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://a/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://b/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutFunction(ctx, pipe.Function{Name: "e", URL: "http://e/"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs, err := db.ListFunctions(ctx)
	if err != nil || len(fs) != 2 || fs[0].Name != "e" || fs[1].URL != "http://b/" || fs[1].LastModified.IsZero() {
		t.Fatalf("list %+v, %v", fs, err)
	}
	if err := db.DeleteFunction(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteFunction(ctx, "f"); !errors.Is(err, pipe.ErrFunctionNotFound) {
		t.Fatalf("second delete: %v", err)
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
