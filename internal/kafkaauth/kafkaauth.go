// Package kafkaauth turns resolved connection settings (mode, TLS material,
// SASL secrets, AWS region) into franz-go client options, so that Sluice can
// consume from plaintext dev brokers, self-managed clusters with SASL or
// mTLS, and Amazon MSK with IAM alike.
//
// Everything here works on material that was already resolved and decrypted
// by the caller: this package never reads files or secret stores, which keeps
// it pure enough to test against an in-process broker.
package kafkaauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/authmode"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Mode, its constants, Credentials, Select and Explain live in package
// authmode, which has no I/O, so the domain (package cluster) can choose a
// mode without importing franz-go or the AWS SDK. They are aliased here for
// this package's users.
type (
	Mode        = authmode.Mode
	Credentials = authmode.Credentials
)

const (
	None        = authmode.None
	TLS         = authmode.TLS
	Plain       = authmode.Plain
	ScramSHA256 = authmode.ScramSHA256
	ScramSHA512 = authmode.ScramSHA512
	IAM         = authmode.IAM
	MTLS        = authmode.MTLS
)

// Modes, Select and Explain: see package authmode.
func Modes() []Mode                { return authmode.Modes() }
func Select(c Credentials) Mode    { return authmode.Select(c) }
func Explain(c Credentials) string { return authmode.Explain(c) }

// ParseMode parses a mode as a user types it. It ignores case and
// surrounding spaces, and its error lists the valid values, so that a typo
// in a flag or config file explains itself.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	if m.Valid() {
		return m, nil
	}
	return "", fmt.Errorf("unknown auth mode %q: valid values are %s", s, modeList())
}

func modeList() string {
	ms := Modes()
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// FieldError is a configuration problem with one field. Field is the name a
// user knows it by (a flag name without dashes), so that a CLI or API can
// point at the right input.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Config is resolved connection material for one cluster. Secrets in it are
// plain text in memory, so the type redacts them whenever it is printed,
// logged or marshalled.
type Config struct {
	// Mode selects the authentication mechanism.
	Mode Mode
	// TLS wraps the connection in TLS. SASL modes may run without it
	// (SASL_PLAINTEXT on self-managed clusters); tls, mtls and iam always
	// need it, and Validate refuses them with TLS false.
	TLS bool

	// User and Password are the SASL credentials for plain and scram.
	User     string
	Password string

	// RootCAs verifies the brokers; nil means the system roots.
	RootCAs *x509.CertPool
	// ClientCert is presented in the TLS handshake. mtls needs it; SASL
	// modes over TLS may carry one too, for clusters that require both.
	ClientCert *tls.Certificate
	// InsecureSkipVerify turns broker certificate verification off. Only
	// set it when the user asked for that by name.
	InsecureSkipVerify bool
	// ServerName overrides the name verified in broker certificates;
	// empty means the host of each broker address.
	ServerName string

	// Region is the AWS region for IAM; empty means the AWS config chain
	// (AWS_REGION, the shared config's profile).
	Region string
	// AWSCredentials overrides the AWS default credential chain for IAM.
	// Nil means the standard chain: environment, shared config and
	// profile, web identity, ECS and EC2 roles.
	AWSCredentials aws.CredentialsProvider
}

// Validate checks that the fields fit together. It refuses settings that
// would be silently ignored (a password in tls mode, a CA without TLS),
// because ignoring them would connect with less protection than the user
// believed they asked for. All problems are returned at once, each as a
// *FieldError.
//
// IAM's region may come from the AWS config chain, so it is checked by Opts,
// which has a context to load that chain with.
func (c Config) Validate() error {
	if !c.Mode.Valid() {
		if c.Mode == "" {
			return fieldErr("mode", "no auth mode is set: choose one of %s", modeList())
		}
		return fieldErr("mode", "unknown auth mode %q: choose one of %s", string(c.Mode), modeList())
	}
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(field, format, args...))
	}

	if c.Mode.NeedsTLS() && !c.TLS {
		add("tls", "mode %s needs TLS, but TLS is off: turn it on with --tls", c.Mode)
	}
	if c.Mode == None && c.TLS {
		add("tls", "mode none is plaintext, but TLS is on: choose mode tls to encrypt without credentials")
	}
	if !c.TLS {
		if c.RootCAs != nil {
			add("ca", "a CA is set but TLS is off: turn TLS on or drop the CA")
		}
		if c.InsecureSkipVerify {
			add("insecure-skip-verify", "certificate verification can only be skipped on a TLS connection, and TLS is off")
		}
		if c.ServerName != "" {
			add("server-name", "a TLS server name is set but TLS is off: turn TLS on or drop the server name")
		}
		if c.ClientCert != nil && c.Mode != MTLS && c.Mode != None {
			add("client-cert", "a client certificate is set but TLS is off, so it could not be presented")
		}
	}

	switch {
	case c.Mode.UsesPassword():
		name := saslName(c.Mode)
		if c.User == "" {
			add("user", "%s needs a user name: set --user", name)
		}
		if c.Password == "" {
			add("password", "%s needs a password: set --password", name)
		}
	default:
		// Credentials that the mode would not send are refused rather than
		// dropped: the user meant to authenticate, and a connection
		// without it would be a silent downgrade.
		if c.User != "" {
			add("user", "mode %s does not use a user name: choose plain, scram-sha-256 or scram-sha-512, or unset --user", c.Mode)
		}
		if c.Password != "" {
			add("password", "mode %s does not use a password: choose plain, scram-sha-256 or scram-sha-512, or unset --password", c.Mode)
		}
	}

	if c.Mode == MTLS {
		switch {
		case c.ClientCert == nil:
			add("client-cert", "mtls needs a client certificate and key: set --client-cert")
		case len(c.ClientCert.Certificate) == 0:
			add("client-cert", "the client certificate holds no certificate")
		case c.ClientCert.PrivateKey == nil:
			add("client-cert", "the client certificate has no private key")
		}
	}
	if c.Mode == None && c.ClientCert != nil {
		add("client-cert", "mode none cannot present a client certificate: choose mtls")
	}
	return errors.Join(errs...)
}

