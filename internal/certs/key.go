package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
)

// PEM labels of the private key formats we read.
const (
	labelPKCS8          = "PRIVATE KEY"           // PKCS#8 PrivateKeyInfo
	labelEncryptedPKCS8 = "ENCRYPTED PRIVATE KEY" // PKCS#8 EncryptedPrivateKeyInfo
	labelPKCS1          = "RSA PRIVATE KEY"       // PKCS#1 RSAPrivateKey
	labelSEC1           = "EC PRIVATE KEY"        // SEC 1 ECPrivateKey
	// labelECParameters precedes the key in `openssl ecparam -genkey`
	// output. The key names its curve itself, so the block is skipped.
	labelECParameters = "EC PARAMETERS"
)

// legacyHint tells the user how to turn a legacy OpenSSL-encrypted PEM key
// into encrypted PKCS#8 (openssl asks for the old and the new password).
const legacyHint = "convert it to encrypted PKCS#8 with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old-key.pem -out new-key.pem"

// ParsePrivateKey parses a PEM private key, decrypting it with password when
// it is encrypted. It accepts:
//
//   - "PRIVATE KEY": unencrypted PKCS#8; password is ignored;
//   - "ENCRYPTED PRIVATE KEY": PKCS#8 EncryptedPrivateKeyInfo with
//     PBES2 (PBKDF2 with HMAC-SHA1, -SHA224, -SHA256, -SHA384, -SHA512, or
//     scrypt; AES-128/192/256-CBC, DES-EDE3-CBC or DES-CBC), or
//     PBES1 pbeWithMD5AndDES-CBC / pbeWithSHA1AndDES-CBC, or the PKCS#12
//     schemes pbeWithSHAAnd3-KeyTripleDES-CBC / pbeWithSHAAnd2-KeyTripleDES-CBC;
//   - "RSA PRIVATE KEY" (PKCS#1) and "EC PRIVATE KEY" (SEC 1), unencrypted,
//     optionally preceded by an "EC PARAMETERS" block.
//
// Legacy OpenSSL PEM encryption ("Proc-Type: 4,ENCRYPTED") and RC2/RC4-based
// schemes are refused with an error explaining how to convert the key. A
// missing password yields an error wrapping ErrPasswordRequired, a wrong one
// an error wrapping ErrWrongPassword. The key must be RSA, ECDSA or Ed25519,
// the types TLS client authentication can use.
//
// The PEM layout is as lenient as ParseChain's.
func ParsePrivateKey(pemBytes []byte, password []byte) (crypto.Signer, error) {
	blocks, err := decodePEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %w", ErrInvalid, err)
	}
	var block *pemBlock
	for i := range blocks {
		switch blocks[i].Type {
		case labelECParameters:
			continue
		case labelPKCS8, labelEncryptedPKCS8, labelPKCS1, labelSEC1:
			if block != nil {
				return nil, fmt.Errorf("%w: private key: found more than one private key", ErrInvalid)
			}
			block = &blocks[i]
		default:
			return nil, fmt.Errorf("%w: private key: PEM block %d is %s; want %s or %s",
				ErrInvalid, i+1, blocks[i].Type, labelPKCS8, labelEncryptedPKCS8)
		}
	}
	if block == nil {
		return nil, fmt.Errorf("%w: private key: no private key block found", ErrInvalid)
	}

	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, fmt.Errorf("%w: private key uses legacy OpenSSL PEM encryption (Proc-Type: 4,ENCRYPTED%s), which is not supported; %s",
			ErrInvalid, dekCipher(block.Headers["DEK-Info"]), legacyHint)
	}

	var key any
	if block.Type == labelEncryptedPKCS8 {
		key, err = decryptPKCS8(block.Bytes, password)
	} else {
		key, err = parseUnencrypted(block.Type, block.Bytes)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: private key of type %T cannot be used for TLS client authentication; use RSA, ECDSA or Ed25519",
		ErrInvalid, key)
}

// dekCipher returns ", DEK-Info: <cipher>" for the error message, without
// the IV and only if the cipher name looks like one.
func dekCipher(dekInfo string) string {
	name, _, _ := strings.Cut(dekInfo, ",")
	if name == "" || len(name) > 32 || strings.IndexFunc(name, func(r rune) bool {
		return (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-'
	}) >= 0 {
		return ""
	}
	return ", DEK-Info: " + name
}

// parseUnencrypted parses an unencrypted key. Should the DER not match its
// label, the other two formats are tried as well: the DER structures cannot
// be confused with each other, and a mislabelled but intact key is better
// accepted than rejected with a puzzling error.
func parseUnencrypted(label string, der []byte) (any, error) {
	parsers := []struct {
		label string
		name  string
		parse func([]byte) (any, error)
	}{
		{labelPKCS8, "PKCS#8", x509.ParsePKCS8PrivateKey},
		{labelPKCS1, "PKCS#1 RSA", func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }},
		{labelSEC1, "SEC 1 EC", func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) }},
	}
	var labelErr error
	var labelName string
	for _, p := range parsers {
		if p.label == label {
			key, err := p.parse(der)
			if err == nil {
				return key, nil
			}
			labelErr, labelName = err, p.name
		}
	}
	for _, p := range parsers {
		if p.label != label {
			if key, err := p.parse(der); err == nil {
				return key, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: malformed %s private key: %w", ErrInvalid, labelName, labelErr)
}

// decryptPKCS8 decrypts and parses a PKCS#8 EncryptedPrivateKeyInfo.
func decryptPKCS8(der, password []byte) (any, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalExact(der, &info); err != nil {
		return nil, fmt.Errorf("%w: malformed encrypted private key: %w", ErrInvalid, err)
	}
	// The scheme is checked before the password so that a user with an
	// unsupported key learns that first, not after finding the password.
	scheme, err := parsePBEScheme(info.Algorithm)
	if err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("%w (encryption: %s)", ErrPasswordRequired, scheme.name)
	}
	plain, err := scheme.decrypt(password, info.EncryptedData)
	if errors.Is(err, errBadPadding) {
		return nil, fmt.Errorf("%w (encryption: %s)", ErrWrongPassword, scheme.name)
	}
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(plain)
	if err == nil {
		return key, nil
	}
	// Decrypting with a wrong key gives random bytes, which end in valid
	// padding about once in 256 tries; they will not also form a
	// PrivateKeyInfo. If they do, the password was right and the key inside
	// is what the parser objects to.
	var pki struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if unmarshalExact(plain, &pki) != nil {
		return nil, fmt.Errorf("%w (encryption: %s)", ErrWrongPassword, scheme.name)
	}
	return nil, fmt.Errorf("%w: decrypted private key is unusable: %w", ErrInvalid, err)
}
