package kafkaauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	probSASL         = "SASL authentication failed: "
	probAuthorize    = "Cluster failed to authorize Sluice: "
	probServerAuth   = "Server failed to authenticate Sluice: "
	probClientAuth   = "Sluice failed to authenticate server: "
	probInvalidCert  = "Provided certificate or private key is invalid: "
	probConnection   = "Connection error. Please check your event source connection configuration. ("
	probQuickTimeout = 3 * time.Second
)

func probHasPrefix(t *testing.T, what, got, prefix string) {
	t.Helper()
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("%s: Problem = %q, want prefix %q", what, got, prefix)
	}
	t.Logf("%s: %s", what, got)
}

func TestProblemClassifiesErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092},
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	reset := func(port int) error {
		return &net.OpError{Op: "read", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port},
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092},
			Err:    &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
	}
	alert := func(s string) error { return &net.OpError{Op: "remote error", Err: probAlert(s)} }

	for _, tc := range []struct {
		name   string
		err    error
		prefix string
	}{
		{"sasl failed (Kafka's answer)", fmt.Errorf("%w: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", kerr.SaslAuthenticationFailed), probSASL},
		{"sasl state", kerr.IllegalSaslState, probSASL},
		{"sasl mechanism", kerr.UnsupportedSaslMechanism, probSASL},
		{"topic acl", kerr.TopicAuthorizationFailed, probAuthorize},
		{"group acl", &kgo.ErrGroupSession{Err: kerr.GroupAuthorizationFailed}, probAuthorize},
		{"cluster acl", kerr.ClusterAuthorizationFailed, probAuthorize},
		{"unknown CA", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, probClientAuth},
		{"host name", fmt.Errorf("unable to dial: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "kafka.example"}), probClientAuth},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, probClientAuth},
		{"cert required", alert("tls: certificate required"), probServerAuth},
		{"bad cert", fmt.Errorf("unable to join group session: %w", alert("tls: bad certificate")), probServerAuth},
		{"unknown CA alert", alert("tls: unknown certificate authority"), probServerAuth},
		{"invalid cert", fmt.Errorf("client certificate: %w: x509: malformed certificate", ErrInvalidCertificate), probInvalidCert},
		{"invalid cert bare", ErrInvalidCertificate, probInvalidCert},
		{"refused", fmt.Errorf("unable to dial: %w", refused), probConnection},
		{"dns", &net.DNSError{Err: "no such host", Name: "kafka.invalid", IsNotFound: true}, probConnection},
		{"timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, probConnection},
		{"reset", reset(50000), probConnection},
		{"eof", io.EOF, probConnection},
		{"not tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, probConnection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probHasPrefix(t, tc.name, Problem(tc.err), tc.prefix)
		})
	}

	if got := Problem(errors.New("something else")); got != "something else" {
		t.Errorf("Problem(other) = %q", got)
	}
	if got := Problem(nil); got != "" {
		t.Errorf("Problem(nil) = %q", got)
	}
	// The sentinel's words are not repeated in the detail.
	if got := Problem(fmt.Errorf("client certificate: %w: pem has no key", ErrInvalidCertificate)); strings.Count(got, "nvalid") != 1 || !strings.Contains(got, "(client certificate: pem has no key)") {
		t.Errorf("Problem(invalid cert) = %q", got)
	}
	// A reset from another local port is the same problem.
	if a, b := Problem(reset(50000)), Problem(reset(50001)); a != b || strings.Contains(a, "50000") {
		t.Errorf("resets from different local ports differ: %q vs %q", a, b)
	}
	ipv6 := &net.OpError{Op: "read", Net: "tcp", Source: &net.TCPAddr{IP: net.IPv6loopback, Port: 41234},
		Addr: &net.TCPAddr{IP: net.IPv6loopback, Port: 9092}, Err: syscall.ECONNRESET}
	if got := Problem(ipv6); strings.Contains(got, "41234") || !strings.Contains(got, "[::1]:9092") {
		t.Errorf("Problem(ipv6 reset) = %q", got)
	}
	// A password never appears: the classifier adds no configuration.
	if got := Problem(fmt.Errorf("%w", kerr.SaslAuthenticationFailed)); strings.Contains(got, aclPass) {
		t.Errorf("Problem leaks: %q", got)
	}
	// With a client certificate offered, an early close is the broker
	// refusing it; without one it is a connection problem.
	if got := ProblemMTLS(fmt.Errorf("unable to join group session: %w", io.EOF)); !strings.HasPrefix(got, probServerAuth) {
		t.Errorf("ProblemMTLS(EOF) = %q", got)
	}
	if got := ProblemMTLS(fmt.Errorf("unable to dial: %w", refused)); !strings.HasPrefix(got, probConnection) {
		t.Errorf("ProblemMTLS(refused) = %q", got)
	}
}

// probAlert stands in for crypto/tls's unexported alert type, which it wraps
// in a *net.OpError with Op "remote error" when the peer sends an alert.
type probAlert string

func (a probAlert) Error() string { return string(a) }

// probTLSCluster starts kfake behind TLS. Without SASL, kfake sees every
// TLS client as the anonymous principal (User:ANONYMOUS); it does not map a
// client certificate to a principal as Kafka's mTLS listener does
// (User:CN=...), so these tests leave ACLs off.
func probTLSCluster(t *testing.T, ca *connCA, clientCAs *x509.CertPool) *kfake.Cluster {
	t.Helper()
	cfg := connServerTLS(t, ca, clientCAs)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(cfg), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// probRequest sends one Metadata request with a bounded context and returns
// its error; kgo retries retriable failures until the context ends.
func probRequest(t *testing.T, seeds []string, opts ...kgo.Opt) error {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.DialTimeout(time.Second),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), probQuickTimeout)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err == nil {
		t.Fatal("request succeeded, want a failure")
	}
	return err
}

