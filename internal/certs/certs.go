// Package certs loads TLS client credentials and CA certificates from the
// PEM text users put in secrets, in the shape of AWS Lambda's Kafka
// CLIENT_CERTIFICATE_TLS_AUTH secret:
//
//	certificate         PEM chain: client certificate first, then
//	                    intermediates, optionally the root last
//	privateKey          PEM PKCS#8 key, plain ("PRIVATE KEY") or encrypted
//	                    ("ENCRYPTED PRIVATE KEY")
//	privateKeyPassword  optional, for the encrypted form
//
// AWS accepts only PBES1-encrypted keys; this package accepts PBES1 and
// PBES2 (see ParsePrivateKey), so a secret written for Lambda works here
// unchanged.
//
// Every error about unusable certificate or key material wraps ErrInvalid.
// Error messages name formats, algorithms, positions and certificate
// subjects, never key bytes or the password, so they can be logged.
package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about unusable certificate or key
// material. Callers show it to users as "PROBLEM: Provided certificate or
// private key is invalid" and log the full error for the details.
var ErrInvalid = errors.New("invalid certificate or private key")

// ErrPasswordRequired and ErrWrongPassword wrap ErrInvalid and single out the
// two password problems, which a caller may want to report more precisely.
var (
	ErrPasswordRequired = fmt.Errorf("%w: private key is encrypted and privateKeyPassword is required", ErrInvalid)
	ErrWrongPassword    = fmt.Errorf("%w: privateKeyPassword is wrong or the private key is corrupt", ErrInvalid)
)

// ParseChain parses a PEM certificate chain and returns its certificates in
// the order given, which for a client chain should be leaf first. The PEM
// must hold at least one block and only CERTIFICATE blocks; whitespace,
// CRLF line endings and the flattened one-line form shown in the AWS
// documentation are accepted, other text is not.
func ParseChain(pemBytes []byte) ([]*x509.Certificate, error) {
	return parseCertificates("certificate", pemBytes)
}

// Pool returns a certificate pool holding every CA certificate in caPEM,
// which is parsed like ParseChain: one or more CERTIFICATE blocks.
func Pool(caPEM []byte) (*x509.CertPool, error) {
	certs, err := parseCertificates("CA certificate", caPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func parseCertificates(what string, pemBytes []byte) ([]*x509.Certificate, error) {
	blocks, err := decodePEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: %s: PEM block %d is %s; only CERTIFICATE blocks are allowed", ErrInvalid, what, i+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: PEM block %d: %w", ErrInvalid, what, i+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// ClientCertificate builds a TLS client certificate from a PEM chain (leaf
// first; see ParseChain) and a PEM private key with its optional password
// (see ParsePrivateKey). It checks that the key belongs to the leaf and sets
// Leaf. The whole chain is sent during the handshake as given; a root at the
// end is redundant but harmless.
func ClientCertificate(chainPEM, keyPEM, password []byte) (tls.Certificate, error) {
	chain, err := ParseChain(chainPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ParsePrivateKey(keyPEM, password)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !publicKeyEqual(key.Public(), chain[0].PublicKey) {
		// A common mistake is a chain in the wrong order; say so when the
		// key belongs to a later certificate.
		for i, c := range chain[1:] {
			if publicKeyEqual(key.Public(), c.PublicKey) {
				return tls.Certificate{}, fmt.Errorf("%w: the private key belongs to certificate %d (%s), "+
					"but the client certificate must come first in the chain", ErrInvalid, i+2, c.Subject)
			}
		}
		return tls.Certificate{}, fmt.Errorf("%w: the private key does not match the client certificate (%s), "+
			"the first certificate in the chain", ErrInvalid, chain[0].Subject)
	}
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return tls.Certificate{Certificate: raw, PrivateKey: key, Leaf: chain[0]}, nil
}

// publicKeyEqual reports whether a and b are the same public key. All
// public key types of the standard library implement Equal.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