func saslName(m Mode) string {
	switch m {
	case Plain:
		return "SASL/PLAIN"
	case ScramSHA256, ScramSHA512:
		return "SCRAM"
	}
	return string(m)
}

// Opts returns the franz-go options that make a client connect the way c
// says; add them to the client's own options (seed brokers, group, ...).
//
// ctx bounds only the work done here (for IAM, loading the AWS config chain
// to find the region and credentials). It is not kept: each IAM token is made
// when a connection authenticates, under the client's own context, so that
// credentials refresh for the lifetime of the client.
func (c Config) Opts(ctx context.Context) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS {
		opts = append(opts, kgo.DialTLSConfig(c.tlsConfig()))
	}
	mech, err := c.mechanism(ctx)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// tlsConfig builds the dial config. kgo clones it per dial and fills in the
// ServerName from the broker address when it is empty.
func (c Config) tlsConfig() *tls.Config {
	tc := &tls.Config{
		// TLS 1.0 and 1.1 are deprecated (RFC 8996) and every Kafka and
		// MSK version Sluice targets speaks 1.2.
		MinVersion:         tls.VersionTLS12,
		RootCAs:            c.RootCAs,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // only when the user turned verification off by name
		ServerName:         c.ServerName,
	}
	if c.ClientCert != nil {
		tc.Certificates = []tls.Certificate{*c.ClientCert}
	}
	return tc
}

// mechanism returns the SASL mechanism for the mode, or nil for modes that
// do not use SASL.
func (c Config) mechanism(ctx context.Context) (sasl.Mechanism, error) {
	switch c.Mode {
	case Plain:
		return plain.Auth{User: c.User, Pass: c.Password}.AsMechanism(), nil
	case ScramSHA256:
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism(), nil
	case ScramSHA512:
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism(), nil
	case IAM:
		s, err := c.iamSigner(ctx)
		if err != nil {
			return nil, err
		}
		return s.mechanism(), nil
	}
	return nil, nil
}

