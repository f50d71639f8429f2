// Package storetest is the contract suite of store.Store: every
// implementation's tests call Run, so the embedded and the shared store
// cannot drift apart. What is specific to one implementation (files,
// migrations, notifications) stays in its own tests.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// Run runs the contract suite. open returns a new, empty store for one
// subtest and closes it (t.Cleanup) when that subtest ends; subtests run in
// parallel, each with its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"pipes", pipeCases},
		{"functions", functionCases},
		{"clusters", clusterCases},
		{"secrets", secretCases},
		{"tokens", tokenCases},
		{"members", memberCases},
		{"atomic", atomicCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, open(t))
				})
			}
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Names in an order where byte order (what the stores promise) differs
// from a natural-language collation.
var unorderedNames = []string{"charlie", "Bravo", "alpha", "_x", "alpha-2"}

func byteOrdered(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

// TestPipe is a valid pipe to store.
func TestPipe(name, uuid string) pipe.Pipe {
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

func mustCreate(t *testing.T, s store.Pipes, p pipe.Pipe) pipe.Pipe {
	t.Helper()
	got, err := s.CreatePipe(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustGet(t *testing.T, s store.Pipes, name string) pipe.Pipe {
	t.Helper()
	got, err := s.GetPipe(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var pipeCases = []testCase{
	{"create returns revision 1 and get reads it back", func(t *testing.T, s store.Store) {
		in := TestPipe("orders", "u-1")
		in.Revision = 7 // ignored: a new pipe is revision 1
		got, err := s.CreatePipe(t.Context(), in)
		noErr(t, err)
		if got.Revision != 1 {
			t.Errorf("revision = %d, want 1", got.Revision)
		}
		if read := mustGet(t, s, "orders"); !reflect.DeepEqual(read, got) {
			t.Errorf("get = %+v\nwant %+v", read, got)
		}
	}},
	{"duplicate name is ErrExists", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		_, err := s.CreatePipe(t.Context(), TestPipe("orders", "u-2"))
		wantErr(t, "create", err, pipe.ErrExists)
	}},
	{"duplicate uuid is ErrExists", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		_, err := s.CreatePipe(t.Context(), TestPipe("payments", "u-1"))
		wantErr(t, "create", err, pipe.ErrExists)
		if _, err := s.GetPipe(t.Context(), "payments"); !errors.Is(err, pipe.ErrNotFound) {
			t.Errorf("payments stored anyway: %v", err)
		}
	}},
	{"missing uuid is refused", func(t *testing.T, s store.Store) {
		if _, err := s.CreatePipe(t.Context(), TestPipe("orders", "")); err == nil {
			t.Fatal("created a pipe without a UUID")
		}
	}},
	{"get missing is ErrNotFound", func(t *testing.T, s store.Store) {
		_, err := s.GetPipe(t.Context(), "nope")
		wantErr(t, "get", err, pipe.ErrNotFound)
	}},
	{"list is ordered by name and empty is non-nil", func(t *testing.T, s store.Store) {
		empty, err := s.ListPipes(t.Context())
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("empty list = %#v, %v; want [] and nil", empty, err)
		}
		for i, n := range unorderedNames {
			mustCreate(t, s, TestPipe(n, fmt.Sprintf("u-%d", i)))
		}
		ps, err := s.ListPipes(t.Context())
		noErr(t, err)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if want := byteOrdered(unorderedNames); !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		if got := ps[0]; !reflect.DeepEqual(got, mustGet(t, s, got.Name)) {
			t.Errorf("listed %+v differs from get", got)
		}
	}},
	{"delete removes, then ErrNotFound", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		noErr(t, s.DeletePipe(t.Context(), "orders"))
		_, err := s.GetPipe(t.Context(), "orders")
		wantErr(t, "get after delete", err, pipe.ErrNotFound)
		wantErr(t, "second delete", s.DeletePipe(t.Context(), "orders"), pipe.ErrNotFound)
	}},
	{"delete then re-create with the same name", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		noErr(t, s.DeletePipe(t.Context(), "orders"))
		mustCreate(t, s, TestPipe("orders", "u-2"))
		if got := mustGet(t, s, "orders"); got.UUID != "u-2" || got.Revision != 1 {
			t.Errorf("re-created pipe = %s rev %d, want u-2 rev 1", got.UUID, got.Revision)
		}
	}},
	{"set status keeps revision", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		st := pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK, LastModified: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
		noErr(t, s.SetStatus(t.Context(), "orders", "u-1", 0, st))
		got := mustGet(t, s, "orders")
		if !reflect.DeepEqual(got.Status, st) || got.Revision != 1 {
			t.Errorf("status = %+v rev %d, want %+v rev 1", got.Status, got.Revision, st)
		}
	}},
	{"set status with wrong uuid is ErrNotFound and changes nothing", func(t *testing.T, s store.Store) {
		want := mustCreate(t, s, TestPipe("orders", "u-1"))
		err := s.SetStatus(t.Context(), "orders", "u-old", 0, pipe.Status{State: pipe.StateDisabled})
		wantErr(t, "set status", err, pipe.ErrNotFound)
		if got := mustGet(t, s, "orders"); !reflect.DeepEqual(got, want) {
			t.Errorf("pipe changed to %+v", got)
		}
	}},
	{"set status of missing pipe is ErrNotFound", func(t *testing.T, s store.Store) {
		wantErr(t, "set status", s.SetStatus(t.Context(), "nope", "u-1", 0, pipe.Status{}), pipe.ErrNotFound)
	}},
	{"status from a stale revision is ErrNotFound", func(t *testing.T, s store.Store) {
		p := mustCreate(t, s, TestPipe("orders", "u-1"))
		_, err := s.UpdatePipe(t.Context(), p, 1)
		noErr(t, err)
		wantErr(t, "stale status", s.SetStatus(t.Context(), "orders", "u-1", 1, pipe.Status{State: pipe.StateEnabled}), pipe.ErrNotFound)
		if got := mustGet(t, s, "orders"); got.Status.State == pipe.StateEnabled {
			t.Errorf("stale status landed: %+v", got.Status)
		}
		noErr(t, s.SetStatus(t.Context(), "orders", "u-1", 2, pipe.Status{State: pipe.StateEnabled}))
		if got := mustGet(t, s, "orders"); got.Status.State != pipe.StateEnabled || got.Revision != 2 {
			t.Errorf("status at the current revision: %+v rev %d", got.Status, got.Revision)
		}
	}},
	{"update bumps revision and replaces spec and status", func(t *testing.T, s store.Store) {
		p := mustCreate(t, s, TestPipe("orders", "u-1"))
		p.BatchSize = 500
		p.Status.State = pipe.StateUpdating
		got, err := s.UpdatePipe(t.Context(), p, 1)
		noErr(t, err)
		stored := mustGet(t, s, "orders")
		if got.Revision != 2 || !reflect.DeepEqual(stored, got) || stored.BatchSize != 500 || stored.Status.State != pipe.StateUpdating {
			t.Errorf("returned %+v, stored %+v", got, stored)
		}
	}},
	{"update from a stale revision is ErrConflict and changes nothing", func(t *testing.T, s store.Store) {
		p := mustCreate(t, s, TestPipe("orders", "u-1"))
		_, err := s.UpdatePipe(t.Context(), p, 1)
		noErr(t, err)
		p.BatchSize = 7
		_, err = s.UpdatePipe(t.Context(), p, 1)
		wantErr(t, "stale update", err, pipe.ErrConflict)
		if got := mustGet(t, s, "orders"); got.Revision != 2 || got.BatchSize == 7 {
			t.Errorf("stale write landed: %+v", got)
		}
	}},
	{"update of a re-created pipe's old uuid is ErrNotFound", func(t *testing.T, s store.Store) {
		old := mustCreate(t, s, TestPipe("orders", "u-1"))
		noErr(t, s.DeletePipe(t.Context(), "orders"))
		mustCreate(t, s, TestPipe("orders", "u-2"))
		_, err := s.UpdatePipe(t.Context(), old, 1)
		wantErr(t, "update", err, pipe.ErrNotFound)
	}},
	{"update of a missing pipe is ErrNotFound", func(t *testing.T, s store.Store) {
		_, err := s.UpdatePipe(t.Context(), TestPipe("nope", "u-1"), 1)
		wantErr(t, "update", err, pipe.ErrNotFound)
	}},
	{"racing updates from one revision: exactly one wins", func(t *testing.T, s store.Store) {
		p := mustCreate(t, s, TestPipe("orders", "u-1"))
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				q := p
				q.BatchSize = 10 + i
				_, err := s.UpdatePipe(t.Context(), q, 1)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, pipe.ErrConflict):
				t.Errorf("loser: %v, want ErrConflict", err)
			}
		}
		if got := mustGet(t, s, "orders"); won != 1 || got.Revision != 2 {
			t.Errorf("%d writers won, revision %d; want 1 and 2", won, got.Revision)
		}
	}},
	{"concurrent status writes and creates", func(t *testing.T, s store.Store) {
		mustCreate(t, s, TestPipe("orders", "u-1"))
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 20 {
			wg.Go(func() {
				errs <- s.SetStatus(t.Context(), "orders", "u-1", 0, pipe.Status{State: pipe.StateEnabled, LastProcessingResult: pipe.ResultOK})
			})
			wg.Go(func() {
				_, err := s.CreatePipe(t.Context(), TestPipe(fmt.Sprintf("p%02d", i), fmt.Sprintf("uu-%d", i)))
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
		ps, err := s.ListPipes(t.Context())
		if err != nil || len(ps) != 21 {
			t.Fatalf("list = %d pipes, %v; want 21", len(ps), err)
		}
	}},
}

var functionCases = []testCase{
	{"missing is ErrFunctionNotFound", func(t *testing.T, s store.Store) {
		_, err := s.GetFunction(t.Context(), "f")
		wantErr(t, "get", err, pipe.ErrFunctionNotFound)
		wantErr(t, "delete", s.DeleteFunction(t.Context(), "f"), pipe.ErrFunctionNotFound)
	}},
	{"put, replace, list ordered, delete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		put, err := s.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://a/"})
		noErr(t, err)
		if put.LastModified.IsZero() || put.LastModified.Location() != time.UTC {
			t.Errorf("LastModified = %v, want a UTC time", put.LastModified)
		}
		if got, err := s.GetFunction(ctx, "f"); err != nil || !reflect.DeepEqual(got, put) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, put)
		}
		_, err = s.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://b/"})
		noErr(t, err)
		for _, n := range unorderedNames {
			_, err := s.PutFunction(ctx, pipe.Function{Name: n, URL: "http://" + n + "/"})
			noErr(t, err)
		}
		fs, err := s.ListFunctions(ctx)
		noErr(t, err)
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
			if f.Name == "f" && f.URL != "http://b/" {
				t.Errorf("replaced function has URL %q", f.URL)
			}
		}
		if want := byteOrdered(append(unorderedNames, "f")); !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		noErr(t, s.DeleteFunction(ctx, "f"))
		wantErr(t, "second delete", s.DeleteFunction(ctx, "f"), pipe.ErrFunctionNotFound)
	}},
	{"a hosted function's handler round-trips, and status is not stored", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		h := &pipe.Handler{Path: "/opt/fn/bootstrap", Env: map[string]string{"A": "1", "B": "two words"},
			Concurrency: 3, TimeoutSeconds: 1.5, MemoryMB: 256}
		put, err := s.PutFunction(ctx, pipe.Function{Name: "hosted", Handler: h, Status: &pipe.FunctionStatus{Processes: 2}})
		noErr(t, err)
		if put.Status != nil {
			t.Errorf("put returned status %+v", put.Status)
		}
		got, err := s.GetFunction(ctx, "hosted")
		noErr(t, err)
		if !reflect.DeepEqual(got.Handler, h) || got.Status != nil || got.Kind() != pipe.FunctionHosted {
			t.Fatalf("get = %+v (handler %+v), want handler %+v and no status", got, got.Handler, h)
		}
		if fs, err := s.ListFunctions(ctx); err != nil || len(fs) != 1 || !reflect.DeepEqual(fs[0], got) {
			t.Fatalf("list = %+v, %v; want [%+v]", fs, err, got)
		}
		// Replacing a hosted function by a URL one drops the handler.
		_, err = s.PutFunction(ctx, pipe.Function{Name: "hosted", URL: "http://u/"})
		noErr(t, err)
		if got, err := s.GetFunction(ctx, "hosted"); err != nil || got.Handler != nil || got.URL != "http://u/" {
			t.Fatalf("after replace: %+v, %v", got, err)
		}
	}},
}

