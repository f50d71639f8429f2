package secret

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyring(t *testing.T) *Keyring {
	t.Helper()
	k, err := NewKeyring(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealRoundTrip(t *testing.T) {
	kr := newKeyring(t)
	cert, key := testPEM(t)
	for _, s := range []Secret{
		generic("kafka-creds", "username", "u", "password", planted),
		generic("empty-value", "k", ""),
		{Name: "binary", Type: Generic, Data: map[string][]byte{"b": {0, 1, 0xfe, 0xff, '"', '\\'}, "nil": nil}},
		{Name: "client", Type: TLSClient, Data: map[string][]byte{"certificate": cert, "privateKey": key, "privateKeyPassword": []byte(planted)}},
	} {
		blob, err := kr.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(blob, []byte(planted)) {
			t.Fatal("blob holds the plaintext")
		}
		got, err := kr.Open(s.Name, s.Type, blob)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !maps.EqualFunc(got, s.Data, bytes.Equal) {
			t.Errorf("%s: opened %q, sealed %q", s.Name, got, s.Data)
		}
	}
}

func TestSealFormat(t *testing.T) {
	key := newKey(t)
	kr, err := NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	s := generic("a", "k", planted)
	blob, err := kr.Seal(s)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(s.Data)
	if want := 1 + 8 + 12 + len(plain) + 16; len(blob) != want {
		t.Errorf("blob is %d bytes, want %d", len(blob), want)
	}
	if blob[0] != 1 {
		t.Errorf("version %d", blob[0])
	}
	sum := sha256.Sum256(append([]byte(keyIDLabel), key...))
	if !bytes.Equal(blob[1:9], sum[:8]) {
		t.Errorf("key id %x, want %x", blob[1:9], sum[:8])
	}
	if kr.ID() != hex.EncodeToString(sum[:8]) {
		t.Errorf("ID() = %s", kr.ID())
	}
	if strings.Contains(kr.ID(), hex.EncodeToString(key)[:16]) {
		t.Error("the key id is the key")
	}
	again, _ := kr.Seal(s)
	if bytes.Equal(blob[9:21], again[9:21]) || bytes.Equal(blob, again) {
		t.Error("two seals share a nonce")
	}
}

func TestNewKeyring(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "32") {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	var nilKR *Keyring
	if _, err := nilKR.Seal(generic("a", "k", "v")); err == nil {
		t.Error("nil keyring sealed")
	}
	if _, err := nilKR.Open("a", Generic, make([]byte, 64)); err == nil {
		t.Error("nil keyring opened")
	}
	if _, err := (&Keyring{}).Seal(generic("a", "k", "v")); err == nil {
		t.Error("zero keyring sealed")
	}
}

func TestOpenWrongKey(t *testing.T) {
	a, b := newKeyring(t), newKeyring(t)
	blob, err := a.Seal(generic("kafka-creds", "password", planted))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open("kafka-creds", Generic, blob)
	if !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrWrongKey only", err)
	}
	msg := err.Error()
	for _, want := range []string{"different master key", a.ID(), b.ID(), "kafka-creds"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	assertNoLeak(t, "Open error", msg)
}

func TestOpenTampered(t *testing.T) {
	kr := newKeyring(t)
	blob, err := kr.Seal(generic("kafka-creds", "password", planted))
	if err != nil {
		t.Fatal(err)
	}
	// Every byte after the key id: nonce, ciphertext and tag.
	for i := headerSize; i < len(blob); i++ {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x01
		_, err := kr.Open("kafka-creds", Generic, bad)
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrWrongKey) {
			t.Fatalf("byte %d flipped: err = %v, want ErrCorrupt", i, err)
		}
		if i == headerSize && !strings.Contains(err.Error(), "corrupt or tampered") {
			t.Errorf("message %q", err)
		}
	}
	// The version byte.
	bad := bytes.Clone(blob)
	bad[0] = 2
	if _, err := kr.Open("kafka-creds", Generic, bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
	// A damaged key id reads as a different key: documented.
	bad = bytes.Clone(blob)
	bad[1] ^= 0x80
	if _, err := kr.Open("kafka-creds", Generic, bad); !errors.Is(err, ErrWrongKey) {
		t.Errorf("key id flipped: %v", err)
	}
	// Truncated, extended and empty blobs.
	for _, b := range [][]byte{nil, {}, blob[:1], blob[:headerSize], blob[:headerSize+27], blob[:len(blob)-1], append(bytes.Clone(blob), 0)} {
		if _, err := kr.Open("kafka-creds", Generic, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d-byte blob: %v", len(b), err)
		}
	}
}

func TestOpenMoved(t *testing.T) {
	kr := newKeyring(t)
	blob, err := kr.Seal(generic("kafka-creds", "password", planted))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		typ  Type
	}{
		{"other-creds", Generic},
		{"kafka-creds2", Generic},
		{"kafka-cred", Generic},
		{"", Generic},
		{"kafka-creds", TLSCA},
		{"kafka-credsgeneric", ""}, // a naive name+type concatenation would match
	} {
		_, err := kr.Open(c.name, c.typ, blob)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("opened as %q/%q: err = %v, want ErrCorrupt", c.name, c.typ, err)
		}
	}
}

func TestKeyringConcurrent(t *testing.T) {
	kr := newKeyring(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := generic("a", "k", strings.Repeat("v", i))
			for range 50 {
				blob, err := kr.Seal(s)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := kr.Open("a", Generic, blob)
				if err != nil || string(got["k"]) != string(s.Data["k"]) {
					t.Errorf("round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
