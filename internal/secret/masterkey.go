package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// EnvMasterKey is the environment variable whose value callers pass to
// LoadMasterKey as env.
const EnvMasterKey = "SLUICE_MASTER_KEY"

const makeKeyHint = "make one with: head -c 32 /dev/urandom | base64"

// keyFileWait bounds how long LoadMasterKey waits for another process that
// has just created the key file to write the key into it: a moment, unless
// that process died in between.
const keyFileWait = 2 * time.Second

// errEmptyKeyFile is a key file with nothing in it: normal for the instant
// between another process creating it and writing it, broken after that.
var errEmptyKeyFile = errors.New("is empty")

// LoadMasterKey returns the master key that seals secrets, and whether it
// was just created.
//
// If env (the value of SLUICE_MASTER_KEY) is set it must be base64 of
// exactly 32 bytes, standard or URL alphabet, padded or not; the key file is
// then not touched. Otherwise the key is read from the file at path, which
// holds base64 of 32 bytes and a newline and must not be open to group or
// others. If the file does not exist, a new random key is written to it
// (mode 0600, parent directories 0700) and created is true: losing that
// file loses every secret sealed with it, so callers should say so.
//
// Processes starting at the same time agree on one key: the file is
// created with O_EXCL, and a process that loses the race reads the
// winner's key.
func LoadMasterKey(env string, path string) (key []byte, created bool, err error) {
	return loadMasterKey(env, path, keyFileWait)
}

// loadMasterKey is LoadMasterKey waiting at most wait for a key file
// another process is creating; tests shorten it.
func loadMasterKey(env, path string, wait time.Duration) ([]byte, bool, error) {
	if env != "" {
		key, err := decodeKey(env)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w: %s", EnvMasterKey, err, makeKeyHint)
		}
		return key, false, nil
	}
	if path == "" {
		return nil, false, fmt.Errorf("no master key: set %s (%s) or give a key file path", EnvMasterKey, makeKeyHint)
	}
	deadline := time.Now().Add(wait)
	for {
		key, err := readKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			key, err = createKeyFile(path)
			if err == nil {
				return key, true, nil
			}
			// ErrExist: another process created it first; read its key.
		}
		if err == nil {
			return key, false, nil
		}
		exists := errors.Is(err, fs.ErrExist)
		if !exists && !errors.Is(err, errEmptyKeyFile) {
			return nil, false, err
		}
		if time.Now().After(deadline) {
			if exists { // it stays there but will not open
				return nil, false, fmt.Errorf("master key file %s exists but cannot be opened (a broken symlink?): %w", path, err)
			}
			return nil, false, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readKeyFile reads and checks an existing key file. The mode is checked on
// the open file, so it is the mode of the file actually read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file: give the path of the key file", path)
	}
	// Windows has no such bits: Go reports 0666 or 0444 for every file.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("master key file %s has mode %04o, open to other users: run chmod 600 %s (or pass the key in %s instead)",
			path, perm, path, EnvMasterKey)
	}
	// A key file is 45 bytes; the limit only stops a wrong path from
	// reading a huge file.
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	defer clear(b)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("master key file %s %w: restore the key, or, if no secret was ever sealed with it, delete the file and sluice makes a new one", path, errEmptyKeyFile)
	}
	key, err := decodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w: restore the key it held, or, if no secret was ever sealed with it, delete the file and sluice makes a new one", path, err)
	}
	return key, nil
}

// createKeyFile writes a new random key to path, failing with an error
// wrapping fs.ErrExist if the file already exists.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create master key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	// One write, so a racing reader sees an empty file or the whole key.
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if werr == nil {
		werr = f.Sync() // the key must outlive a crash, or the secrets sealed with it are lost
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		// Leave no empty or partial file for the next start to trip on.
		_ = os.Remove(path)
		return nil, fmt.Errorf("write master key file %s: %w", path, werr)
	}
	syncDir(dir)
	return key, nil
}

// syncDir makes the new file's directory entry durable. Best effort: some
// filesystems and platforms cannot sync a directory, and the file itself
// has been synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// decodeKey decodes base64 of a 32-byte key in any of the four usual forms,
// without ever quoting the input in its errors.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			clear(key)
			return nil, fmt.Errorf("decodes to %d bytes; want base64 of exactly %d bytes", len(key), KeySize)
		}
		return key, nil
	}
	return nil, fmt.Errorf("not base64: want base64 of exactly %d bytes", KeySize)
}
