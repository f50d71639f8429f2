package certs

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/md5"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"
	"unicode/utf16"
	"unicode/utf8"
)

// PBES1-style password-based encryption, implemented here because no library
// served by the Go module proxy decrypts it, and AWS Lambda's
// CLIENT_CERTIFICATE_TLS_AUTH secrets support only these schemes.
//
// Two families share the name, as in OpenSSL's `pkcs8 -v1`:
//
//   - PKCS#5 v1.5 PBES1, RFC 8018 §6.1: PBKDF1 (RFC 8018 §5.1) with MD5 or
//     SHA-1 derives 16 bytes: the DES key, then the IV. Parameters are
//     PBEParameter ::= SEQUENCE { salt OCTET STRING (SIZE(8)),
//     iterationCount INTEGER }.
//   - The PKCS#12 PBE schemes, RFC 7292 Appendix C, using the PKCS#12 key
//     derivation of RFC 7292 Appendix B.2 with SHA-1 (ID 1 for the key, ID 2
//     for the IV) over the password as a big-endian BMPString with a
//     trailing zero. Parameters are pkcs-12PbeParams ::= SEQUENCE { salt
//     OCTET STRING, iterations INTEGER }, the same shape.
//
// The RC2 and RC4 variants are refused (see refusedPBEName): the standard
// library has neither cipher, and a key protected by them should be
// re-encrypted anyway.

var (
	oidPBEWithMD5AndDESCBC           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 3}
	oidPBEWithSHA1AndDESCBC          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 10}
	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHAAnd2KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 4}
)

// pbeParams is both PBEParameter (RFC 8018 §A.3) and pkcs-12PbeParams
// (RFC 7292 Appendix C); they have the same encoding.
type pbeParams struct {
	Salt       []byte
	Iterations int
}

// parsePBES1 recognises the PBES1-style OIDs. ok is false when alg is none
// of them, so the caller can try other schemes.
func parsePBES1(alg pkix.AlgorithmIdentifier) (s pbeScheme, ok bool, err error) {
	var derive func(password []byte, p pbeParams) (key, iv []byte)
	var newCipher func(key []byte) (cipher.Block, error)
	switch oid := alg.Algorithm; {
	case oid.Equal(oidPBEWithMD5AndDESCBC):
		s.name = "PBES1 pbeWithMD5AndDES-CBC"
		derive = pbkdf1KeyIV(md5.New)
		newCipher = des.NewCipher
	case oid.Equal(oidPBEWithSHA1AndDESCBC):
		s.name = "PBES1 pbeWithSHA1AndDES-CBC"
		derive = pbkdf1KeyIV(sha1.New)
		newCipher = des.NewCipher
	case oid.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC):
		s.name = "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC"
		derive = pkcs12KeyIV(24)
		newCipher = des.NewTripleDESCipher
	case oid.Equal(oidPBEWithSHAAnd2KeyTripleDESCBC):
		s.name = "PKCS#12 pbeWithSHAAnd2-KeyTripleDES-CBC"
		derive = pkcs12KeyIV(16)
		newCipher = func(key []byte) (cipher.Block, error) {
			// Two-key triple DES is K1, K2, K1 (RFC 7292 Appendix C).
			return des.NewTripleDESCipher(append(key[:16:16], key[:8]...))
		}
	default:
		return pbeScheme{}, false, nil
	}

	var p pbeParams
	if err := unmarshalExact(alg.Parameters.FullBytes, &p); err != nil {
		return pbeScheme{}, true, fmt.Errorf("%w: malformed %s parameters: %w", ErrInvalid, s.name, err)
	}
	if err := checkIterations(p.Iterations); err != nil {
		return pbeScheme{}, true, err
	}
	s.decrypt = func(password, ciphertext []byte) ([]byte, error) {
		key, iv := derive(password, p)
		block, err := newCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, s.name, err)
		}
		return cbcDecrypt(block, iv, ciphertext)
	}
	return s, true, nil
}

// pbkdf1KeyIV returns the PBES1 key and IV derivation (RFC 8018 §6.1.2 step 2
// and 3): DK = PBKDF1(P, S, c, 16), K = DK[0:8], IV = DK[8:16].
func pbkdf1KeyIV(newHash func() hash.Hash) func([]byte, pbeParams) ([]byte, []byte) {
	return func(password []byte, p pbeParams) ([]byte, []byte) {
		dk := pbkdf1(newHash, password, p.Salt, p.Iterations, 16)
		return dk[:8], dk[8:16]
	}
}

