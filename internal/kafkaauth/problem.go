package kafkaauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrInvalidCertificate is wrapped by every error about a client certificate
// or private key that cannot be used (bad PEM, unsupported key encryption such
// as PBES1, a key that does not match the certificate). It lives here rather
// than in the certs package so that Problem can classify such errors without
// importing it: the certs package wraps this sentinel.
var ErrInvalidCertificate = errors.New("provided certificate or private key is invalid")

// The reference platform's phrases (AWS Lambda's Kafka event source
// mapping), with "Lambda" replaced by "Sluice" because Sluice speaks of
// itself. Users search for these exact words, so keep them verbatim.
const (
	phraseSASL          = "SASL authentication failed"
	phraseAuthorize     = "Cluster failed to authorize Sluice"
	phraseServerAuth    = "Server failed to authenticate Sluice"
	phraseClientAuth    = "Sluice failed to authenticate server"
	phraseInvalidCert   = "Provided certificate or private key is invalid"
	phraseConnection    = "Connection error. Please check your event source connection configuration."
	requiredPermissions = "Sluice needs DescribeConfigs on the Cluster, Describe and Read on the consumer group, and Describe and Read on each topic"
)

// Problem phrases an error from kgo, kadm, net or crypto/tls as one line for
// a pipe's LastProcessingResult, without the "PROBLEM: " prefix (the caller
// adds it), using the reference platform's messages so that users find the
// same documentation. The same cause against the same broker always yields
// the same string (ephemeral local ports are removed), so a caller can log
// and store the result only when it changes.
//
// A connection that is reset or closed right after the TLS handshake is
// reported as a connection error here, because nothing in the error says
// whether a client certificate was offered; callers that use mTLS call
// ProblemMTLS instead.
func Problem(err error) string {
	return problem(err, false)
}

// ProblemMTLS is Problem for a client that presented a client certificate:
// Kafka brokers that reject a client certificate often just close the
// connection after the handshake (notably with TLS 1.3, where the client
// finishes its side of the handshake before the server checks the
// certificate), so a reset or EOF on a fresh connection is reported as the
// server failing to authenticate Sluice rather than as a connection error.
func ProblemMTLS(err error) string {
	return problem(err, true)
}

func problem(err error, clientCert bool) string {
	if err == nil {
		return ""
	}
	msg := stableMessage(err)

	if errors.Is(err, ErrInvalidCertificate) {
		detail := strings.TrimPrefix(strings.Replace(msg, ErrInvalidCertificate.Error()+": ", "", 1), ErrInvalidCertificate.Error())
		detail = strings.TrimSuffix(strings.TrimSpace(detail), ":")
		if detail != "" {
			detail = " (" + detail + ")"
		}
		return phraseInvalidCert + ": check the client certificate and private key secret: both must be PEM-encoded, the key must match the certificate, and an encrypted key must use PKCS#8 with PBES2 (PBES1 is not supported)" + detail
	}

	if ae, ok := errors.AsType[*AccessError](err); ok {
		return stableText(ae.Error())
	}

	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return phraseSASL + ": the brokers rejected the credentials; check the user name and password in the SASL secret (and, for IAM, that the role is allowed kafka-cluster:Connect) (" + msg + ")"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return phraseSASL + ": the cluster does not offer the configured SASL mechanism; check which mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM) the cluster's listener enables and set the pipe's authentication type to one of them (" + msg + ")"
	case errors.Is(err, kerr.IllegalSaslState):
		return phraseSASL + ": the brokers rejected the SASL exchange; check that the listener the bootstrap servers point at uses SASL with the configured mechanism (" + msg + ")"
	}

	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return phraseAuthorize + ": the user is missing the Kafka ACL permission Describe or Read on a topic of the pipe (" + msg + "); " + requiredPermissions
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return phraseAuthorize + ": the user is missing the Kafka ACL permission Describe or Read on the pipe's consumer group (" + msg + "); " + requiredPermissions
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return phraseAuthorize + ": the user is missing the Kafka ACL permission DescribeConfigs on the Cluster (" + msg + "); " + requiredPermissions
	}

	// Our side rejected the broker's certificate. These checks come before
	// the net.OpError check below because crypto/tls wraps some of its
	// errors in *net.OpError.
	if has[x509.HostnameError](err) || has[*x509.HostnameError](err) {
		return phraseClientAuth + ": the broker's certificate is not valid for the host name Sluice connected to; check that the bootstrap servers use host names listed in the broker certificate (" + msg + ")"
	}
	if has[x509.UnknownAuthorityError](err) || has[*x509.UnknownAuthorityError](err) {
		return phraseClientAuth + ": the broker's certificate is not signed by a trusted certificate authority; set the pipe's CA certificate secret (server root CA) to the CA that signed the brokers' certificates (" + msg + ")"
	}
	if has[x509.CertificateInvalidError](err) || has[*x509.CertificateInvalidError](err) {
		return phraseClientAuth + ": the broker's certificate is not valid (expired, not yet valid, or not usable for server authentication); renew the broker certificate or check the CA certificate secret (" + msg + ")"
	}
	if has[*tls.CertificateVerificationError](err) {
		return phraseClientAuth + ": the broker's certificate could not be verified; set the pipe's CA certificate secret to the CA that signed the brokers' certificates and check the bootstrap host names (" + msg + ")"
	}

	// The broker rejected our certificate (or the lack of one): it sent a
	// certificate alert, which crypto/tls reports as a *net.OpError whose Op
	// is "remote error".
	if isRemoteAlert(err, "tls: handshake failure") {
		// Go's TLS 1.2 server answers a missing client certificate with
		// this alert; it can also mean no cipher suite or version in
		// common, which modern clients and brokers rarely lack.
		return phraseServerAuth + ": the brokers ended the TLS handshake, most likely because they require a client certificate (mTLS) that Sluice did not present or that they do not trust; set the pipe's client certificate and key secret, or check the brokers' TLS versions and cipher suites (" + msg + ")"
	}
	if isRemoteCertAlert(err) {
		return phraseServerAuth + ": the brokers did not accept Sluice's client certificate; for mTLS set the pipe's client certificate and key secret, and make sure the brokers trust the CA that signed it (" + msg + ")"
	}
	if has[tls.RecordHeaderError](err) {
		return phraseConnection + " (the broker did not answer with TLS; check whether the listener expects TLS: " + msg + ")"
	}
	if clientCert && isEarlyClose(err) {
		return phraseServerAuth + ": the brokers closed the connection right after the TLS handshake, which is how they reject a client certificate they do not trust; check the pipe's client certificate and key secret, and that the brokers trust the CA that signed it (" + msg + ")"
	}

	if isNetwork(err) {
		return phraseConnection + " (" + msg + ")"
	}
	return msg
}

