package certs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// PBES2 (RFC 8018 §6.2) with PBKDF2 (RFC 8018 §5.2) or scrypt (RFC 7914 §7),
// and a CBC-mode cipher with PKCS#7 padding.
//
// This is written here on top of crypto/pbkdf2 and x/crypto/scrypt rather
// than delegated to github.com/youmark/pkcs8 (v0.0.0-20240726163527-a2c0da244d78),
// which was evaluated for it: that version only knows the HMAC-SHA1 and
// HMAC-SHA256 PRFs, does not model PBKDF2's optional keyLength field, never
// checks or strips the padding, registers the AES-GCM OIDs as CBC ciphers,
// puts no bound on iteration counts or scrypt cost, and panics (inside
// crypto/cipher) on an IV of the wrong length or ciphertext that is not a
// whole number of blocks. Guarding against all of that would mean parsing and
// validating every field here anyway, leaving the library only the two calls
// below.

var oidPBES2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}

const (
	oidPBKDF2 = "1.2.840.113549.1.5.12"
	oidScrypt = "1.3.6.1.4.1.11591.4.11"

	// maxScryptMemory bounds scrypt's working memory (128·r·N bytes).
	// OpenSSL's default parameters (N=16384, r=8, p=1) need 16 MiB.
	maxScryptMemory = 256 << 20
	// maxScryptWork bounds N·r·p, scrypt's CPU cost in 128-byte block
	// mixes; the default parameters are 2^17.
	maxScryptWork = 1 << 22
)

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is PBKDF2-params. The salt's otherSource alternative is
// unused in practice and fails to parse, which is reported as malformed.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"` // default hmacWithSHA1
}

// scryptParams is scrypt-params from RFC 7914 §7.1.
type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// pbes2Cipher describes a supported PBES2 encryption scheme.
type pbes2Cipher struct {
	name     string
	keyLen   int
	newBlock func(key []byte) (cipher.Block, error)
}

func lookupPBES2Cipher(oid asn1.ObjectIdentifier) (pbes2Cipher, error) {
	switch oid.String() {
	case "2.16.840.1.101.3.4.1.2":
		return pbes2Cipher{"AES-128-CBC", 16, aes.NewCipher}, nil
	case "2.16.840.1.101.3.4.1.22":
		return pbes2Cipher{"AES-192-CBC", 24, aes.NewCipher}, nil
	case "2.16.840.1.101.3.4.1.42":
		return pbes2Cipher{"AES-256-CBC", 32, aes.NewCipher}, nil
	case "1.2.840.113549.3.7":
		return pbes2Cipher{"DES-EDE3-CBC", 24, des.NewTripleDESCipher}, nil
	case "1.3.14.3.2.7":
		return pbes2Cipher{"DES-CBC", 8, des.NewCipher}, nil
	}
	name := "an unknown cipher (OID " + oid.String() + ")"
	switch oid.String() {
	case "1.2.840.113549.3.2":
		name = "RC2-CBC"
	case "1.2.840.113549.3.9":
		name = "RC5-CBC"
	case "2.16.840.1.101.3.4.1.6", "2.16.840.1.101.3.4.1.26", "2.16.840.1.101.3.4.1.46":
		name = "AES-GCM"
	}
	return pbes2Cipher{}, fmt.Errorf("%w: private key is encrypted with PBES2 using %s, which is not supported; %s",
		ErrInvalid, name, reencryptHint)
}

// lookupPRF maps a PBKDF2 PRF to its hash. An absent PRF means
// hmacWithSHA1 (RFC 8018 Appendix A.2).
func lookupPRF(prf pkix.AlgorithmIdentifier) (string, func() hash.Hash, error) {
	if len(prf.Algorithm) == 0 {
		return "HMAC-SHA1", sha1.New, nil
	}
	switch prf.Algorithm.String() {
	case "1.2.840.113549.2.7":
		return "HMAC-SHA1", sha1.New, nil
	case "1.2.840.113549.2.8":
		return "HMAC-SHA224", sha256.New224, nil
	case "1.2.840.113549.2.9":
		return "HMAC-SHA256", sha256.New, nil
	case "1.2.840.113549.2.10":
		return "HMAC-SHA384", sha512.New384, nil
	case "1.2.840.113549.2.11":
		return "HMAC-SHA512", sha512.New, nil
	case "1.2.840.113549.2.12":
		return "HMAC-SHA512/224", sha512.New512_224, nil
	case "1.2.840.113549.2.13":
		return "HMAC-SHA512/256", sha512.New512_256, nil
	}
	return "", nil, fmt.Errorf("%w: private key is encrypted with PBKDF2 using an unsupported PRF (OID %s); %s",
		ErrInvalid, prf.Algorithm, reencryptHint)
}

