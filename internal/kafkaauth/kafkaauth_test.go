package kafkaauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Mode
	}{
		{"none", None},
		{"tls", TLS},
		{"plain", Plain},
		{"scram-sha-256", ScramSHA256},
		{"scram-sha-512", ScramSHA512},
		{"iam", IAM},
		{"mtls", MTLS},
		{"  SCRAM-SHA-512 ", ScramSHA512},
		{"MTLS", MTLS},
	} {
		got, err := ParseMode(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "scram", "sasl_ssl", "ssl", "scram-sha-1"} {
		_, err := ParseMode(in)
		if err == nil {
			t.Errorf("ParseMode(%q) succeeded, want an error", in)
			continue
		}
		for _, m := range Modes() {
			if !strings.Contains(err.Error(), string(m)) {
				t.Errorf("ParseMode(%q) error %q does not list %q", in, err, m)
			}
		}
	}
}

// connFields returns the fields named by the *FieldErrors joined in err.
func connFields(err error) []string {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var fields []string
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		} else {
			fields = append(fields, "?"+e.Error())
		}
	}
	return fields
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cert := &tls.Certificate{Certificate: [][]byte{{1}}, PrivateKey: &ecdsa.PrivateKey{}}
	pool := x509.NewCertPool()
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // fields, in order
	}{
		{"none", Config{Mode: None}, nil},
		{"tls", Config{Mode: TLS, TLS: true, RootCAs: pool}, nil},
		{"tls insecure", Config{Mode: TLS, TLS: true, InsecureSkipVerify: true}, nil},
		{"plain over plaintext", Config{Mode: Plain, User: "u", Password: "p"}, nil},
		{"scram over tls", Config{Mode: ScramSHA512, TLS: true, User: "u", Password: "p"}, nil},
		{"scram with client cert over tls", Config{Mode: ScramSHA256, TLS: true, User: "u", Password: "p", ClientCert: cert}, nil},
		{"iam", Config{Mode: IAM, TLS: true}, nil},
		{"mtls", Config{Mode: MTLS, TLS: true, ClientCert: cert, ServerName: "b"}, nil},

		{"empty mode", Config{}, []string{"mode"}},
		{"unknown mode", Config{Mode: "kerberos"}, []string{"mode"}},
		{"tls without tls", Config{Mode: TLS}, []string{"tls"}},
		{"iam without tls", Config{Mode: IAM}, []string{"tls"}},
		{"mtls without anything", Config{Mode: MTLS}, []string{"tls", "client-cert"}},
		{"mtls without cert", Config{Mode: MTLS, TLS: true}, []string{"client-cert"}},
		{"mtls cert without key", Config{Mode: MTLS, TLS: true, ClientCert: &tls.Certificate{Certificate: [][]byte{{1}}}}, []string{"client-cert"}},
		{"mtls empty cert", Config{Mode: MTLS, TLS: true, ClientCert: &tls.Certificate{}}, []string{"client-cert"}},
		{"none with tls", Config{Mode: None, TLS: true}, []string{"tls"}},
		{"none with user", Config{Mode: None, User: "u", Password: "p"}, []string{"user", "password"}},
		{"none with client cert", Config{Mode: None, ClientCert: cert}, []string{"client-cert"}},
		{"tls with password", Config{Mode: TLS, TLS: true, Password: "p"}, []string{"password"}},
		{"iam with user", Config{Mode: IAM, TLS: true, User: "u"}, []string{"user"}},
		{"scram without user", Config{Mode: ScramSHA256, Password: "p"}, []string{"user"}},
		{"scram without password", Config{Mode: ScramSHA512, User: "u"}, []string{"password"}},
		{"plain without both", Config{Mode: Plain}, []string{"user", "password"}},
		{"ca without tls", Config{Mode: Plain, User: "u", Password: "p", RootCAs: pool}, []string{"ca"}},
		{"insecure without tls", Config{Mode: Plain, User: "u", Password: "p", InsecureSkipVerify: true}, []string{"insecure-skip-verify"}},
		{"server name without tls", Config{Mode: ScramSHA256, User: "u", Password: "p", ServerName: "x"}, []string{"server-name"}},
		{"client cert without tls", Config{Mode: Plain, User: "u", Password: "p", ClientCert: cert}, []string{"client-cert"}},
	} {
		err := tc.cfg.Validate()
		got := connFields(err)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Validate() fields = %v, want %v (err: %v)", tc.name, got, tc.want, err)
		}
		// Opts must refuse exactly what Validate refuses (IAM aside,
		// whose region Opts resolves).
		if err != nil && tc.cfg.Mode != IAM {
			if _, oerr := tc.cfg.Opts(t.Context()); oerr == nil {
				t.Errorf("%s: Opts accepted a config Validate refuses", tc.name)
			}
		}
	}

	err := Config{Mode: ScramSHA512}.Validate()
	if !strings.Contains(err.Error(), "user: SCRAM needs a user name: set --user") {
		t.Errorf("SCRAM without user: error %q does not name the field and the flag", err)
	}
}

