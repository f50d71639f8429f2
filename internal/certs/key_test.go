package certs

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
)

func TestParsePrivateKeyEncrypted(t *testing.T) {
	for _, kt := range keyTypes {
		want := mustParseKey(t, kt+"-key-pkcs8.pem")
		for _, s := range encryptedSchemes {
			name := kt + "-key-" + s.name + ".pem"
			t.Run(name, func(t *testing.T) {
				keyPEM := readFixture(t, name)

				got, err := ParsePrivateKey(keyPEM, []byte(testPassword))
				if err != nil {
					t.Fatalf("right password: %v", err)
				}
				if !sameKey(got, want) {
					t.Fatal("decrypted key differs from the plain fixture")
				}

				wrong := []byte("not-the-" + testPassword)
				_, err = ParsePrivateKey(keyPEM, wrong)
				wantErr(t, err, []error{ErrInvalid, ErrWrongPassword}, []string{"wrong", s.algo}, keyPEM, wrong)

				_, err = ParsePrivateKey(keyPEM, nil)
				wantErr(t, err, []error{ErrInvalid, ErrPasswordRequired}, []string{"encrypted", "privateKeyPassword", s.algo}, keyPEM, nil)
			})
		}
	}
}

func TestParsePrivateKeyUnicodePassword(t *testing.T) {
	want := mustParseKey(t, "ec-key-pkcs8.pem")
	// PBES1/PKCS#12 turns the password into a BMPString (with a surrogate
	// pair for the emoji); PBES2 uses its UTF-8 bytes.
	for _, name := range []string{"ec-key-pbes1-sha1-3des-unicode.pem", "ec-key-pbes2-aes256-unicode.pem"} {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePrivateKey(readFixture(t, name), []byte(testUnicodePassword))
			if err != nil {
				t.Fatal(err)
			}
			if !sameKey(got, want) {
				t.Fatal("decrypted key differs from the plain fixture")
			}
		})
	}
}

func TestParsePrivateKeyUnencrypted(t *testing.T) {
	for _, kt := range keyTypes {
		want := mustParseKey(t, kt+"-key-pkcs8.pem")
		names := []string{kt + "-key-pkcs8.pem", kt + "-key-traditional.pem"}
		if kt == "ec" {
			names = append(names, "ec-key-sec1-with-params.pem")
		}
		for _, name := range names {
			t.Run(name, func(t *testing.T) {
				keyPEM := readFixture(t, name)
				// A password given for an unencrypted key is ignored, as AWS
				// treats privateKeyPassword as optional.
				for _, pw := range [][]byte{nil, []byte(testPassword)} {
					got, err := ParsePrivateKey(keyPEM, pw)
					if err != nil {
						t.Fatal(err)
					}
					if !sameKey(got, want) {
						t.Fatal("parsed key differs from the PKCS#8 fixture")
					}
				}
			})
		}
	}
}

func TestParsePrivateKeyLayouts(t *testing.T) {
	want := mustParseKey(t, "rsa-key-pkcs8.pem")
	keyPEM := readFixture(t, "rsa-key-pbes1-sha1-3des.pem")
	cases := map[string][]byte{
		"flattened":                      flatten(keyPEM),
		"crlf":                           crlf(keyPEM),
		"json escapes":                   []byte(strings.ReplaceAll(string(keyPEM), "\n", `\n`)),
		"surrounding whitespace and BOM": []byte("\uFEFF \n\t" + string(keyPEM) + "\n\n  "),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePrivateKey(in, []byte(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			if !sameKey(got, want) {
				t.Fatal("key differs")
			}
		})
	}
}