// pbkdf1 is RFC 8018 §5.1: T_1 = Hash(P || S), T_i = Hash(T_{i-1}), and the
// derived key is the first dkLen bytes of T_c. dkLen must not exceed the
// hash size (16 for MD5, 20 for SHA-1); callers ask for 16.
func pbkdf1(newHash func() hash.Hash, password, salt []byte, iterations, dkLen int) []byte {
	h := newHash()
	h.Write(password)
	h.Write(salt)
	t := h.Sum(nil)
	for i := 1; i < iterations; i++ {
		h.Reset()
		h.Write(t)
		t = h.Sum(t[:0])
	}
	return t[:dkLen]
}

// pkcs12KeyIV returns the PKCS#12 PBE key and IV derivation (RFC 7292
// Appendix B.3 and C): key with ID 1, 8-byte DES IV with ID 2.
func pkcs12KeyIV(keyLen int) func([]byte, pbeParams) ([]byte, []byte) {
	return func(password []byte, p pbeParams) ([]byte, []byte) {
		bmp := bmpPassword(password)
		key := pkcs12KDF(bmp, p.Salt, p.Iterations, 1, keyLen)
		iv := pkcs12KDF(bmp, p.Salt, p.Iterations, 2, des.BlockSize)
		return key, iv
	}
}

// bmpPassword encodes a password as RFC 7292 Appendix B.1 wants: a BMPString
// (big-endian UTF-16) followed by two zero bytes. Like OpenSSL
// (OPENSSL_utf82uni), it reads the password as UTF-8, writes characters
// outside the BMP as surrogate pairs, and falls back to one byte per
// character (Latin-1) when the password is not valid UTF-8.
func bmpPassword(password []byte) []byte {
	var units []uint16
	if utf8.Valid(password) {
		units = utf16.Encode([]rune(string(password)))
	} else {
		units = make([]uint16, len(password))
		for i, b := range password {
			units[i] = uint16(b)
		}
	}
	out := make([]byte, 0, 2*len(units)+2)
	for _, u := range units {
		out = append(out, byte(u>>8), byte(u))
	}
	return append(out, 0, 0)
}

// pkcs12KDF is the key derivation of RFC 7292 Appendix B.2 with SHA-1
// (u = 20-byte output, v = 64-byte block). password is already the
// BMPString form; id selects key (1), IV (2) or MAC key (3) material.
func pkcs12KDF(password, salt []byte, iterations int, id byte, n int) []byte {
	const u, v = sha1.Size, 64

	// Steps 1-4: D = v copies of ID; I = S || P, each repeated to a multiple
	// of v bytes.
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fillBlocks(salt, v), fillBlocks(password, v)...)

	out := make([]byte, 0, n+u)
	for {
		// Step 6a: A_i = H^r(D || I).
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for j := 1; j < iterations; j++ {
			sum := sha1.Sum(a)
			a = sum[:]
		}
		out = append(out, a...)
		if len(out) >= n {
			return out[:n]
		}
		// Steps 6b-6c: B = A_i repeated to v bytes; every v-byte block I_j of
		// I becomes (I_j + B + 1) mod 2^(8v).
		b := fillBlocks(a, v)[:v]
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k] = byte(sum)
				carry = sum >> 8
			}
		}
	}
}

// fillBlocks repeats b to the smallest multiple of v bytes that holds it
// (RFC 7292 Appendix B.2 steps 2 and 3); empty stays empty.
func fillBlocks(b []byte, v int) []byte {
	if len(b) == 0 {
		return nil
	}
	out := make([]byte, v*((len(b)+v-1)/v))
	for i := range out {
		out[i] = b[i%len(b)]
	}
	return out
}

// refusedPBEName names the password-based encryption schemes we recognise
// but do not implement, so the error can tell the user what they have.
// It returns "" for unknown OIDs.
func refusedPBEName(oid asn1.ObjectIdentifier) string {
	switch oid.String() {
	case "1.2.840.113549.1.5.1":
		return "PBES1 pbeWithMD2AndDES-CBC (MD2)"
	case "1.2.840.113549.1.5.4":
		return "PBES1 pbeWithMD2AndRC2-CBC (RC2)"
	case "1.2.840.113549.1.5.6":
		return "PBES1 pbeWithMD5AndRC2-CBC (RC2)"
	case "1.2.840.113549.1.5.11":
		return "PBES1 pbeWithSHA1AndRC2-CBC (RC2)"
	case "1.2.840.113549.1.12.1.1":
		return "PKCS#12 pbeWithSHAAnd128BitRC4 (RC4)"
	case "1.2.840.113549.1.12.1.2":
		return "PKCS#12 pbeWithSHAAnd40BitRC4 (RC4)"
	case "1.2.840.113549.1.12.1.5":
		return "PKCS#12 pbeWithSHAAnd128BitRC2-CBC (RC2)"
	case "1.2.840.113549.1.12.1.6":
		return "PKCS#12 pbeWithSHAAnd40BitRC2-CBC (RC2)"
	}
	return ""
}