var clusterCases = []testCase{
	{"put, get, replace, list ordered, delete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := cluster.Cluster{Name: "msk", BootstrapServers: []string{"b-1:9096"}, Auth: cluster.AuthScramSHA512,
			User: "alice", PasswordSecret: "msk-creds/password", MSK: true}
		put, err := s.PutCluster(ctx, c)
		if err != nil || put.LastModified.IsZero() {
			t.Fatalf("put: %v %+v", err, put)
		}
		if got, err := s.GetCluster(ctx, "msk"); err != nil || !reflect.DeepEqual(got, put) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, put)
		}
		c.User = "bob"
		_, err = s.PutCluster(ctx, c)
		noErr(t, err)
		if all, err := s.ListClusters(ctx); err != nil || len(all) != 1 || all[0].User != "bob" {
			t.Fatalf("list = %+v, %v", all, err)
		}
		for _, n := range unorderedNames {
			_, err := s.PutCluster(ctx, cluster.Cluster{Name: n, BootstrapServers: []string{"k:9092"}})
			noErr(t, err)
		}
		all, err := s.ListClusters(ctx)
		noErr(t, err)
		var names []string
		for _, c := range all {
			names = append(names, c.Name)
		}
		if want := byteOrdered(append(unorderedNames, "msk")); !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		noErr(t, s.DeleteCluster(ctx, "msk"))
		_, err = s.GetCluster(ctx, "msk")
		wantErr(t, "get deleted", err, cluster.ErrNotFound)
		wantErr(t, "delete again", s.DeleteCluster(ctx, "msk"), cluster.ErrNotFound)
	}},
	{"empty list is non-nil", func(t *testing.T, s store.Store) {
		if all, err := s.ListClusters(t.Context()); err != nil || all == nil || len(all) != 0 {
			t.Fatalf("list = %#v, %v", all, err)
		}
	}},
}

