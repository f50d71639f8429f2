package certs

import (
	"crypto"
	"crypto/cipher"
	"crypto/des"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The passwords testdata/gen.sh encrypts the fixtures with.
const (
	testPassword        = "sluice-test-password"
	testUnicodePassword = "pässwörd-🔑"
)

// encryptedSchemes lists the encrypted key fixtures (testdata/<kt>-key-<name>.pem,
// for kt in rsa and ec) and a word their errors must name.
var encryptedSchemes = []struct{ name, algo string }{
	{"pbes1-sha1-3des", "pbeWithSHAAnd3-KeyTripleDES-CBC"},
	{"pbes1-sha1-2des", "pbeWithSHAAnd2-KeyTripleDES-CBC"},
	{"pbes1-md5-des", "pbeWithMD5AndDES-CBC"},
	{"pbes1-sha1-des", "pbeWithSHA1AndDES-CBC"},
	{"pbes2-aes256", "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)"},
	{"pbes2-aes128-sha1", "PBES2 (PBKDF2-HMAC-SHA1, AES-128-CBC)"},
	{"pbes2-aes192-sha224", "PBES2 (PBKDF2-HMAC-SHA224, AES-192-CBC)"},
	{"pbes2-aes256-sha384", "PBES2 (PBKDF2-HMAC-SHA384, AES-256-CBC)"},
	{"pbes2-aes256-sha512", "PBES2 (PBKDF2-HMAC-SHA512, AES-256-CBC)"},
	{"pbes2-des3", "PBES2 (PBKDF2-HMAC-SHA256, DES-EDE3-CBC)"},
	{"pbes2-des", "PBES2 (PBKDF2-HMAC-SHA256, DES-CBC)"},
	{"pbes2-scrypt", "PBES2 (scrypt, AES-256-CBC)"},
}

var keyTypes = []string{"rsa", "ec"}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParseKey parses an unencrypted fixture key.
func mustParseKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	k, err := ParsePrivateKey(readFixture(t, name), nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

func sameKey(a, b crypto.Signer) bool {
	eq, ok := a.(interface{ Equal(crypto.PrivateKey) bool })
	return ok && eq.Equal(b)
}

// flatten turns PEM into the one-line form from the AWS documentation:
// "-----BEGIN CERTIFICATE----- MIIE... ... -----END CERTIFICATE-----".
func flatten(b []byte) []byte {
	return []byte(strings.Join(strings.Fields(string(b)), " "))
}

func crlf(b []byte) []byte {
	return []byte(strings.ReplaceAll(string(b), "\n", "\r\n"))
}

// firstDER returns the DER of the first PEM block in b.
func firstDER(t testing.TB, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}

func encodePEM(label string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: label, Bytes: der})
}

// wantErr fails unless err wraps every target and mentions every fragment.
// It also checks the message for the secrets it must never contain: the
// password and any line of base64 from keyPEM.
func wantErr(t *testing.T, err error, targets []error, fragments []string, keyPEM, password []byte) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", fragments)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("error %q does not wrap %q", err, target)
		}
	}
	msg := err.Error()
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("error %q does not mention %q", msg, f)
		}
	}
	checkNoSecrets(t, msg, keyPEM, password)
}

func checkNoSecrets(t *testing.T, msg string, keyPEM, password []byte) {
	t.Helper()
	if len(password) > 0 && strings.Contains(msg, string(password)) {
		t.Errorf("error %q contains the password", msg)
	}
	for _, tok := range strings.Fields(string(keyPEM)) {
		if len(tok) >= 16 && !strings.Contains(tok, "-") && strings.Contains(msg, tok[:16]) {
			t.Errorf("error %q contains key material %q", msg, tok[:16])
		}
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDES(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cbcEncryptRaw encrypts whole blocks without adding padding.
func cbcEncryptRaw(t testing.TB, block cipher.Block, iv, plain []byte) []byte {
	t.Helper()
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	return out
}