func TestProblemTLS(t *testing.T) {
	ca := connNewCA(t, "sluice-test-ca")
	other := connNewCA(t, "someone-else")

	t.Run("trusted server works", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, nil)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), probQuickTimeout)
		defer cancel()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
			t.Fatalf("TLS with the right CA: %v", err)
		}
	})
	t.Run("untrusted server certificate", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, nil)
		err := probRequest(t, c.ListenAddrs(), kgo.DialTLSConfig(&tls.Config{RootCAs: other.pool}))
		probHasPrefix(t, "untrusted server", Problem(err), probClientAuth)
		if again := probRequest(t, c.ListenAddrs(), kgo.DialTLSConfig(&tls.Config{RootCAs: other.pool})); Problem(again) != Problem(err) {
			t.Fatalf("retry gave a different problem: %q vs %q", Problem(again), Problem(err))
		}
	})
	t.Run("wrong host name", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, nil)
		err := probRequest(t, c.ListenAddrs(), kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool, ServerName: "kafka.example"}))
		probHasPrefix(t, "host name", Problem(err), probClientAuth)
		if !strings.Contains(Problem(err), "host name") {
			t.Fatalf("no host name hint: %q", Problem(err))
		}
	})

	clientCert := ca.issue(t, "sluice", true)
	strangerCert := other.issue(t, "stranger", true)
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		max   uint16
	}{
		{"mTLS without a client certificate (TLS 1.3)", nil, tls.VersionTLS13},
		{"mTLS with an untrusted client certificate (TLS 1.3)", []tls.Certificate{strangerCert}, tls.VersionTLS13},
		{"mTLS without a client certificate (TLS 1.2)", nil, tls.VersionTLS12},
		{"mTLS with an untrusted client certificate (TLS 1.2)", []tls.Certificate{strangerCert}, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := probTLSCluster(t, ca, ca.pool)
			cfg := &tls.Config{RootCAs: ca.pool, MaxVersion: tc.max}
			if tc.certs != nil {
				// Go's client sends a certificate only when the
				// server lists its issuer as acceptable, so an
				// untrusted one must be forced onto the wire.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc.certs[0], nil }
			}
			err := probRequest(t, c.ListenAddrs(), kgo.DialTLSConfig(cfg))
			probHasPrefix(t, tc.name, Problem(err), probServerAuth)
			probHasPrefix(t, tc.name+" (ProblemMTLS)", ProblemMTLS(err), probServerAuth)
		})
	}
	t.Run("mTLS with a trusted client certificate works", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, ca.pool)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
			kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{clientCert}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), probQuickTimeout)
		defer cancel()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
			t.Fatalf("mTLS with a trusted certificate: %v", err)
		}
	})
}