var secretCases = []testCase{
	{"put keeps sealed bytes and brokers, replace keeps Created", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		sealed := []byte{0, 1, 2, 255, 254, 0}
		put, err := s.PutSecret(ctx, store.SealedSecret{Name: "creds", Type: "generic", Keys: []string{"password", "username"},
			Brokers: []string{"b-1:9096", "b-2:9096"}, Sealed: sealed})
		if err != nil || put.Created.IsZero() || !put.Created.Equal(put.Updated) || put.Created.Location() != time.UTC {
			t.Fatalf("put: %v %+v", err, put)
		}
		if !reflect.DeepEqual(put.Sealed, sealed) || !reflect.DeepEqual(put.Keys, []string{"password", "username"}) ||
			!reflect.DeepEqual(put.Brokers, []string{"b-1:9096", "b-2:9096"}) {
			t.Fatalf("put returned %+v", put)
		}
		if got, err := s.GetSecret(ctx, "creds"); err != nil || !reflect.DeepEqual(got, put) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, put)
		}
		again, err := s.PutSecret(ctx, store.SealedSecret{Name: "creds", Type: "generic", Keys: []string{"password"}, Sealed: []byte{9}})
		noErr(t, err)
		if !again.Created.Equal(put.Created) || again.Updated.Before(put.Updated) || len(again.Keys) != 1 ||
			again.Brokers != nil || !reflect.DeepEqual(again.Sealed, []byte{9}) {
			t.Fatalf("replaced = %+v; want Created %v kept, one key, no brokers", again, put.Created)
		}
	}},
	{"missing is secret.ErrNotFound", func(t *testing.T, s store.Store) {
		_, err := s.GetSecret(t.Context(), "nope")
		wantErr(t, "get", err, secret.ErrNotFound)
		wantErr(t, "delete", s.DeleteSecret(t.Context(), "nope"), secret.ErrNotFound)
	}},
	{"list ordered and delete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if l, err := s.ListSecrets(ctx); err != nil || l == nil || len(l) != 0 {
			t.Fatalf("empty list = %#v, %v", l, err)
		}
		for _, n := range unorderedNames {
			_, err := s.PutSecret(ctx, store.SealedSecret{Name: n, Type: "generic", Keys: []string{"k"}, Sealed: []byte(n)})
			noErr(t, err)
		}
		l, err := s.ListSecrets(ctx)
		noErr(t, err)
		var names []string
		for _, sec := range l {
			names = append(names, sec.Name)
			if string(sec.Sealed) != sec.Name {
				t.Errorf("%s: sealed %q", sec.Name, sec.Sealed)
			}
		}
		if want := byteOrdered(unorderedNames); !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		noErr(t, s.DeleteSecret(ctx, "alpha"))
		_, err = s.GetSecret(ctx, "alpha")
		wantErr(t, "get deleted", err, secret.ErrNotFound)
	}},
}

