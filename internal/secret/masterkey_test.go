package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey has bytes whose standard and URL base64 differ ('+' '/' vs '-'
// '_'), and 32 bytes need padding, so all four forms are distinct.
var testKey = append([]byte{0xfb, 0xff, 0xbf, 0xfe}, bytes.Repeat([]byte{0x3e, 0x3f}, 14)...)

func TestLoadMasterKeyEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for _, env := range []string{enc.EncodeToString(testKey), enc.EncodeToString(testKey) + "\n", "  " + enc.EncodeToString(testKey) + " \r\n"} {
			key, created, err := LoadMasterKey(env, path)
			if err != nil {
				t.Fatalf("%q: %v", env, err)
			}
			if created || !bytes.Equal(key, testKey) {
				t.Errorf("%q: key %x created %v", env, key, created)
			}
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key in the environment should leave the key file alone: %v", err)
	}
}

func TestLoadMasterKeyBadEnv(t *testing.T) {
	for _, env := range []string{
		planted,
		"!!!!",
		base64.StdEncoding.EncodeToString([]byte("sixteen byte key")),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(testKey), 0)),
		base64.StdEncoding.EncodeToString(testKey[:31]),
		strings.Repeat("A", 44) + "==", // too long
	} {
		_, _, err := LoadMasterKey(env, filepath.Join(t.TempDir(), "key"))
		if err == nil {
			t.Errorf("%q accepted", env)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"SLUICE_MASTER_KEY", "32", "head -c 32 /dev/urandom | base64"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q: error %q does not mention %q", env, msg, want)
			}
		}
		if strings.Contains(msg, env) {
			t.Errorf("error %q echoes the key", msg)
		}
	}
}

func TestLoadMasterKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "sluice")
	path := filepath.Join(dir, "master.key")
	key, created, err := LoadMasterKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(key) != KeySize {
		t.Fatalf("created %v, %d-byte key", created, len(key))
	}
	if bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatal("zero key")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(key) + "\n"; string(b) != want {
		t.Errorf("file holds %q, want %q", b, want)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %04o, want 0600", fi.Mode().Perm())
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("dir mode %04o, want 0700", fi.Mode().Perm())
		}
	}

	again, created, err := LoadMasterKey("", path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !bytes.Equal(again, key) {
		t.Errorf("second load: created %v, same key %v", created, bytes.Equal(again, key))
	}

	// A key written by hand, without the newline, in URL form.
	if err := os.WriteFile(path, []byte(base64.RawURLEncoding.EncodeToString(testKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, _, err := LoadMasterKey("", path); err != nil || !bytes.Equal(k, testKey) {
		t.Errorf("hand-written key: %x, %v", k, err)
	}
}

func TestLoadMasterKeyOpenFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := LoadMasterKey("", path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadMasterKey("", path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: err = %v, want one telling to chmod 600 %s", mode, err, path)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMasterKey("", path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadMasterKeyMalformed(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":  planted + "\n",
		"short":    base64.StdEncoding.EncodeToString(testKey[:16]) + "\n",
		"two keys": base64.StdEncoding.EncodeToString(testKey) + "\n" + base64.StdEncoding.EncodeToString(testKey) + "\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, created, err := LoadMasterKey("", path)
		if err == nil || created {
			t.Errorf("%s: accepted (created %v)", name, created)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		assertNoLeak(t, "key file error", err.Error())
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%s: the file was changed", name)
		}
	}

	// A directory where the file should be.
	if _, _, err := LoadMasterKey("", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	// No env and no path.
	if _, _, err := LoadMasterKey("", ""); err == nil || !strings.Contains(err.Error(), "SLUICE_MASTER_KEY") {
		t.Errorf("nothing given: %v", err)
	}
}

func TestLoadMasterKeyEmptyFile(t *testing.T) {
	// An empty file is another process between creating and writing it:
	// wait for the key, and give up with advice if it never comes.
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err := loadMasterKey("", path, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "is empty") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("gave up without waiting")
	}

	done := make(chan error, 1)
	go func() {
		time.Sleep(30 * time.Millisecond)
		done <- os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(testKey)+"\n"), 0o600)
	}()
	key, created, err := loadMasterKey("", path, 5*time.Second)
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil || created || !bytes.Equal(key, testKey) {
		t.Errorf("key %x, created %v, err %v", key, created, err)
	}
}

func TestLoadMasterKeyConcurrent(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "d", "master.key")
		const n = 8
		keys := make([][]byte, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				keys[i], created[i], errs[i] = LoadMasterKey("", path)
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, loader %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d: loaders got different keys", round)
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Errorf("round %d: %d loaders say they created the key", round, creators)
		}
		onDisk, _, err := LoadMasterKey("", path)
		if err != nil || !bytes.Equal(onDisk, keys[0]) {
			t.Errorf("round %d: the file holds another key (%v)", round, err)
		}
	}
}
