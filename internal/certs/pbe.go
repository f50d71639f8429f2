package certs

import (
	"crypto/cipher"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Decryption of PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 §3):
//
//	EncryptedPrivateKeyInfo ::= SEQUENCE {
//	    encryptionAlgorithm  AlgorithmIdentifier,
//	    encryptedData        OCTET STRING }
//
// The algorithm is PBES2 (pbes2.go) or one of the PBES1-style schemes
// (pbes1.go). Everything is parsed and validated before any key derivation
// runs, so malformed input yields an error rather than a panic in
// crypto/cipher, and hostile parameters cannot make us burn minutes of CPU
// or gigabytes of memory.

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbeScheme is a parsed, validated password-based encryption scheme, ready to
// decrypt. name is for error messages and names only algorithms, never
// parameters.
type pbeScheme struct {
	name    string
	decrypt func(password, ciphertext []byte) ([]byte, error)
}

// maxIterations bounds PBKDF1/PBKDF2/PKCS#12-KDF iteration counts. OpenSSL
// writes 2048 by default and current guidance for PBKDF2 tops out below a
// million; ten million is a few seconds of CPU, so anything above is a
// mistake or an attack and is refused rather than run.
const maxIterations = 10_000_000

// reencryptHint tells the user how to produce a key we accept. It reads the
// old key (asking for its password) and writes a PBES2/AES-256 one.
const reencryptHint = "re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old-key.pem -out new-key.pem " +
	"(OpenSSL 3 needs -provider legacy -provider default to read RC2/RC4-encrypted keys)"

// errBadPadding marks a decryption whose PKCS#7 padding is wrong: with CBC
// that almost always means the password (hence the key) is wrong.
var errBadPadding = errors.New("bad padding after decryption")

// parsePBEScheme identifies and validates the encryption scheme of an
// EncryptedPrivateKeyInfo.
func parsePBEScheme(alg pkix.AlgorithmIdentifier) (pbeScheme, error) {
	if alg.Algorithm.Equal(oidPBES2) {
		return parsePBES2(alg.Parameters.FullBytes)
	}
	if s, ok, err := parsePBES1(alg); ok {
		return s, err
	}
	if name := refusedPBEName(alg.Algorithm); name != "" {
		return pbeScheme{}, fmt.Errorf("%w: private key is encrypted with %s, which is not supported; %s",
			ErrInvalid, name, reencryptHint)
	}
	return pbeScheme{}, fmt.Errorf("%w: private key is encrypted with an unknown algorithm (OID %s); %s",
		ErrInvalid, alg.Algorithm, reencryptHint)
}

// unmarshalExact is asn1.Unmarshal that also refuses trailing bytes, so a
// corrupted length cannot hide data.
func unmarshalExact(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("trailing data after ASN.1 structure")
	}
	return nil
}

// checkIterations validates an iteration count read from the key.
func checkIterations(n int) error {
	if n < 1 || n > maxIterations {
		return fmt.Errorf("%w: private key encryption uses %d iterations; want 1 to %d", ErrInvalid, n, maxIterations)
	}
	return nil
}

// cbcDecrypt decrypts ciphertext in CBC mode and removes the padding of
// RFC 8018 §6.1.1 / §6.2 (PKCS#7), checking it strictly. It validates the
// lengths first because crypto/cipher panics on bad ones.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("%w: private key encryption has a %d-byte IV; want %d", ErrInvalid, len(iv), bs)
	}
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, fmt.Errorf("%w: encrypted private key data is %d bytes, not a positive multiple of the %d-byte block (truncated?)",
			ErrInvalid, len(ciphertext), bs)
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > bs {
		return nil, errBadPadding
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, errBadPadding
		}
	}
	return plain[:len(plain)-pad], nil
}
