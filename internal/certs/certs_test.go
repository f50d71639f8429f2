package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

var wantChainCNs = []string{"sluice-client-rsa", "Sluice Test Intermediate CA", "Sluice Test Root CA"}

func chainCNs(certs []*x509.Certificate) []string {
	cns := make([]string, len(certs))
	for i, c := range certs {
		cns[i] = c.Subject.CommonName
	}
	return cns
}

func TestParseChain(t *testing.T) {
	chainPEM := readFixture(t, "rsa-chain.pem")
	cases := map[string][]byte{
		"as generated": chainPEM,
		"flattened":    flatten(chainPEM),
		"crlf":         crlf(chainPEM),
		"json escapes": []byte(strings.ReplaceAll(string(chainPEM), "\n", `\n`)),
		"blank lines between blocks": []byte(strings.ReplaceAll(string(chainPEM),
			"-----END CERTIFICATE-----\n", "-----END CERTIFICATE-----\n\n\t \n")),
		// The exact shape of the AWS documentation example: one line, one
		// space between BEGIN line, base64 chunks and END line.
		"aws docs one-line": []byte(strings.ReplaceAll(strings.TrimSpace(string(chainPEM)), "\n", " ")),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			certs, err := ParseChain(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := chainCNs(certs); strings.Join(got, "|") != strings.Join(wantChainCNs, "|") {
				t.Fatalf("chain = %q, want %q (order must be kept)", got, wantChainCNs)
			}
		})
	}
}

func TestParseChainSingle(t *testing.T) {
	certs, err := ParseChain(readFixture(t, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].IsCA {
		t.Fatalf("got %d certificates, want the CA", len(certs))
	}
}

func TestParseChainInvalid(t *testing.T) {
	chainPEM := readFixture(t, "rsa-chain.pem")
	keyPEM := readFixture(t, "rsa-key-pkcs8.pem")
	blocks := strings.SplitAfter(string(chainPEM), "-----END CERTIFICATE-----\n")
	cases := []struct {
		name     string
		in       []byte
		fragment string
	}{
		{"empty", nil, "no PEM data"},
		{"whitespace only", []byte(" \r\n\t"), "no PEM data"},
		{"key in chain", []byte(blocks[0] + string(keyPEM)), "PEM block 2 is PRIVATE KEY; only CERTIFICATE blocks"},
		{"trailing garbage", append(append([]byte{}, chainPEM...), "trailing"...), "unexpected text after PEM block 3 (CERTIFICATE)"},
		{"garbage between blocks", []byte(blocks[0] + "subject=CN=x\n" + blocks[1]), "unexpected text after PEM block 1"},
		{"corrupt base64 in block 2", []byte(blocks[0] + strings.Replace(blocks[1], "\n", "\n*", 2) + blocks[2]), "PEM block 2 (CERTIFICATE): invalid base64"},
		{"truncated", chainPEM[:len(chainPEM)-40], "PEM block 3 (CERTIFICATE): missing END line"},
		{"not DER", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "PEM block 1: x509"},
		{"trusted certificate", []byte(strings.ReplaceAll(blocks[0], " CERTIFICATE", " TRUSTED CERTIFICATE")), "PEM block 1 is TRUSTED CERTIFICATE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseChain(c.in)
			wantErr(t, err, []error{ErrInvalid}, []string{c.fragment}, keyPEM, nil)
		})
	}
}

func TestPool(t *testing.T) {
	chainPEM := readFixture(t, "rsa-chain.pem")
	pool, err := Pool(readFixture(t, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// The pool must verify the client chain through the intermediate.
	certs, err := ParseChain(chainPEM)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	_, err = certs[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   certs[0].NotBefore.Add(time.Hour),
	})
	if err != nil {
		t.Fatalf("verify with pool: %v", err)
	}

	// Several CAs in one PEM.
	pool, err = Pool(append(readFixture(t, "ca.pem"), readFixture(t, "intermediate.pem")...))
	if err != nil {
		t.Fatal(err)
	}
	want := x509.NewCertPool()
	want.AddCert(certs[2])
	want.AddCert(certs[1])
	if !pool.Equal(want) {
		t.Fatal("pool does not hold exactly the root and the intermediate")
	}

	for _, in := range [][]byte{nil, []byte("nothing here"), readFixture(t, "rsa-key-pkcs8.pem")} {
		if _, err := Pool(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Pool(%.20q) error = %v, want ErrInvalid", in, err)
		}
	}
}

func TestClientCertificate(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt, func(t *testing.T) {
			chainPEM := readFixture(t, kt+"-chain.pem")
			keyPEM := readFixture(t, kt+"-key-pbes1-sha1-3des.pem")
			cert, err := ClientCertificate(chainPEM, keyPEM, []byte(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			if cert.Leaf == nil || cert.Leaf.Subject.CommonName != "sluice-client-"+kt {
				t.Fatalf("Leaf = %v", cert.Leaf)
			}
			if len(cert.Certificate) != 3 {
				t.Fatalf("%d certificates, want the 3 given", len(cert.Certificate))
			}
			if k, ok := cert.PrivateKey.(crypto.Signer); !ok || !sameKey(k, mustParseKey(t, kt+"-key-pkcs8.pem")) {
				t.Fatal("wrong private key")
			}

			// Flattened chain and key, as pasted from the AWS documentation.
			if _, err := ClientCertificate(flatten(chainPEM), flatten(keyPEM), []byte(testPassword)); err != nil {
				t.Fatalf("flattened: %v", err)
			}
		})
	}
}

func TestClientCertificateMismatch(t *testing.T) {
	pw := []byte(testPassword)
	rsaChain := readFixture(t, "rsa-chain.pem")
	blocks := strings.SplitAfter(string(rsaChain), "-----END CERTIFICATE-----\n")
	reversed := []byte(blocks[2] + blocks[1] + blocks[0])

	cases := []struct {
		name      string
		chain     []byte
		key       string
		fragments []string
	}{
		{"other RSA key", rsaChain, "other-rsa-key-pkcs8.pem", []string{"does not match the client certificate (CN=sluice-client-rsa"}},
		{"EC key for RSA certificate", rsaChain, "ec-key-pkcs8.pem", []string{"does not match"}},
		{"chain in reverse order", reversed, "rsa-key-pkcs8.pem", []string{"belongs to certificate 3 (CN=sluice-client-rsa", "must come first"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keyPEM := readFixture(t, c.key)
			_, err := ClientCertificate(c.chain, keyPEM, pw)
			wantErr(t, err, []error{ErrInvalid}, c.fragments, keyPEM, pw)
		})
	}

	// Errors from the parts come through unchanged.
	_, err := ClientCertificate(rsaChain, readFixture(t, "rsa-key-pbes2-aes256.pem"), nil)
	if !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("missing password: %v", err)
	}
	_, err = ClientCertificate([]byte("junk"), readFixture(t, "rsa-key-pkcs8.pem"), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("bad chain: %v", err)
	}
}
