package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

const plantedValue = "pl4nted-rotate-v4lue"

// sealedDataDir makes a data dir whose master.key is key and whose store
// holds secrets sealed under sealKey.
func sealedDataDir(t *testing.T, key, sealKey []byte, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := secret.WriteKeyFile(filepath.Join(dir, "master.key"), key); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := secret.NewKeyring(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		blob, err := kr.Seal(secret.Secret{Name: n, Type: secret.Generic, Data: map[string][]byte{"password": []byte(plantedValue)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutSecret(context.Background(), store.SealedSecret{Name: n, Type: string(secret.Generic), Keys: []string{"password"}, Sealed: blob}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func keyOf(b byte) []byte { return bytes.Repeat([]byte{b}, secret.KeySize) }

func b64(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// openAll opens every stored secret with key.
func openAll(t *testing.T, dir string, key []byte) map[string]string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	all, err := st.ListSecrets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range all {
		data, err := kr.Open(s.Name, secret.Type(s.Type), s.Sealed)
		if err != nil {
			t.Fatalf("secret %s does not open with the key: %v", s.Name, err)
		}
		out[s.Name] = string(data["password"])
	}
	return out
}

// TestServeRefusesAWrongMasterKey: a SLUICE_MASTER_KEY that did not seal
// the stored secrets stops serve at start, naming both key ids and that
// the key file holds the right one; so does a key file that did not.
func TestServeRefusesAWrongMasterKey(t *testing.T) {
	a, b := keyOf(1), keyOf(2)
	dir := sealedDataDir(t, a, a, "kafka-creds", "tls")
	config := writeConfig(t, "apiAddr: 127.0.0.1:0\ndataDir: "+dir+"\n")
	r := run(t, map[string]string{secret.EnvMasterKey: b64(b)}, "serve", "--config", config)
	for _, want := range []string{"the key from SLUICE_MASTER_KEY (key id " + secret.KeyID(b) + ") did not seal the stored secrets kafka-creds, tls under key id " + secret.KeyID(a),
		"The key file " + filepath.Join(dir, "master.key") + " (key id " + secret.KeyID(a) + ") sealed them: unset SLUICE_MASTER_KEY", "sluice secrets rotate-key"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("serve with the wrong SLUICE_MASTER_KEY: exit %d, stderr %q; want it to say %q", r.code, r.stderr, want)
		}
	}
	if strings.Contains(r.stderr+r.stdout, b64(b)) || strings.Contains(r.stderr+r.stdout, plantedValue) {
		t.Error("the refusal printed a key or a secret value")
	}

	dir2 := sealedDataDir(t, b, a, "kafka-creds")
	r = run(t, nil, "serve", "--config", writeConfig(t, "apiAddr: 127.0.0.1:0\ndataDir: "+dir2+"\n"))
	if r.code != 1 || !strings.Contains(r.stderr, "the key from the key file "+filepath.Join(dir2, "master.key")) || !strings.Contains(r.stderr, "set SLUICE_MASTER_KEY to it") {
		t.Errorf("serve with the wrong key file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRotateKey re-seals every secret under a new random key that replaces
// master.key, and recovers secrets sealed under a key the server no longer
// has with --old-key-file.
func TestRotateKey(t *testing.T) {
	a := keyOf(1)
	dir := sealedDataDir(t, a, a, "one", "two")
	r := mustOK(t, run(t, nil, "secrets", "rotate-key", "--data-dir", dir))
	key, err := secret.ReadKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(key, a) {
		t.Fatal("master.key still holds the old key")
	}
	if !strings.Contains(r.stdout, "Re-sealed 2 secrets under key id "+secret.KeyID(key)) {
		t.Errorf("output: %q", r.stdout)
	}
	if got := openAll(t, dir, key); got["one"] != plantedValue || got["two"] != plantedValue {
		t.Errorf("after rotation the secrets hold %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key.new")); !os.IsNotExist(err) {
		t.Errorf("the staged key was left behind: %v", err)
	}
	if strings.Contains(r.stdout+r.stderr, plantedValue) || strings.Contains(r.stdout+r.stderr, b64(key)) {
		t.Error("rotate-key printed a key or a secret value")
	}

	// Secrets sealed under a key the server lost: give the old key in a
	// file; they are re-sealed under the server's key (the new one named).
	lost, server := keyOf(3), keyOf(4)
	dir2 := sealedDataDir(t, server, lost, "orphan")
	oldFile := filepath.Join(t.TempDir(), "old.key")
	newFile := filepath.Join(t.TempDir(), "new.key")
	if err := secret.WriteKeyFile(oldFile, lost); err != nil {
		t.Fatal(err)
	}
	if err := secret.WriteKeyFile(newFile, server); err != nil {
		t.Fatal(err)
	}
	// The wrong old key changes nothing.
	if r := run(t, nil, "secrets", "rotate-key", "--data-dir", dir2, "--new-key-file", newFile); r.code != 1 || !strings.Contains(r.stderr, "nothing re-sealed") {
		t.Errorf("rotate with a key that opens nothing: exit %d, %q", r.code, r.stderr)
	}
	mustOK(t, run(t, nil, "secrets", "rotate-key", "--data-dir", dir2, "--old-key-file", oldFile, "--new-key-file", newFile))
	if got := openAll(t, dir2, server); got["orphan"] != plantedValue {
		t.Errorf("recovered secret holds %q", got["orphan"])
	}
	// With SLUICE_MASTER_KEY the new key must come from a file.
	if r := run(t, map[string]string{secret.EnvMasterKey: b64(server)}, "secrets", "rotate-key", "--data-dir", dir2); r.code != 1 || !strings.Contains(r.stderr, "--new-key-file is required") {
		t.Errorf("rotate with SLUICE_MASTER_KEY and no new key file: exit %d, %q", r.code, r.stderr)
	}
}
