// Package authmode names the ways Sluice authenticates to Kafka and picks
// the strongest one a cluster's credentials allow. It has no I/O and no
// Kafka client, so the domain can decide a cluster's mode; package
// kafkaauth turns a mode into franz-go options.
package authmode

import (
	"fmt"
	"strings"
)

// Mode is how Sluice authenticates to (and encrypts its connection with) a
// Kafka cluster.
type Mode string

// The modes Sluice supports. Their string values are what users type.
const (
	// None is plaintext with no authentication: dev brokers and private
	// networks only.
	None Mode = "none"
	// TLS encrypts the connection and verifies the brokers, but does not
	// authenticate the client.
	TLS Mode = "tls"
	// Plain is SASL/PLAIN: the password crosses the wire as is, so it
	// belongs on TLS connections unless the network is trusted.
	Plain Mode = "plain"
	// ScramSHA256 is SASL/SCRAM-SHA-256.
	ScramSHA256 Mode = "scram-sha-256"
	// ScramSHA512 is SASL/SCRAM-SHA-512 (what Amazon MSK offers for SCRAM).
	ScramSHA512 Mode = "scram-sha-512"
	// IAM is Amazon MSK IAM access control, spoken as SASL/OAUTHBEARER with
	// a SigV4-presigned token.
	IAM Mode = "iam"
	// MTLS authenticates the client with a certificate during the TLS
	// handshake.
	MTLS Mode = "mtls"
)

// Modes returns every supported mode, in the order they are documented. It
// returns a new slice each time so callers cannot change the package's view.
func Modes() []Mode {
	return []Mode{None, TLS, Plain, ScramSHA256, ScramSHA512, IAM, MTLS}
}

// Valid reports whether m is one of the supported modes.
func (m Mode) Valid() bool {
	for _, v := range Modes() {
		if m == v {
			return true
		}
	}
	return false
}

// UsesPassword reports whether the mode takes a user name and password.
func (m Mode) UsesPassword() bool {
	return m == Plain || m == ScramSHA256 || m == ScramSHA512
}

// NeedsTLS reports whether the mode cannot work without TLS: tls and mtls by
// definition, and IAM because MSK only offers IAM on its TLS listener (and a
// presigned token on plaintext could be replayed by anyone on the path).
func (m Mode) NeedsTLS() bool {
	return m == TLS || m == MTLS || m == IAM
}

// Credentials says which connection material is available for a cluster,
// without the material itself. Select picks a mode from it.
type Credentials struct {
	// ClientCert: a client certificate (and key) secret is set.
	ClientCert bool
	// Scram256, Scram512, Plain: SASL credentials of that kind are set.
	Scram256, Scram512, Plain bool
	// IAM: the cluster is Amazon MSK with IAM access control on.
	IAM bool
	// TLS: a CA was given or the cluster only listens on TLS.
	TLS bool
}

// Select picks the strongest mode the credentials allow, in this order:
//
//  1. mtls, when a client certificate is set: the key never leaves the
//     client and the handshake authenticates both sides;
//  2. scram-sha-512, then scram-sha-256: challenge-response, the password
//     never crosses the wire;
//  3. plain: a password, sent as is (ranked after SCRAM for that reason, and
//     before IAM because a user who set a password meant to use it);
//  4. iam, when the cluster is MSK with IAM on and no other credential is
//     set;
//  5. tls, when only a CA is given or the cluster is TLS-only: encrypted,
//     but the client is anonymous;
//  6. none.
//
// Weaker modes are never a fallback: the chosen mode either connects or
// fails with its own error. Explain says why a mode was chosen.
//
// Select picks the mechanism only. Whether a SASL mode runs over TLS is
// Config.TLS, which the caller sets from Credentials.TLS (or because the
// cluster is MSK, whose SASL listeners are all TLS).
func Select(c Credentials) Mode {
	switch {
	case c.ClientCert:
		return MTLS
	case c.Scram512:
		return ScramSHA512
	case c.Scram256:
		return ScramSHA256
	case c.Plain:
		return Plain
	case c.IAM:
		return IAM
	case c.TLS:
		return TLS
	}
	return None
}

// Explain says in one sentence which mode Select chooses for c and why,
// naming the weaker credentials it passed over so that a user is not
// surprised by which secret is in use.
func Explain(c Credentials) string {
	m := Select(c)
	var reason string
	switch m {
	case MTLS:
		reason = "a client certificate secret is set"
	case ScramSHA512:
		reason = "a SCRAM-SHA-512 secret is set"
	case ScramSHA256:
		reason = "a SCRAM-SHA-256 secret is set"
	case Plain:
		reason = "a SASL/PLAIN secret is set"
	case IAM:
		reason = "the cluster is MSK with IAM access control on"
	case TLS:
		return "tls: a CA is set or the cluster only accepts TLS, and no client credential is set, so the connection is encrypted but the client is anonymous"
	default:
		return "none: no client certificate, SASL secret, IAM or CA is set, so the connection is plaintext and unauthenticated"
	}

	var skipped []string
	add := func(set bool, name string, mode Mode) {
		if set && mode != m {
			skipped = append(skipped, name)
		}
	}
	add(c.Scram512, "SCRAM-SHA-512", ScramSHA512)
	add(c.Scram256, "SCRAM-SHA-256", ScramSHA256)
	add(c.Plain, "SASL/PLAIN", Plain)
	add(c.IAM, "IAM", IAM)
	if len(skipped) == 0 {
		return fmt.Sprintf("%s: %s, and the strongest credential wins", m, reason)
	}
	return fmt.Sprintf("%s: %s, and the strongest credential wins over %s", m, reason, joinAnd(skipped))
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