func TestConfigRedaction(t *testing.T) {
	t.Parallel()
	ca := connNewCA(t, "redaction CA")
	cert := ca.issue(t, "client", true)
	const secret = "hunter2-Sup3rSecret"
	cfg := Config{
		Mode:       ScramSHA512,
		TLS:        true,
		User:       "alice",
		Password:   secret,
		ClientCert: &cert,
		RootCAs:    ca.pool,
		Region:     "us-east-1",
	}
	keyD := cert.PrivateKey.(*ecdsa.PrivateKey).D.String()
	keyBytes, err := cert.PrivateKey.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	keyHex := fmt.Sprintf("%x", keyBytes)

	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("connecting", "auth", cfg)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("connecting", "auth", cfg, "ptr", &cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":   cfg.String(),
		"GoString": cfg.GoString(),
		"slog":     logBuf.String(),
		"json":     string(js),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X"} {
		outputs[verb] = fmt.Sprintf(verb, cfg)
		outputs["*"+verb] = fmt.Sprintf(verb, &cfg)
		outputs["[]"+verb] = fmt.Sprintf(verb, []Config{cfg})
	}
	for name, out := range outputs {
		for _, leak := range []string{secret, keyD, keyHex} {
			if strings.Contains(out, leak) {
				t.Errorf("%s leaks a secret: %s", name, out)
			}
		}
	}
	for _, name := range []string{"String", "%v", "json", "slog"} {
		out := outputs[name]
		if !strings.Contains(out, "alice") || !strings.Contains(out, redacted) {
			t.Errorf("%s = %s; want the user and a redaction marker", name, out)
		}
	}
}

func TestOptsTLSConfig(t *testing.T) {
	t.Parallel()
	ca := connNewCA(t, "opts CA")
	cert := ca.issue(t, "client", true)
	cfg := Config{Mode: MTLS, TLS: true, RootCAs: ca.pool, ClientCert: &cert, ServerName: "broker.example"}
	opts, err := cfg.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	if tc == nil {
		t.Fatal("Opts did not set DialTLSConfig")
	}
	if tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != ca.pool || tc.InsecureSkipVerify ||
		tc.ServerName != "broker.example" || len(tc.Certificates) != 1 {
		t.Errorf("tls config = min %x roots %p insecure %t name %q certs %d", tc.MinVersion, tc.RootCAs, tc.InsecureSkipVerify, tc.ServerName, len(tc.Certificates))
	}
	if m, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(m) > 0 {
		t.Errorf("mtls set SASL mechanisms: %v", m)
	}

	for mode, want := range map[Mode]string{Plain: "PLAIN", ScramSHA256: "SCRAM-SHA-256", ScramSHA512: "SCRAM-SHA-512"} {
		opts, err := Config{Mode: mode, User: "u", Password: "p"}.Opts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := connMechanism(t, opts).Name(); got != want {
			t.Errorf("%s: mechanism %s, want %s", mode, got, want)
		}
	}
	opts, err = Config{Mode: None}.Opts(t.Context())
	if err != nil || len(opts) != 0 {
		t.Errorf("none: Opts = %d options, %v; want none", len(opts), err)
	}
}