var tokenCases = []testCase{
	{"create, by hash, list ordered, delete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		tok, err := s.CreateToken(ctx, store.Token{Name: "ci", Hash: "abc", Scope: "read"})
		if err != nil || tok.Created.IsZero() {
			t.Fatalf("create: %+v, %v", tok, err)
		}
		_, err = s.CreateToken(ctx, store.Token{Name: "ci", Hash: "def", Scope: "read"})
		wantErr(t, "duplicate name", err, pipe.ErrExists)
		got, err := s.TokenByHash(ctx, "abc")
		if err != nil || got.Name != "ci" || got.Scope != "read" || !got.Created.Equal(tok.Created) {
			t.Fatalf("by hash: %+v %v; want %+v", got, err, tok)
		}
		_, err = s.TokenByHash(ctx, "nope")
		wantErr(t, "unknown hash", err, store.ErrTokenNotFound)
		for i, n := range unorderedNames {
			_, err := s.CreateToken(ctx, store.Token{Name: n, Hash: fmt.Sprintf("h%d", i), Scope: "admin"})
			noErr(t, err)
		}
		l, err := s.ListTokens(ctx)
		noErr(t, err)
		var names []string
		for _, tk := range l {
			names = append(names, tk.Name)
		}
		if want := byteOrdered(append(unorderedNames, "ci")); !reflect.DeepEqual(names, want) {
			t.Errorf("names = %v, want %v", names, want)
		}
		noErr(t, s.DeleteToken(ctx, "ci"))
		_, err = s.TokenByHash(ctx, "abc")
		wantErr(t, "deleted token", err, store.ErrTokenNotFound)
		wantErr(t, "delete again", s.DeleteToken(ctx, "ci"), store.ErrTokenNotFound)
	}},
	{"a token without a scope is refused", func(t *testing.T, s store.Store) {
		if _, err := s.CreateToken(t.Context(), store.Token{Name: "x", Hash: "h"}); err == nil {
			t.Fatal("stored a token without a scope")
		}
	}},
	{"empty list is non-nil", func(t *testing.T, s store.Store) {
		if l, err := s.ListTokens(t.Context()); err != nil || l == nil || len(l) != 0 {
			t.Fatalf("list = %#v, %v", l, err)
		}
	}},
}