// TestProblemEarlyCloseAfterHandshake: a broker that rejects the client
// certificate after the TLS handshake just closes the connection. Problem
// cannot know a certificate was offered; ProblemMTLS can.
func TestProblemEarlyCloseAfterHandshake(t *testing.T) {
	ca := connNewCA(t, "sluice-test-ca")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "broker", false)},
		ClientAuth:   tls.RequestClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()
	cert := ca.issue(t, "sluice", true)
	err = probRequest(t, []string{ln.Addr().String()}, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}}))
	probHasPrefix(t, "plain Problem", Problem(err), probConnection)
	probHasPrefix(t, "ProblemMTLS", ProblemMTLS(err), probServerAuth)
}

func TestProblemSASL(t *testing.T) {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", aclAdmin, aclAdminPass),
		kfake.User("SCRAM-SHA-256", "bob", aclPass),
		kfake.User("PLAIN", "carol", aclPass),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	// Kafka answers a bad password with SASL_AUTHENTICATION_FAILED and a
	// message; kfake closes the connection instead. This control makes
	// kfake answer as Kafka does for the user "kafkalike", so the path a
	// real cluster takes runs end to end through kgo.
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		if !bytes.Contains(r.SASLAuthBytes, []byte("n=kafkalike,")) {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256")
		return resp, nil, true
	})

	scramAs := func(user, pass string) kgo.Opt {
		return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
	}

	t.Run("wrong password, Kafka's answer", func(t *testing.T) {
		t.Parallel()
		err := probRequest(t, c.ListenAddrs(), scramAs("kafkalike", "nope"))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("err = %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		probHasPrefix(t, "kafka-like rejection", Problem(err), probSASL)
	})
	t.Run("wrong password, Kafka's answer, preflight", func(t *testing.T) {
		t.Parallel()
		// The group consumer never reports this through PollFetches
		// (its metadata request fails and is retried forever); the
		// preflight's requests return it at once.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), scramAs("kafkalike", "nope"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), probQuickTimeout)
		defer cancel()
		err = CheckAccess(ctx, cl, "User:kafkalike", []string{"t"}, "g")
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("CheckAccess = %v, want SASL_AUTHENTICATION_FAILED", err)
		}
		probHasPrefix(t, "preflight, kafka-like", Problem(err), probSASL)
	})
	t.Run("wrong password, group consumer, Kafka's answer", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		pollErr := probWatchConsumer(t, c.ListenAddrs(), &watch, scramAs("kafkalike", "nope"))
		if !errors.Is(watch.Err(), kerr.SaslAuthenticationFailed) {
			t.Fatalf("watch.Err() = %v, want SASL_AUTHENTICATION_FAILED", watch.Err())
		}
		probHasPrefix(t, "consumer, kafka-like", watch.Problem(pollErr), probSASL)
	})
	t.Run("wrong password, kfake closes the connection", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		err := probRequest(t, c.ListenAddrs(), scramAs("bob", "wrong-password"), kgo.WithHooks(&watch))
		// Alone, the EOF is only a connection error; the hook knows
		// the connection died during SASL.
		probHasPrefix(t, "bare", Problem(err), probConnection)
		got := watch.Problem(err)
		probHasPrefix(t, "with ConnWatch", got, probSASL)
		if strings.Contains(got, "wrong-password") {
			t.Fatalf("problem leaks the password: %q", got)
		}
		if !errors.Is(watch.Err(), kerr.SaslAuthenticationFailed) {
			t.Fatalf("watch.Err() = %v", watch.Err())
		}
	})
	t.Run("wrong password, group consumer, kfake closes the connection", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		pollErr := probWatchConsumer(t, c.ListenAddrs(), &watch, scramAs("bob", "wrong-password"))
		if pollErr != nil {
			t.Logf("PollFetches error: %v", pollErr)
		}
		probHasPrefix(t, "consumer, kfake", watch.Problem(pollErr), probSASL)
	})
	t.Run("mechanism the user does not have", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		// carol is a PLAIN user; SCRAM knows no such user.
		err := probRequest(t, c.ListenAddrs(), scramAs("carol", aclPass), kgo.WithHooks(&watch))
		probHasPrefix(t, "wrong mechanism", watch.Problem(err), probSASL)
	})
	t.Run("wrong PLAIN password", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		err := probRequest(t, c.ListenAddrs(), kgo.SASL(plain.Auth{User: "carol", Pass: "nope"}.AsMechanism()), kgo.WithHooks(&watch))
		probHasPrefix(t, "plain", watch.Problem(err), probSASL)
	})
	t.Run("right password", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), scramAs("bob", aclPass), kgo.WithHooks(&watch))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), probQuickTimeout)
		defer cancel()
		if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
			t.Fatalf("right password: %v", err)
		}
		if watch.Err() != nil || watch.Problem(nil) != "" {
			t.Fatalf("watch.Err() = %v after a good login", watch.Err())
		}
	})
}