// Each mode against a kfake cluster configured for it: produce, then consume
// back in a group.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ca := connNewCA(t, "round trip CA")
	serverTLS := connServerTLS(t, ca, nil)
	mtlsServer := connServerTLS(t, ca, ca.pool)
	clientCert := ca.issue(t, "sluice", true)

	for _, tc := range []struct {
		name    string
		cluster []kfake.Opt
		cfg     Config
	}{
		{"plaintext", nil, Config{Mode: None}},
		{"tls", []kfake.Opt{kfake.TLS(serverTLS)}, Config{Mode: TLS, TLS: true, RootCAs: ca.pool}},
		{"tls by name", []kfake.Opt{kfake.TLS(serverTLS)}, Config{Mode: TLS, TLS: true, RootCAs: ca.pool, ServerName: "localhost"}},
		{"plain", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "alice", "plain-pw")},
			Config{Mode: Plain, User: "alice", Password: "plain-pw"}},
		{"scram-sha-256", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "alice", "s256-pw")},
			Config{Mode: ScramSHA256, User: "alice", Password: "s256-pw"}},
		{"scram-sha-512", []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "s512-pw")},
			Config{Mode: ScramSHA512, User: "alice", Password: "s512-pw"}},
		{"scram over tls", []kfake.Opt{kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "s512-pw")},
			Config{Mode: ScramSHA512, TLS: true, RootCAs: ca.pool, User: "alice", Password: "s512-pw"}},
		{"mtls", []kfake.Opt{kfake.TLS(mtlsServer)}, Config{Mode: MTLS, TLS: true, RootCAs: ca.pool, ClientCert: &clientCert}},
		{"insecure skip verify", []kfake.Opt{kfake.TLS(connServerTLS(t, connNewCA(t, "untrusted CA"), nil))},
			Config{Mode: TLS, TLS: true, InsecureSkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := strings.ReplaceAll(tc.name, " ", "-")
			c := connCluster(t, topic, tc.cluster...)
			connRoundTrip(t, c, topic, tc.cfg)
		})
	}
}

// Each failure must reach the caller as an error in bounded time, with a
// cause a user can act on.
func TestConnectFailures(t *testing.T) {
	t.Parallel()
	ca := connNewCA(t, "failure CA")
	otherCA := connNewCA(t, "other CA")
	foreignCert := otherCA.issue(t, "mallory", true)

	// kfake answers a failed SASL exchange by closing the connection, where
	// a real broker first replies SASL_AUTHENTICATION_FAILED; accept either,
	// so the test holds against both and against a kfake that changes.
	saslFailed := func(err error) bool {
		return errors.Is(err, kerr.SaslAuthenticationFailed) ||
			strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") ||
			errors.Is(err, io.EOF)
	}
	t.Run("scram wrong password", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "alice", "right"))
		err := connExpectFail(t, c, Config{Mode: ScramSHA256, User: "alice", Password: "wrong-pw"})
		if !saslFailed(err) {
			t.Errorf("error %v; want SASL_AUTHENTICATION_FAILED or the broker closing the connection", err)
		}
		if strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("error %q contains the password", err)
		}
	})
	t.Run("scram wrong mechanism", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "pw"))
		err := connExpectFail(t, c, Config{Mode: ScramSHA256, User: "alice", Password: "pw"})
		if !saslFailed(err) && !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Errorf("error %v; want a SASL failure", err)
		}
	})
	t.Run("no sasl to a sasl broker", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "pw"))
		err := connExpectFail(t, c, Config{Mode: None})
		var eof *kgo.ErrFirstReadEOF
		if !errors.As(err, &eof) {
			t.Errorf("error %v (%T); want kgo.ErrFirstReadEOF", err, err)
		}
	})
	t.Run("tls wrong ca", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.TLS(connServerTLS(t, ca, nil)))
		err := connExpectFail(t, c, Config{Mode: TLS, TLS: true, RootCAs: otherCA.pool})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("error %v (%T); want x509.UnknownAuthorityError", err, err)
		}
	})
	t.Run("plaintext client to tls broker", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.TLS(connServerTLS(t, ca, nil)))
		connExpectFail(t, c, Config{Mode: None})
	})
	t.Run("mtls without client cert", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.TLS(connServerTLS(t, ca, ca.pool)))
		err := connExpectFail(t, c, Config{Mode: TLS, TLS: true, RootCAs: ca.pool})
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v; want a TLS certificate alert", err)
		}
	})
	t.Run("mtls untrusted client cert", func(t *testing.T) {
		t.Parallel()
		c := connCluster(t, "t", kfake.TLS(connServerTLS(t, ca, ca.pool)))
		err := connExpectFail(t, c, Config{Mode: MTLS, TLS: true, RootCAs: ca.pool, ClientCert: &foreignCert})
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v; want a TLS certificate alert", err)
		}
	})
	t.Run("produce with a wrong password", func(t *testing.T) {
		// franz-go retries connection failures while producing until
		// the record's context ends, so the error here is usually the
		// context's: only Ping reports the cause. What matters is that
		// the record is not reported as written.
		t.Parallel()
		c := connCluster(t, "t", kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "alice", "right"))
		cl := connClient(t, c, Config{Mode: ScramSHA512, User: "alice", Password: "wrong"})
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err == nil {
			t.Fatal("produce with a wrong password succeeded")
		}
	})
}