// t0 is a time whole in microseconds: the stores keep at least that.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

var memberCases = []testCase{
	{"heartbeats and live since", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if l, err := s.LiveMembers(ctx, time.Time{}); err != nil || l == nil || len(l) != 0 {
			t.Fatalf("no members = %#v, %v; want []", l, err)
		}
		noErr(t, s.Heartbeat(ctx, "c", t0.Add(time.Second)))
		noErr(t, s.Heartbeat(ctx, "a", t0))
		noErr(t, s.Heartbeat(ctx, "b", t0.Add(2*time.Second)))
		live := func(since time.Time, want ...string) {
			t.Helper()
			got, err := s.LiveMembers(ctx, since)
			noErr(t, err)
			if want == nil {
				want = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("live since %v = %v, want %v", since, got, want)
			}
		}
		live(time.Time{}, "a", "b", "c")
		live(t0, "a", "b", "c")
		live(t0.Add(time.Microsecond), "b", "c")
		live(t0.Add(time.Second), "b", "c") // at the heartbeat counts
		live(t0.Add(3 * time.Second))
		noErr(t, s.Heartbeat(ctx, "a", t0.Add(5*time.Second)))
		live(t0.Add(3*time.Second), "a")
		// A non-UTC time is the same instant.
		live(t0.Add(5*time.Second).In(time.FixedZone("x", 3600)), "a")
	}},
	{"member status set, replace and list since", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if l, err := s.MemberStatuses(ctx, "u-1", time.Time{}); err != nil || l == nil || len(l) != 0 {
			t.Fatalf("no statuses = %#v, %v; want []", l, err)
		}
		m2 := store.MemberStatus{PipeUUID: "u-1", Member: "m2", Partitions: map[string][]int32{"orders": {0, 2}, "refunds": {1}},
			LastProcessingResult: pipe.ResultOK, Updated: t0}
		m1 := store.MemberStatus{PipeUUID: "u-1", Member: "m1", Partitions: map[string][]int32{"orders": {1}},
			LastProcessingResult: pipe.ResultNoRecords, Updated: t0.Add(time.Second)}
		other := store.MemberStatus{PipeUUID: "u-2", Member: "m1", Partitions: map[string][]int32{}, Updated: t0}
		for _, ms := range []store.MemberStatus{m2, m1, other} {
			noErr(t, s.SetMemberStatus(ctx, ms))
		}
		statuses := func(uuid string, since time.Time, want ...store.MemberStatus) {
			t.Helper()
			got, err := s.MemberStatuses(ctx, uuid, since)
			noErr(t, err)
			if want == nil {
				want = []store.MemberStatus{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("statuses of %s since %v =\n%+v\nwant\n%+v", uuid, since, got, want)
			}
		}
		statuses("u-1", time.Time{}, m1, m2)
		statuses("u-1", t0, m1, m2)
		statuses("u-1", t0.Add(time.Second), m1)
		statuses("u-2", t0, other)
		statuses("u-3", time.Time{})

		m2.Partitions = map[string][]int32{"orders": {0}}
		m2.LastProcessingResult = pipe.ResultNoRecords
		m2.Updated = t0.Add(2 * time.Second)
		noErr(t, s.SetMemberStatus(ctx, m2))
		statuses("u-1", t0.Add(2*time.Second), m2)
		statuses("u-1", time.Time{}, m1, m2)
	}},
	{"member status without a time gets the store's", func(t *testing.T, s store.Store) {
		before := time.Now().Add(-time.Second)
		noErr(t, s.SetMemberStatus(t.Context(), store.MemberStatus{PipeUUID: "u-1", Member: "m"}))
		got, err := s.MemberStatuses(t.Context(), "u-1", before)
		noErr(t, err)
		if len(got) != 1 || got[0].Updated.Before(before) || got[0].Updated.After(time.Now().Add(time.Second)) {
			t.Fatalf("statuses = %+v, want one updated about now", got)
		}
	}},
	{"deleting a pipe deletes its member statuses", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustCreate(t, s, TestPipe("orders", "u-1"))
		mustCreate(t, s, TestPipe("payments", "u-2"))
		for _, ms := range []store.MemberStatus{
			{PipeUUID: "u-1", Member: "m1", Updated: t0},
			{PipeUUID: "u-1", Member: "m2", Updated: t0},
			{PipeUUID: "u-2", Member: "m1", Updated: t0},
		} {
			noErr(t, s.SetMemberStatus(ctx, ms))
		}
		noErr(t, s.DeletePipe(ctx, "orders"))
		if got, err := s.MemberStatuses(ctx, "u-1", time.Time{}); err != nil || len(got) != 0 {
			t.Errorf("deleted pipe's statuses = %+v, %v", got, err)
		}
		if got, err := s.MemberStatuses(ctx, "u-2", time.Time{}); err != nil || len(got) != 1 {
			t.Errorf("other pipe's statuses = %+v, %v; want its one", got, err)
		}
		mustCreate(t, s, TestPipe("orders", "u-3"))
		if got, err := s.MemberStatuses(ctx, "u-3", time.Time{}); err != nil || len(got) != 0 {
			t.Errorf("re-created pipe's statuses = %+v, %v", got, err)
		}
	}},
}