func TestParsePrivateKeyMislabelled(t *testing.T) {
	// PKCS#1 DER under the PKCS#8 label (and vice versa) is accepted.
	want := mustParseKey(t, "rsa-key-pkcs8.pem")
	pkcs1 := firstDER(t, readFixture(t, "rsa-key-traditional.pem"))
	pkcs8 := firstDER(t, readFixture(t, "rsa-key-pkcs8.pem"))
	for _, in := range [][]byte{encodePEM("PRIVATE KEY", pkcs1), encodePEM("EC PRIVATE KEY", pkcs8)} {
		got, err := ParsePrivateKey(in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !sameKey(got, want) {
			t.Fatal("key differs")
		}
	}
}

func TestParsePrivateKeyOtherKeyTypes(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKey(encodePEM("PRIVATE KEY", der), nil); err != nil {
		t.Errorf("Ed25519: %v", err)
	}

	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.MarshalPKCS8PrivateKey(xKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := encodePEM("PRIVATE KEY", der)
	_, err = ParsePrivateKey(keyPEM, nil)
	wantErr(t, err, []error{ErrInvalid}, []string{"cannot be used for TLS client authentication"}, keyPEM, nil)
}

func TestParsePrivateKeyRefused(t *testing.T) {
	cases := []struct {
		file      string
		fragments []string
	}{
		{"rsa-key-legacy-aes256.pem", []string{"legacy OpenSSL PEM encryption", "DEK-Info: AES-256-CBC", "openssl pkcs8 -topk8 -v2 aes-256-cbc"}},
		{"rsa-key-pbes1-sha1-rc2-40.pem", []string{"pbeWithSHAAnd40BitRC2-CBC", "RC2", "openssl pkcs8 -topk8 -v2 aes-256-cbc", "-provider legacy"}},
		{"rsa-key-pbes1-sha1-rc4-128.pem", []string{"pbeWithSHAAnd128BitRC4", "RC4", "openssl pkcs8 -topk8"}},
		{"rsa-key-pbes1-md5-rc2.pem", []string{"pbeWithMD5AndRC2-CBC", "RC2", "openssl pkcs8 -topk8"}},
		{"rsa-key-pbes2-rc2.pem", []string{"PBES2 using RC2-CBC", "openssl pkcs8 -topk8"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			keyPEM := readFixture(t, c.file)
			// The format problem is reported whether or not a password is given.
			for _, pw := range [][]byte{nil, []byte(testPassword)} {
				_, err := ParsePrivateKey(keyPEM, pw)
				wantErr(t, err, []error{ErrInvalid}, c.fragments, keyPEM, pw)
				if errors.Is(err, ErrPasswordRequired) {
					t.Errorf("refused scheme reported as missing password: %v", err)
				}
			}
			// The flattened one-line form must be refused the same way.
			_, err := ParsePrivateKey(flatten(keyPEM), []byte(testPassword))
			wantErr(t, err, []error{ErrInvalid}, c.fragments, keyPEM, []byte(testPassword))
		})
	}
}

func TestParsePrivateKeyMalformed(t *testing.T) {
	pw := []byte(testPassword)
	encPEM := readFixture(t, "rsa-key-pbes2-aes256.pem")
	plainPEM := readFixture(t, "rsa-key-pkcs8.pem")
	encDER := firstDER(t, encPEM)
	plainDER := firstDER(t, plainPEM)

	corruptB64 := []byte(strings.Replace(string(encPEM), "\n", "\n!@#$", 3))

	var info encryptedPrivateKeyInfo
	if err := unmarshalExact(encDER, &info); err != nil {
		t.Fatal(err)
	}
	info.EncryptedData = info.EncryptedData[:len(info.EncryptedData)-3]
	shortCiphertext, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(encDER, &info); err != nil {
		t.Fatal(err)
	}
	// Flipping a bit early in the ciphertext garbles the PKCS#8 structure
	// but leaves the padding in the last block intact.
	info.EncryptedData[20] ^= 0x40
	flipped, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name      string
		in        []byte
		targets   []error
		fragments []string
	}{
		{"empty", nil, nil, []string{"no PEM data"}},
		{"not PEM", []byte("hello"), nil, []string{"no PEM data"}},
		{"raw base64 without armour", []byte(strings.Join(strings.Split(string(encPEM), "\n")[1:3], "")), nil, []string{"no PEM data"}},
		{"corrupt base64", corruptB64, nil, []string{"invalid base64"}},
		{"missing END line", encPEM[:len(encPEM)/2], nil, []string{"missing END line"}},
		{"mismatched END line", []byte(strings.Replace(string(encPEM), "END ENCRYPTED", "END", 1)), nil, []string{"does not match"}},
		{"trailing garbage", append(append([]byte{}, encPEM...), "garbage"...), nil, []string{"unexpected text after PEM block 1"}},
		{"leading garbage", append([]byte("Bag Attributes\n"), encPEM...), nil, []string{"unexpected text before the first PEM block"}},
		{"truncated encrypted DER", encodePEM("ENCRYPTED PRIVATE KEY", encDER[:len(encDER)/2]), nil, []string{"malformed encrypted private key"}},
		{"trailing data after encrypted DER", encodePEM("ENCRYPTED PRIVATE KEY", append(append([]byte{}, encDER...), 0, 0)), nil, []string{"malformed encrypted private key"}},
		{"truncated plain DER", encodePEM("PRIVATE KEY", plainDER[:len(plainDER)/2]), nil, []string{"malformed PKCS#8"}},
		{"ciphertext not whole blocks", encodePEM("ENCRYPTED PRIVATE KEY", shortCiphertext), nil, []string{"not a positive multiple"}},
		{"corrupt ciphertext", encodePEM("ENCRYPTED PRIVATE KEY", flipped), []error{ErrWrongPassword}, []string{"wrong or the private key is corrupt"}},
		{"certificate instead of key", readFixture(t, "rsa-chain.pem"), nil, []string{"PEM block 1 is CERTIFICATE"}},
		{"two keys", append(append([]byte{}, plainPEM...), plainPEM...), nil, []string{"more than one private key"}},
		{"only EC PARAMETERS", []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), nil, []string{"no private key block"}},
		{"empty block", []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"), nil, []string{"no base64 data"}},
		{"lower-case label", []byte(strings.ReplaceAll(string(plainPEM), "PRIVATE KEY", "private key")), nil, []string{"malformed BEGIN line"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePrivateKey(c.in, pw)
			wantErr(t, err, append([]error{ErrInvalid}, c.targets...), c.fragments, encPEM, pw)
			checkNoSecrets(t, err.Error(), plainPEM, pw)
		})
	}
}

// TestHostileParameters checks that parameters read from the key are
// validated before they reach crypto/cipher (which panics on bad lengths) or
// a key derivation (which could run for hours or exhaust memory).
func TestHostileParameters(t *testing.T) {
	pw := []byte(testPassword)
	encDER := firstDER(t, readFixture(t, "rsa-key-pbes2-aes256.pem"))
	scryptDER := firstDER(t, readFixture(t, "rsa-key-pbes2-scrypt.pem"))
	pbes1DER := firstDER(t, readFixture(t, "rsa-key-pbes1-sha1-3des.pem"))

	// edit decodes a PBES2 fixture, lets f change its parts, and re-encodes it.
	edit := func(der []byte, f func(kdf *pkix.AlgorithmIdentifier, enc *pkix.AlgorithmIdentifier)) []byte {
		var info encryptedPrivateKeyInfo
		var params pbes2Params
		if err := unmarshalExact(der, &info); err != nil {
			t.Fatal(err)
		}
		if err := unmarshalExact(info.Algorithm.Parameters.FullBytes, &params); err != nil {
			t.Fatal(err)
		}
		f(&params.KeyDerivationFunc, &params.EncryptionScheme)
		info.Algorithm.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, params)}
		return encodePEM("ENCRYPTED PRIVATE KEY", mustMarshal(t, info))
	}
	editPBKDF2 := func(f func(p *pbkdf2Params)) []byte {
		return edit(encDER, func(kdf, _ *pkix.AlgorithmIdentifier) {
			var p pbkdf2Params
			if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
				t.Fatal(err)
			}
			f(&p)
			kdf.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, p)}
		})
	}
	editScrypt := func(f func(p *scryptParams)) []byte {
		return edit(scryptDER, func(kdf, _ *pkix.AlgorithmIdentifier) {
			var p scryptParams
			if err := unmarshalExact(kdf.Parameters.FullBytes, &p); err != nil {
				t.Fatal(err)
			}
			f(&p)
			kdf.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, p)}
		})
	}
	editIV := func(iv []byte) []byte {
		return edit(encDER, func(_, enc *pkix.AlgorithmIdentifier) {
			enc.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, iv)}
		})
	}
	editPBES1 := func(f func(p *pbeParams)) []byte {
		var info encryptedPrivateKeyInfo
		var p pbeParams
		if err := unmarshalExact(pbes1DER, &info); err != nil {
			t.Fatal(err)
		}
		if err := unmarshalExact(info.Algorithm.Parameters.FullBytes, &p); err != nil {
			t.Fatal(err)
		}
		f(&p)
		info.Algorithm.Parameters = asn1.RawValue{FullBytes: mustMarshal(t, p)}
		return encodePEM("ENCRYPTED PRIVATE KEY", mustMarshal(t, info))
	}

	cases := []struct {
		name     string
		in       []byte
		fragment string
	}{
		{"huge PBKDF2 iterations", editPBKDF2(func(p *pbkdf2Params) { p.IterationCount = 1 << 40 }), "iterations"},
		{"zero PBKDF2 iterations", editPBKDF2(func(p *pbkdf2Params) { p.IterationCount = 0 }), "iterations"},
		{"huge PBES1 iterations", editPBES1(func(p *pbeParams) { p.Iterations = maxIterations + 1 }), "iterations"},
		{"negative PBES1 iterations", editPBES1(func(p *pbeParams) { p.Iterations = -5 }), "iterations"},
		{"keyLength mismatch", editPBKDF2(func(p *pbkdf2Params) { p.KeyLength = 16 }), "16-byte key but the cipher needs 32"},
		{"unknown PRF", editPBKDF2(func(p *pbkdf2Params) {
			p.PRF = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401, 2}}
		}), "unsupported PRF (OID 1.2.156.10197.1.401.2)"},
		{"scrypt huge N", editScrypt(func(p *scryptParams) { p.CostParameter = 1 << 30 }), "scrypt with N=1073741824"},
		{"scrypt N not power of two", editScrypt(func(p *scryptParams) { p.CostParameter = 1000 }), "power of two"},
		{"scrypt huge p", editScrypt(func(p *scryptParams) { p.ParallelizationParameter = 1 << 20 }), "N*r*p"},
		{"scrypt zero r", editScrypt(func(p *scryptParams) { p.BlockSize = 0 }), "r=0"},
		{"short IV", editIV(make([]byte, 8)), "8-byte IV; want 16"},
		{"empty IV", editIV(nil), "0-byte IV; want 16"},
		{"AES-GCM", edit(encDER, func(_, enc *pkix.AlgorithmIdentifier) {
			enc.Algorithm = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
		}), "PBES2 using AES-GCM"},
		{"unknown cipher", edit(encDER, func(_, enc *pkix.AlgorithmIdentifier) {
			enc.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4}
		}), "unknown cipher (OID 1.2.3.4)"},
		{"unknown KDF", edit(encDER, func(kdf, _ *pkix.AlgorithmIdentifier) {
			kdf.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4}
		}), "unsupported key derivation function (OID 1.2.3.4)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePrivateKey(c.in, pw)
			wantErr(t, err, []error{ErrInvalid}, []string{c.fragment}, c.in, pw)
		})
	}
}

