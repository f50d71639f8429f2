package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// BlobKeyID is the id of the master key a sealed blob was sealed under, in
// hex as Keyring.ID gives it; "" if the blob is too short to carry one.
func BlobKeyID(blob []byte) string {
	if len(blob) < headerSize {
		return ""
	}
	return hex.EncodeToString(blob[1:headerSize])
}

// KeyID is the public id of a master key, as Keyring.ID gives it.
func KeyID(key []byte) string {
	id := keyID(key)
	return hex.EncodeToString(id[:])
}

// ReadKeyFile reads a master key file as LoadMasterKey does, without
// creating one: for telling the user which key sealed what.
func ReadKeyFile(path string) ([]byte, error) { return readKeyFile(path) }

// NewKey returns a new random master key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make master key: %w", err)
	}
	return key, nil
}

// WriteKeyFile writes key to path in the key file format (base64 and a
// newline, mode 0600), replacing any file there whole: a crash leaves the
// old file or the new one, never a mix.
func WriteKeyFile(path string, key []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("master key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master.key-*")
	if err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write master key file %s: %w", path, werr)
	}
	syncDir(dir)
	return nil
}