const redacted = "[REDACTED]"

// redactedView is what every printer sees of a Config: which secrets are set,
// never their values.
type redactedView struct {
	Mode               Mode   `json:"mode"`
	TLS                bool   `json:"tls"`
	User               string `json:"user,omitempty"`
	Password           string `json:"password,omitempty"`
	RootCAs            string `json:"rootCAs"`
	ClientCert         string `json:"clientCert,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify"`
	ServerName         string `json:"serverName,omitempty"`
	Region             string `json:"region,omitempty"`
	AWSCredentials     string `json:"awsCredentials,omitempty"`
}

func (c Config) view() redactedView {
	v := redactedView{
		Mode:               c.Mode,
		TLS:                c.TLS,
		User:               c.User,
		RootCAs:            "system",
		InsecureSkipVerify: c.InsecureSkipVerify,
		ServerName:         c.ServerName,
		Region:             c.Region,
	}
	if c.Password != "" {
		v.Password = redacted
	}
	if c.RootCAs != nil {
		v.RootCAs = "custom"
	}
	if c.ClientCert != nil {
		// The certificate is public, but the key sits beside it in the
		// same struct; say only that one is set.
		v.ClientCert = "set"
	}
	if c.AWSCredentials != nil {
		v.AWSCredentials = "custom"
	}
	return v
}

// String describes c without secrets.
func (c Config) String() string {
	v := c.view()
	var b strings.Builder
	fmt.Fprintf(&b, "kafkaauth.Config{Mode:%s TLS:%t", v.Mode, v.TLS)
	if v.User != "" {
		fmt.Fprintf(&b, " User:%q", v.User)
	}
	if v.Password != "" {
		b.WriteString(" Password:" + v.Password)
	}
	b.WriteString(" RootCAs:" + v.RootCAs)
	if v.ClientCert != "" {
		b.WriteString(" ClientCert:" + v.ClientCert)
	}
	if v.InsecureSkipVerify {
		b.WriteString(" InsecureSkipVerify:true")
	}
	if v.ServerName != "" {
		fmt.Fprintf(&b, " ServerName:%q", v.ServerName)
	}
	if v.Region != "" {
		fmt.Fprintf(&b, " Region:%q", v.Region)
	}
	if v.AWSCredentials != "" {
		b.WriteString(" AWSCredentials:" + v.AWSCredentials)
	}
	b.WriteString("}")
	return b.String()
}

// GoString makes %#v redact too.
func (c Config) GoString() string { return c.String() }

// Format routes every fmt verb through String. Without it, verbs such as %d
// would print the struct's fields, password and private key included.
func (c Config) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(c.String()))
}

// LogValue makes slog print the redacted view.
func (c Config) LogValue() slog.Value {
	v := c.view()
	attrs := []slog.Attr{
		slog.String("mode", string(v.Mode)),
		slog.Bool("tls", v.TLS),
		slog.String("root_cas", v.RootCAs),
	}
	if v.User != "" {
		attrs = append(attrs, slog.String("user", v.User))
	}
	if v.Password != "" {
		attrs = append(attrs, slog.String("password", v.Password))
	}
	if v.ClientCert != "" {
		attrs = append(attrs, slog.String("client_cert", v.ClientCert))
	}
	if v.InsecureSkipVerify {
		attrs = append(attrs, slog.Bool("insecure_skip_verify", true))
	}
	if v.ServerName != "" {
		attrs = append(attrs, slog.String("server_name", v.ServerName))
	}
	if v.Region != "" {
		attrs = append(attrs, slog.String("region", v.Region))
	}
	if v.AWSCredentials != "" {
		attrs = append(attrs, slog.String("aws_credentials", v.AWSCredentials))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON redacts too: the default encoding would write the password and
// the client key's private scalar.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.view())
}