// parsePBES2 validates PBES2-params and returns the scheme.
func parsePBES2(der []byte) (pbeScheme, error) {
	var params pbes2Params
	if err := unmarshalExact(der, &params); err != nil {
		return pbeScheme{}, fmt.Errorf("%w: malformed PBES2 parameters: %w", ErrInvalid, err)
	}

	c, err := lookupPBES2Cipher(params.EncryptionScheme.Algorithm)
	if err != nil {
		return pbeScheme{}, err
	}
	var iv []byte
	if err := unmarshalExact(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return pbeScheme{}, fmt.Errorf("%w: malformed PBES2 %s parameters: %w", ErrInvalid, c.name, err)
	}

	kdfName, derive, err := parsePBES2KDF(params.KeyDerivationFunc, c.keyLen)
	if err != nil {
		return pbeScheme{}, err
	}
	name := fmt.Sprintf("PBES2 (%s, %s)", kdfName, c.name)
	return pbeScheme{
		name: name,
		decrypt: func(password, ciphertext []byte) ([]byte, error) {
			key, err := derive(password)
			if err != nil {
				return nil, fmt.Errorf("%w: %s key derivation: %w", ErrInvalid, name, err)
			}
			block, err := c.newBlock(key)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
			}
			return cbcDecrypt(block, iv, ciphertext)
		},
	}, nil
}

// parsePBES2KDF validates the key derivation function and returns its name
// and a function deriving a keyLen-byte key.
func parsePBES2KDF(kdf pkix.AlgorithmIdentifier, keyLen int) (string, func(password []byte) ([]byte, error), error) {
	checkKeyLength := func(n int) error {
		// keyLength is optional; when present it must agree with the cipher.
		if n != 0 && n != keyLen {
			return fmt.Errorf("%w: PBES2 key derivation asks for a %d-byte key but the cipher needs %d", ErrInvalid, n, keyLen)
		}
		return nil
	}

	switch kdf.Algorithm.String() {
	case oidPBKDF2:
		var p pbkdf2Params
		if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
			return "", nil, fmt.Errorf("%w: malformed PBKDF2 parameters: %w", ErrInvalid, err)
		}
		if err := checkKeyLength(p.KeyLength); err != nil {
			return "", nil, err
		}
		if err := checkIterations(p.IterationCount); err != nil {
			return "", nil, err
		}
		prfName, h, err := lookupPRF(p.PRF)
		if err != nil {
			return "", nil, err
		}
		return "PBKDF2-" + prfName, func(password []byte) ([]byte, error) {
			return pbkdf2.Key(h, string(password), p.Salt, p.IterationCount, keyLen)
		}, nil

	case oidScrypt:
		var p scryptParams
		if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
			return "", nil, fmt.Errorf("%w: malformed scrypt parameters: %w", ErrInvalid, err)
		}
		if err := checkKeyLength(p.KeyLength); err != nil {
			return "", nil, err
		}
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		// Checked one by one first so the products below cannot overflow.
		if n < 2 || n&(n-1) != 0 || n > maxScryptMemory/128 || r < 1 || r > maxScryptMemory/128 ||
			par < 1 || par > maxScryptWork || 128*n*r > maxScryptMemory || n*r*par > maxScryptWork {
			return "", nil, fmt.Errorf("%w: private key encryption uses scrypt with N=%d r=%d p=%d; "+
				"want N a power of two and at most %d MiB of memory and N*r*p <= %d",
				ErrInvalid, n, r, par, maxScryptMemory>>20, maxScryptWork)
		}
		return "scrypt", func(password []byte) ([]byte, error) {
			return scrypt.Key(password, p.Salt, n, r, par, keyLen)
		}, nil
	}
	return "", nil, fmt.Errorf("%w: private key is encrypted with PBES2 using an unsupported key derivation function (OID %s); %s",
		ErrInvalid, kdf.Algorithm, reencryptHint)
}
