package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// KeySize is the size of a master key: AES-256.
const KeySize = 32

// A sealed blob is
//
//	version (1 byte) | key id (8 bytes) | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// The key id lets Open tell "this was sealed under another master key"
// from "these bytes were damaged", which otherwise look the same: both fail
// authentication. The header is authenticated too, as part of the
// additional data.
const (
	blobVersion = 1
	keyIDSize   = 8
	headerSize  = 1 + keyIDSize
	// keyIDLabel separates the key id hash from any other use of SHA-256
	// over the key: the id is public, the key is not.
	keyIDLabel = "sluice secret master key id v1\x00"
	// adLabel separates Sluice's additional data from any other protocol's.
	adLabel = "sluice secret v1\x00"
)

var (
	// ErrWrongKey means the blob was sealed under a different master key
	// than the one loaded. Returned wrapped, with both key ids.
	ErrWrongKey = errors.New("sealed with a different master key")
	// ErrCorrupt means the blob is damaged, was altered, or was copied
	// from another secret's row. Returned wrapped.
	ErrCorrupt = errors.New("corrupt or tampered")
)

// Keyring seals and opens secrets under one master key. It is safe for
// concurrent use.
type Keyring struct {
	aead cipher.AEAD
	id   [keyIDSize]byte
}

// NewKeyring prepares a keyring for a 32-byte master key (see
// LoadMasterKey). It keeps no copy of key: the caller may clear it.
func NewKeyring(key []byte) (*Keyring, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes: want exactly %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	// GCM drawing its own 96-bit random nonce, prepended to the
	// ciphertext: the nonce cannot be reused by mistake, and this is the
	// form FIPS 140-3 mode accepts.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	k := &Keyring{aead: aead}
	k.id = keyID(key)
	return k, nil
}

func keyID(key []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(key)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

// ID is the public id of the master key, in hex: safe to log, and what
// ErrWrongKey errors show.
func (k *Keyring) ID() string { return hex.EncodeToString(k.id[:]) }

// Seal encrypts s.Data, bound to s.Name and s.Type: the blob opens only
// with the same name and type, so a blob copied into another secret's row
// fails instead of handing that secret's values to the wrong pipe. Seal
// does not validate s; callers call Validate first. Each call draws a fresh
// nonce, so sealing the same secret twice gives different blobs.
func (k *Keyring) Seal(s Secret) ([]byte, error) {
	if k == nil || k.aead == nil {
		return nil, errors.New("seal secret: no keyring: use NewKeyring")
	}
	// JSON of map[string][]byte: keys sorted, values base64, so the
	// plaintext is deterministic and holds any bytes.
	plain, err := json.Marshal(s.Data)
	if err != nil {
		return nil, fmt.Errorf("seal secret %q: encode data: %w", s.Name, err)
	}
	defer clear(plain) // best effort: fewer plaintext copies in the heap

	blob := make([]byte, headerSize, headerSize+len(plain)+k.aead.Overhead())
	blob[0] = blobVersion
	copy(blob[1:], k.id[:])
	return k.aead.Seal(blob, nil, plain, additionalData(blob[:headerSize], s.Name, s.Type)), nil
}

// Open decrypts a blob Seal returned for the secret with this name and
// type. It fails with ErrWrongKey if the blob was sealed under another
// master key, and with ErrCorrupt if it was damaged, altered or sealed for
// another name or type. The key id is compared before authentication, so
// damage to the id itself reads as a different key.
func (k *Keyring) Open(name string, typ Type, blob []byte) (map[string][]byte, error) {
	if k == nil || k.aead == nil {
		return nil, fmt.Errorf("open secret %q: no keyring: use NewKeyring", name)
	}
	if len(blob) < headerSize+k.aead.Overhead() {
		return nil, fmt.Errorf("open secret %q: %w: %d bytes is shorter than any sealed secret", name, ErrCorrupt, len(blob))
	}
	if v := blob[0]; v != blobVersion {
		return nil, fmt.Errorf("open secret %q: %w: format version %d, but this sluice reads version %d (a newer sluice may have sealed it)", name, ErrCorrupt, v, blobVersion)
	}
	if id := blob[1:headerSize]; !bytes.Equal(id, k.id[:]) {
		return nil, fmt.Errorf("open secret %q: %w (key id %x; the loaded key's id is %s): start sluice with the master key the secret was sealed with",
			name, ErrWrongKey, id, k.ID())
	}
	plain, err := k.aead.Open(nil, nil, blob[headerSize:], additionalData(blob[:headerSize], name, typ))
	if err != nil {
		return nil, fmt.Errorf("open secret %q: %w: authentication failed: the stored bytes were altered, or belong to another secret or type", name, ErrCorrupt)
	}
	defer clear(plain)
	var data map[string][]byte
	if err := json.Unmarshal(plain, &data); err != nil {
		// Not wrapped: a JSON error could quote plaintext.
		return nil, fmt.Errorf("open secret %q: %w: decrypted data is not a key map", name, ErrCorrupt)
	}
	return data, nil
}

// additionalData binds a blob to its header, the secret's name and its
// type. Length prefixes keep the encoding unambiguous: no other name and
// type give the same bytes.
func additionalData(header []byte, name string, typ Type) []byte {
	ad := make([]byte, 0, len(header)+len(adLabel)+2*binary.MaxVarintLen64+len(name)+len(typ))
	ad = append(ad, header...)
	ad = append(ad, adLabel...)
	ad = binary.AppendUvarint(ad, uint64(len(name)))
	ad = append(ad, name...)
	ad = binary.AppendUvarint(ad, uint64(len(typ)))
	ad = append(ad, typ...)
	return ad
}