var errRollback = errors.New("roll it back")

var atomicCases = []testCase{
	{"writes commit together", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		err := s.Atomic(ctx, func(tx store.Store) error {
			if _, err := tx.CreatePipe(ctx, TestPipe("orders", "u-1")); err != nil {
				return err
			}
			if _, err := tx.PutFunction(ctx, pipe.Function{Name: "f", URL: "http://f/"}); err != nil {
				return err
			}
			if _, err := tx.PutCluster(ctx, cluster.Cluster{Name: "c", BootstrapServers: []string{"k:9092"}}); err != nil {
				return err
			}
			if _, err := tx.PutSecret(ctx, store.SealedSecret{Name: "s", Type: "generic", Sealed: []byte{1}}); err != nil {
				return err
			}
			if _, err := tx.CreateToken(ctx, store.Token{Name: "t", Hash: "h", Scope: "read"}); err != nil {
				return err
			}
			if err := tx.Heartbeat(ctx, "m", t0); err != nil {
				return err
			}
			return tx.SetMemberStatus(ctx, store.MemberStatus{PipeUUID: "u-1", Member: "m", Updated: t0})
		})
		noErr(t, err)
		mustGet(t, s, "orders")
		_, err = s.GetFunction(ctx, "f")
		noErr(t, err)
		_, err = s.GetCluster(ctx, "c")
		noErr(t, err)
		_, err = s.GetSecret(ctx, "s")
		noErr(t, err)
		_, err = s.TokenByHash(ctx, "h")
		noErr(t, err)
		if l, err := s.LiveMembers(ctx, t0); err != nil || len(l) != 1 {
			t.Errorf("live = %v, %v", l, err)
		}
		if l, err := s.MemberStatuses(ctx, "u-1", t0); err != nil || len(l) != 1 {
			t.Errorf("statuses = %v, %v", l, err)
		}
	}},
	{"an error rolls every write back", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		kept := mustCreate(t, s, TestPipe("kept", "u-0"))
		noErr(t, s.SetMemberStatus(ctx, store.MemberStatus{PipeUUID: "u-0", Member: "m", Updated: t0}))
		err := s.Atomic(ctx, func(tx store.Store) error {
			if _, err := tx.CreatePipe(ctx, TestPipe("orders", "u-1")); err != nil {
				return err
			}
			if _, err := tx.UpdatePipe(ctx, kept, 1); err != nil {
				return err
			}
			if err := tx.DeletePipe(ctx, "kept"); err != nil {
				return err
			}
			if _, err := tx.PutCluster(ctx, cluster.Cluster{Name: "c"}); err != nil {
				return err
			}
			if _, err := tx.CreateToken(ctx, store.Token{Name: "t", Hash: "h", Scope: "read"}); err != nil {
				return err
			}
			if err := tx.Heartbeat(ctx, "m", t0); err != nil {
				return err
			}
			return fmt.Errorf("changed my mind: %w", errRollback)
		})
		wantErr(t, "atomic", err, errRollback)
		_, err = s.GetPipe(ctx, "orders")
		wantErr(t, "created pipe", err, pipe.ErrNotFound)
		if got := mustGet(t, s, "kept"); !reflect.DeepEqual(got, kept) {
			t.Errorf("updated and deleted pipe = %+v, want it as it was", got)
		}
		if l, err := s.MemberStatuses(ctx, "u-0", time.Time{}); err != nil || len(l) != 1 {
			t.Errorf("member statuses of the pipe deleted and rolled back = %v, %v", l, err)
		}
		_, err = s.GetCluster(ctx, "c")
		wantErr(t, "cluster", err, cluster.ErrNotFound)
		_, err = s.TokenByHash(ctx, "h")
		wantErr(t, "token", err, store.ErrTokenNotFound)
		if l, err := s.LiveMembers(ctx, time.Time{}); err != nil || len(l) != 0 {
			t.Errorf("live = %v, %v", l, err)
		}
	}},
	{"a store error inside rolls back and is returned", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		err := s.Atomic(ctx, func(tx store.Store) error {
			if _, err := tx.CreatePipe(ctx, TestPipe("a", "u-1")); err != nil {
				return err
			}
			_, err := tx.CreatePipe(ctx, TestPipe("a", "u-2"))
			return err
		})
		wantErr(t, "atomic", err, pipe.ErrExists)
		_, err = s.GetPipe(ctx, "a")
		wantErr(t, "get", err, pipe.ErrNotFound)
	}},
	{"reads inside see the writes", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		err := s.Atomic(ctx, func(tx store.Store) error {
			p, err := tx.CreatePipe(ctx, TestPipe("orders", "u-1"))
			if err != nil {
				return err
			}
			if _, err := tx.UpdatePipe(ctx, p, 1); err != nil {
				return err
			}
			got, err := tx.GetPipe(ctx, "orders")
			if err != nil || got.Revision != 2 {
				return fmt.Errorf("get inside = %+v, %v; want revision 2", got, err)
			}
			if l, err := tx.ListPipes(ctx); err != nil || len(l) != 1 {
				return fmt.Errorf("list inside = %+v, %v", l, err)
			}
			if _, err := tx.PutSecret(ctx, store.SealedSecret{Name: "s", Type: "generic", Sealed: []byte{1}}); err != nil {
				return err
			}
			if l, err := tx.ListSecrets(ctx); err != nil || len(l) != 1 {
				return fmt.Errorf("secrets inside = %+v, %v", l, err)
			}
			if err := tx.Heartbeat(ctx, "m", t0); err != nil {
				return err
			}
			if l, err := tx.LiveMembers(ctx, t0); err != nil || len(l) != 1 {
				return fmt.Errorf("live inside = %v, %v", l, err)
			}
			if err := tx.DeletePipe(ctx, "orders"); err != nil {
				return err
			}
			if _, err := tx.GetPipe(ctx, "orders"); !errors.Is(err, pipe.ErrNotFound) {
				return fmt.Errorf("get deleted inside: %v", err)
			}
			return nil
		})
		noErr(t, err)
	}},
	{"atomic and close inside are refused", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		var nested, closed error
		err := s.Atomic(ctx, func(tx store.Store) error {
			nested = tx.Atomic(ctx, func(store.Store) error { return nil })
			closed = tx.Close()
			_, err := tx.CreatePipe(ctx, TestPipe("still-open", "u-1"))
			return err
		})
		noErr(t, err)
		wantErr(t, "nested atomic", nested, store.ErrInTransaction)
		wantErr(t, "close inside", closed, store.ErrInTransaction)
		mustGet(t, s, "still-open")
	}},
	{"concurrent read-modify-writes do not corrupt", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustCreate(t, s, TestPipe("counter", "u-counter"))
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				// Retrying on ErrConflict is the caller's job: a store
				// may run transactions side by side and let the revision
				// check pick the winner.
				for {
					err := s.Atomic(ctx, func(tx store.Store) error {
						c, err := tx.GetPipe(ctx, "counter")
						if err != nil {
							return err
						}
						if _, err := tx.CreatePipe(ctx, TestPipe(fmt.Sprintf("p%d", i), fmt.Sprintf("u-%d", i))); err != nil {
							return err
						}
						c.BatchSize = int(c.Revision)
						_, err = tx.UpdatePipe(ctx, c, c.Revision)
						return err
					})
					if !errors.Is(err, pipe.ErrConflict) {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if c := mustGet(t, s, "counter"); c.Revision != n+1 || c.BatchSize != n {
			t.Errorf("counter at revision %d batch size %d, want %d and %d", c.Revision, c.BatchSize, n+1, n)
		}
		ps, err := s.ListPipes(ctx)
		if err != nil || len(ps) != n+1 {
			t.Errorf("%d pipes, %v; want %d", len(ps), err, n+1)
		}
	}},
}