func TestCBCDecryptPadding(t *testing.T) {
	// DES-CBC with a fixed key; one block of plaintext per case so the
	// padding byte under test is the last byte of the only block.
	key, iv := []byte("8bytekey"), make([]byte, 8)
	block := mustDES(t, key)
	cases := []struct {
		last    []byte // the whole 8-byte plaintext block
		wantErr bool
		wantLen int
	}{
		{[]byte{1, 2, 3, 4, 5, 6, 7, 1}, false, 7},
		{[]byte{8, 8, 8, 8, 8, 8, 8, 8}, false, 0},
		{[]byte{1, 2, 3, 4, 5, 3, 3, 3}, false, 5},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 0}, true, 0},  // zero padding byte
		{[]byte{1, 2, 3, 4, 5, 6, 7, 9}, true, 0},  // longer than the block
		{[]byte{1, 2, 3, 4, 5, 2, 3, 3}, true, 0},  // inconsistent bytes
		{[]byte{1, 2, 3, 4, 5, 6, 2, 2}, false, 6}, // two bytes of 2
	}
	for _, c := range cases {
		ct := cbcEncryptRaw(t, block, iv, c.last)
		got, err := cbcDecrypt(block, iv, ct)
		if c.wantErr {
			if err != errBadPadding {
				t.Errorf("%v: err = %v, want errBadPadding", c.last, err)
			}
			continue
		}
		if err != nil || len(got) != c.wantLen {
			t.Errorf("%v: got %d bytes, err %v; want %d bytes", c.last, len(got), err, c.wantLen)
		}
	}
}