// certAlerts are the TLS alerts a server sends when it does not accept the
// client's certificate: Go's and Java's (Kafka's) TLS stacks use these for a
// missing client certificate (certificate required in TLS 1.3, bad
// certificate in Java's TLS 1.2) and for an untrusted one. Go's TLS 1.2
// server sends "handshake failure" instead, handled on its own.
var certAlerts = []string{
	"tls: certificate required",
	"tls: bad certificate",
	"tls: unknown certificate authority",
	"tls: unknown certificate",
	"tls: unsupported certificate",
	"tls: revoked certificate",
	"tls: expired certificate",
	"tls: access denied",
}

func isRemoteCertAlert(err error) bool {
	for _, a := range certAlerts {
		if isRemoteAlert(err, a) {
			return true
		}
	}
	return false
}

// isRemoteAlert reports whether err holds the TLS alert the peer sent:
// crypto/tls wraps its unexported alert type in a *net.OpError whose Op is
// "remote error".
func isRemoteAlert(err error, alert string) bool {
	oe, ok := errors.AsType[*net.OpError](err)
	for ok {
		if oe.Op == "remote error" && oe.Err != nil && oe.Err.Error() == alert {
			return true
		}
		oe, ok = errors.AsType[*net.OpError](oe.Err)
	}
	return false
}

