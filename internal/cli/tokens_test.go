package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

var tokenRE = regexp.MustCompile(`sluice_[A-Za-z0-9_-]{43}`)

// createToken runs `sluice tokens create name` with args and returns the
// token it printed, checking it printed it exactly once.
func createToken(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := mustOK(t, run(t, nil, append([]string{"tokens", "create", name}, args...)...))
	all := tokenRE.FindAllString(r.stdout+r.stderr, -1)
	if len(all) != 1 {
		t.Fatalf("tokens create printed %d tokens, want 1:\n%s%s", len(all), r.stdout, r.stderr)
	}
	return all[0]
}

// storeBytes is everything the store's files hold: the database and, if
// not yet checkpointed, its write-ahead log.
func storeBytes(t *testing.T, dataDir string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dataDir, "sluice.db*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no store files in %s: %v", dataDir, err)
	}
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestTokensCreateStoresOnlyTheHash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r := mustOK(t, run(t, nil, "tokens", "create", "ci", "--data-dir", dir))
	token := tokenRE.FindString(r.stdout)
	if n := strings.Count(r.stdout+r.stderr, token); token == "" || n != 1 {
		t.Fatalf("token printed %d times, want once:\n%s", n, r.stdout)
	}
	for _, want := range []string{`Created token "ci"`, "shown only this once", "export SLUICE_TOKEN=" + token, "AWS_ACCESS_KEY_ID", "sluice tokens delete ci"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output lacks %q:\n%s", want, r.stdout)
		}
	}

	raw := storeBytes(t, dir)
	// The hash being there shows these are the bytes the token went to.
	if !strings.Contains(raw, api.HashToken(token)) {
		t.Fatal("the store does not hold the token's hash")
	}
	if strings.Contains(raw, token) || strings.Contains(raw, strings.TrimPrefix(token, "sluice_")) {
		t.Error("the store holds the token itself")
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.TokenByHash(t.Context(), api.HashToken(token))
	if err != nil || got.Name != "ci" || got.Created.IsZero() {
		t.Errorf("TokenByHash: %+v, %v", got, err)
	}
}

func TestTokensListAndDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a := createToken(t, "alice", "--data-dir", dir)
	b := createToken(t, "ci", "--data-dir", dir)
	if a == b {
		t.Fatal("two tokens are equal")
	}

	r := mustOK(t, run(t, nil, "tokens", "list", "--data-dir", dir))
	if !regexp.MustCompile(`(?m)^NAME\s+SCOPE\s+CREATED\n(?s:.*)^alice\s+admin\s+\d{4}-\d\d-\d\dT.*\n(?s:.*)^ci\s+operate\s+\d{4}-`).MatchString(r.stdout) {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = mustOK(t, run(t, nil, "-o", "json", "tokens", "list", "--data-dir", dir))
	if !strings.Contains(r.stdout, `"name": "alice"`) || !strings.Contains(r.stdout, `"created": "`) {
		t.Errorf("list -o json:\n%s", r.stdout)
	}
	for _, out := range []string{r.stdout, run(t, nil, "tokens", "list", "--data-dir", dir).stdout} {
		for _, secret := range []string{"sluice_", a, b, api.HashToken(a), api.HashToken(b)} {
			if strings.Contains(out, secret) {
				t.Errorf("list shows %q:\n%s", secret, out)
			}
		}
	}

	r = run(t, nil, "tokens", "create", "ci", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, `token "ci" already exists`) || tokenRE.MatchString(r.stdout+r.stderr) {
		t.Errorf("duplicate name: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	r = mustOK(t, run(t, nil, "tokens", "delete", "ci", "--data-dir", dir))
	if !strings.Contains(r.stdout, `Deleted token "ci"`) || !strings.Contains(r.stdout, "within 10s") {
		t.Errorf("delete: %s", r.stdout)
	}
	r = run(t, nil, "tokens", "delete", "ci", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, `token "ci" not found`) {
		t.Errorf("delete again: exit %d, stderr %q", r.code, r.stderr)
	}
	mustOK(t, run(t, nil, "tokens", "delete", "alice", "--data-dir", dir))
	if r := mustOK(t, run(t, nil, "tokens", "list", "--data-dir", dir)); !strings.Contains(r.stdout, "No tokens") {
		t.Errorf("empty list: %s", r.stdout)
	}
}

// The tokens commands find the store where serve keeps it: the dataDir of
// its config, or .sluice, serve's default.
func TestTokensStoreLocation(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	config := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\n", dataDir))
	createToken(t, "ci", "--config", config)
	if r := mustOK(t, run(t, nil, "tokens", "list", "--data-dir", dataDir)); !strings.Contains(r.stdout, "ci") {
		t.Errorf("--config did not use the config's dataDir: %s", r.stdout)
	}

	t.Chdir(t.TempDir())
	createToken(t, "default")
	if _, err := os.Stat(filepath.Join(defaultServeDataDir, "sluice.db")); err != nil {
		t.Errorf("without flags, not serve's default data dir: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "list", "--data-dir", missing}, "no Sluice store at " + filepath.Join(missing, "sluice.db")},
		{[]string{"tokens", "delete", "ci", "--data-dir", missing}, "no Sluice store at"},
		{[]string{"tokens", "list", "--config", config, "--data-dir", dataDir}, "--config and --data-dir both"},
		{[]string{"tokens", "create", "ci", "--config", writeConfig(t, "apiAdr: x\n")}, `unknown field "apiAdr"`},
		{[]string{"tokens", "create", "bad name", "--data-dir", missing}, `token name "bad name"`},
		{[]string{"tokens", "create", "--data-dir", missing}, "missing the token's NAME"},
	} {
		r := run(t, nil, c.args...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
	// Listing or deleting does not create a store in a wrong directory.
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed command created %s", missing)
	}
}