// probWatchConsumer runs a group consumer with the watch installed until the
// watch has seen a failure (bounded), and returns the last error PollFetches
// reported, if any.
func probWatchConsumer(t *testing.T, seeds []string, watch *ConnWatch, opts ...kgo.Opt) error {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(seeds...), kgo.WithHooks(watch),
		kgo.ConsumeTopics("t"), kgo.ConsumerGroup("g"),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var pollErr error
	for ctx.Err() == nil && watch.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		cl.PollFetches(pctx).EachError(func(_ string, _ int32, e error) {
			if !errors.Is(e, context.DeadlineExceeded) {
				pollErr = e
			}
		})
		pcancel()
	}
	if watch.Err() == nil {
		t.Fatalf("the watch saw no failure (PollFetches: %v)", pollErr)
	}
	return pollErr
}

// TestProblemConnWatchTLS: the group consumer reports TLS failures nowhere; the
// watch sees them at the dial (TLS 1.2, untrusted server) or at the first
// read (TLS 1.3 client certificate refused).
func TestProblemConnWatchTLS(t *testing.T) {
	ca := connNewCA(t, "sluice-test-ca")
	other := connNewCA(t, "someone-else")
	t.Run("untrusted server", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, nil)
		var watch ConnWatch
		pollErr := probWatchConsumer(t, c.ListenAddrs(), &watch, kgo.DialTLSConfig(&tls.Config{RootCAs: other.pool}))
		probHasPrefix(t, "consumer, untrusted server", watch.Problem(pollErr), probClientAuth)
	})
	t.Run("no client certificate, TLS 1.3", func(t *testing.T) {
		t.Parallel()
		c := probTLSCluster(t, ca, ca.pool)
		var watch ConnWatch
		pollErr := probWatchConsumer(t, c.ListenAddrs(), &watch, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool}))
		got := watch.Problem(pollErr)
		probHasPrefix(t, "consumer, no client certificate", got, probServerAuth)
		if !strings.Contains(got, "broker 127.0.0.1:") {
			t.Fatalf("problem does not name the broker: %q", got)
		}
	})
	t.Run("refused dial", func(t *testing.T) {
		t.Parallel()
		var watch ConnWatch
		pollErr := probWatchConsumer(t, []string{probClosedAddr(t)}, &watch)
		probHasPrefix(t, "consumer, refused", watch.Problem(pollErr), probConnection)
	})
}

// probClosedAddr returns an address nothing listens on: a port that was
// just free.
func probClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestProblemConnectionRefused(t *testing.T) {
	addr := probClosedAddr(t)
	err := probRequest(t, []string{addr})
	got := Problem(err)
	probHasPrefix(t, "closed port", got, probConnection)
	if !strings.Contains(got, addr) {
		t.Fatalf("problem does not name the broker %s: %q", addr, got)
	}
	if again := Problem(probRequest(t, []string{addr})); again != got {
		t.Fatalf("retry gave a different problem: %q vs %q", again, got)
	}
}