// isEarlyClose reports a connection that the broker closed or reset before
// answering the first request.
func isEarlyClose(err error) bool {
	return has[*kgo.ErrFirstReadEOF](err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isNetwork reports errors reaching or talking to a broker: refused dials,
// unknown hosts, timeouts, resets and connections closed before a reply.
func isNetwork(err error) bool {
	return has[*net.OpError](err) || has[*net.DNSError](err) || has[*net.AddrError](err) || has[net.Error](err) ||
		isEarlyClose(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ETIMEDOUT)
}

// has reports whether err's chain holds an error of type T. crypto/x509
// returns some errors as values and callers may wrap pointers, so both
// forms are checked where it matters.
func has[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}

// ConnWatch is a kgo hook (install it with kgo.WithHooks) that remembers why
// connections to the brokers fail before they carry a request, because a
// kgo group consumer never reports such failures through PollFetches: when
// the metadata request itself fails (refused dial, TLS, SASL), kgo retries
// it forever and polls just return nothing. The watch sees:
//
//   - failed dials, TLS handshakes and connection set-up, SASL included
//     (kgo hands HookBrokerConnect the error of the whole set-up, so Kafka's
//     SASL_AUTHENTICATION_FAILED answer arrives there);
//   - which request a connection died on (HookBrokerRead), which explains a
//     bare io.EOF: a broker that rejects SASL credentials by closing the
//     connection, as kfake (Sluice's development Kafka) and brokers on raw
//     SASL do, or one that refuses the client certificate after a TLS 1.3
//     handshake, which shows when the first response (ApiVersions) is read.
//
// A successful response to any other request clears the watch. The zero
// value is ready; it is safe for concurrent use.
type ConnWatch struct {
	// ClientCert says the client presents a TLS client certificate, so
	// an early close reads as the brokers refusing it (see ProblemMTLS).
	ClientCert bool

	mu   sync.Mutex
	err  error
	addr string // the broker err came from
}

var (
	_ kgo.HookBrokerConnect = (*ConnWatch)(nil)
	_ kgo.HookBrokerRead    = (*ConnWatch)(nil)
)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *ConnWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || isShutdown(err) {
		return
	}
	addr := brokerAddr(meta)
	w.mu.Lock()
	defer w.mu.Unlock()
	if isEarlyClose(err) && w.err != nil && w.addr == addr {
		return // OnBrokerRead already said which request the close cut short
	}
	w.err, w.addr = &brokerError{addr: addr, err: err}, addr
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *ConnWatch) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	switch kmsg.Key(key) {
	case kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		if err != nil && isEarlyClose(err) {
			addr := brokerAddr(meta)
			w.set(&saslClosedError{addr: addr, err: err}, addr)
		}
	case kmsg.ApiVersions:
		// The first read on a connection: a TLS 1.3 alert about the
		// client certificate shows here.
		if err != nil && !isShutdown(err) {
			addr := brokerAddr(meta)
			w.set(&brokerError{addr: addr, err: err}, addr)
		}
	default:
		// Any other answer came over an authenticated connection.
		if err == nil {
			w.set(nil, "")
		}
	}
}

func (w *ConnWatch) set(err error, addr string) {
	w.mu.Lock()
	w.err, w.addr = err, addr
	w.mu.Unlock()
}

// Err returns the last connection failure seen since a broker last
// answered a request after authenticating, or nil.
func (w *ConnWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Problem phrases err as Problem (or ProblemMTLS, with ClientCert) does,
// except that when err is nil or only says the connection was lost or timed
// out, the failure the watch saw is phrased instead, since it says why.
func (w *ConnWatch) Problem(err error) string {
	phrase := Problem
	if w.ClientCert {
		phrase = ProblemMTLS
	}
	if we := w.Err(); we != nil && (err == nil || isNetwork(err)) {
		return phrase(we)
	}
	return phrase(err)
}

func brokerAddr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}

// isShutdown reports the errors of a client being closed, which say nothing
// about the brokers.
func isShutdown(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled)
}

// brokerError names the broker a connection failure came from; kgo's TLS
// and read errors do not.
type brokerError struct {
	addr string
	err  error
}

func (e *brokerError) Error() string { return fmt.Sprintf("broker %s: %v", e.addr, e.err) }

func (e *brokerError) Unwrap() error { return e.err }

// saslClosedError is a broker closing the connection during SASL
// authentication, which is how kfake and raw SASL reject credentials. It
// counts as kerr.SaslAuthenticationFailed.
type saslClosedError struct {
	addr string
	err  error
}

func (e *saslClosedError) Error() string {
	return fmt.Sprintf("broker %s closed the connection during SASL authentication (%v)", e.addr, e.err)
}

func (e *saslClosedError) Is(target error) bool { return target == kerr.SaslAuthenticationFailed }

func (e *saslClosedError) Unwrap() error { return e.err }

// ephemeralSource matches the "local->" part of a net.OpError message such as
// "read tcp 127.0.0.1:54321->127.0.0.1:9092: ...". The local port changes
// with every connection, which would make the same failure look new on each
// retry.
var ephemeralSource = regexp.MustCompile(`(?:\[[0-9A-Fa-f:.%a-zA-Z]+\]|[^\s\[\]>]+):\d+->`)

func stableText(s string) string {
	return ephemeralSource.ReplaceAllString(s, "")
}

func stableMessage(err error) string {
	return stableText(err.Error())
}
