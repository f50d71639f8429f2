package certs

import (
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixturePEMs returns every .pem fixture, for fuzz seeds.
func fixturePEMs(f *testing.F) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.pem"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Labels under which the fuzz targets also wrap raw input, so that mutations
// reach the DER parsers and decryption directly instead of dying in base64.
var (
	fuzzKeyLabels  = []string{labelPKCS8, labelEncryptedPKCS8, labelPKCS1, labelSEC1}
	fuzzCertLabels = []string{"CERTIFICATE"}
)

// FuzzParsePrivateKey checks that no input panics and that every error
// wraps ErrInvalid. Seeds are the fixtures, as PEM and as DER.
func FuzzParsePrivateKey(f *testing.F) {
	for _, b := range fixturePEMs(f) {
		f.Add(b, []byte(testPassword))
		if blk, _ := pem.Decode(b); blk != nil && strings.Contains(blk.Type, "PRIVATE KEY") {
			f.Add(blk.Bytes, []byte(testPassword))
			f.Add(blk.Bytes, []byte("wrong"))
		}
	}
	f.Fuzz(func(t *testing.T, data, password []byte) {
		inputs := [][]byte{data}
		for _, label := range fuzzKeyLabels {
			inputs = append(inputs, pem.EncodeToMemory(&pem.Block{Type: label, Bytes: data}))
		}
		for _, in := range inputs {
			k, err := ParsePrivateKey(in, password)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if err == nil && k == nil {
				t.Fatal("nil key without error")
			}
		}
	})
}

// FuzzParseChain checks that no input panics, that every error wraps
// ErrInvalid, and that Pool and ClientCertificate hold up as well.
func FuzzParseChain(f *testing.F) {
	for _, b := range fixturePEMs(f) {
		f.Add(b)
		if blk, _ := pem.Decode(b); blk != nil && blk.Type == "CERTIFICATE" {
			f.Add(blk.Bytes)
		}
	}
	keyPEM, err := os.ReadFile(filepath.Join("testdata", "rsa-key-pkcs8.pem"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs := [][]byte{data}
		for _, label := range fuzzCertLabels {
			inputs = append(inputs, pem.EncodeToMemory(&pem.Block{Type: label, Bytes: data}))
		}
		for _, in := range inputs {
			certs, err := ParseChain(in)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if err == nil && len(certs) == 0 {
				t.Fatal("no certificates without error")
			}
			if _, err := Pool(in); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Pool error does not wrap ErrInvalid: %v", err)
			}
			if _, err := ClientCertificate(in, keyPEM, nil); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("ClientCertificate error does not wrap ErrInvalid: %v", err)
			}
		}
	})
}