// TestPKCS12KDF checks the PKCS#12 key derivation against the vectors used
// by golang.org/x/crypto/pkcs12.
func TestPKCS12KDF(t *testing.T) {
	got := pkcs12KDF(bmpPassword([]byte("sesame")), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"), 2048, 1, 24)
	if want := "\x7c\xd9\xfd\x3e\x2b\x3b\xe7\x69\x1a\x44\xe3\xbe\xf0\xf9\xea\x0f\xb9\xb8\x97\xd4\xe3\x25\xd9\xd1"; string(got) != want {
		t.Errorf("sesame: got %x, want %x", got, want)
	}
	// I_j with a leading zero byte after step 6C.
	got = pkcs12KDF([]byte("\x00\x00"), []byte("\xf3\x7e\x05\xb5\x18\x32\x4b\x4b"), 2048, 1, 24)
	if want := "\x00\xf7\x59\xff\x47\xd1\x4d\xd0\x36\x65\xd5\x94\x3c\xb3\xc4\xa3\x9a\x25\x55\xc0\x2a\xed\x66\xe1"; string(got) != want {
		t.Errorf("leading zeros: got %x, want %x", got, want)
	}
}

func TestBMPPassword(t *testing.T) {
	cases := map[string]string{
		"ab":       "\x00a\x00b\x00\x00",
		"ä":        "\x00\xe4\x00\x00",
		"🔑":        "\xd8\x3d\xdd\x11\x00\x00", // surrogate pair
		"\xff\x41": "\x00\xff\x00\x41\x00\x00", // invalid UTF-8: Latin-1, as OpenSSL
		"":         "\x00\x00",
	}
	for in, want := range cases {
		if got := string(bmpPassword([]byte(in))); got != want {
			t.Errorf("bmpPassword(%q) = %x, want %x", in, got, want)
		}
	}
}
