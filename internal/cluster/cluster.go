// Package cluster defines a named connection to a Kafka cluster: its
// bootstrap servers, how to authenticate, and which secrets hold the
// credentials. Pipes name a cluster instead of repeating its brokers, so
// credentials are rotated in one place and never live in a pipe's spec.
package cluster

import (
	"github.com/sluice-dev/sluice/internal/fielderr"

	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/authmode"
)

// Auth modes, as authmode names them. AuthAuto picks the strongest mode
// the given credentials allow, in the reference's order: mTLS, SASL/SCRAM,
// IAM, TLS, plaintext (see authmode.Select).
const (
	AuthAuto        = "auto"
	AuthNone        = "none"
	AuthTLS         = "tls"
	AuthPlain       = "plain"
	AuthScramSHA256 = "scram-sha-256"
	AuthScramSHA512 = "scram-sha-512"
	AuthIAM         = "iam"
	AuthMTLS        = "mtls"
)

// Cluster is a named Kafka connection.
type Cluster struct {
	// Name identifies the cluster; pipes refer to it.
	Name string `json:"name"`
	// BootstrapServers are host:port pairs to start from.
	BootstrapServers []string `json:"bootstrapServers"`
	// Auth is one of Modes, or auto (the default): the strongest mode
	// the credentials below allow.
	Auth string `json:"auth,omitempty"`
	// TLS says whether connections are wrapped in TLS. Nil means yes for
	// every mode but none; false is allowed only for plain and SCRAM
	// (SASL_PLAINTEXT, for self-managed clusters).
	TLS *bool `json:"tls,omitempty"`
	// User is the SASL user name (plain, SCRAM). Empty with a
	// PasswordSecret means the user name is that secret's "username" key,
	// as in the reference's SASL secrets ({"username", "password"}).
	User string `json:"user,omitempty"`
	// PasswordSecret is the SASL password as a SECRET/KEY reference.
	PasswordSecret string `json:"passwordSecret,omitempty"`
	// CACertSecret names a tls-ca secret whose certificate verifies the
	// brokers; empty means the system roots.
	CACertSecret string `json:"caCertSecret,omitempty"`
	// ClientCertSecret names a tls-client secret for mTLS.
	ClientCertSecret string `json:"clientCertSecret,omitempty"`
	// InsecureSkipTLSVerify turns off broker certificate verification;
	// only for tests, and only when asked for by this name.
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
	// AllowPlaintextCredentials permits SASL/PLAIN without TLS, which
	// sends the password readable to anyone on the network path; only
	// when asked for by this name. (SCRAM never sends the password.)
	AllowPlaintextCredentials bool `json:"allowPlaintextCredentials,omitempty"`
	// MSK marks an Amazon MSK cluster: events say eventSource aws:kafka
	// with the cluster's ARN, and auto auth without secrets means IAM.
	MSK bool `json:"msk,omitempty"`
	// ARN is the MSK cluster's ARN, arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID.
	// For an MSK cluster without one, Sluice derives one from the name.
	ARN string `json:"arn,omitempty"`
	// Region is the AWS region for IAM; empty means from the ARN, else
	// the AWS configuration chain.
	Region string `json:"region,omitempty"`
	// Owner is the pipe this cluster was made for by the Lambda-compatible
	// API's SourceAccessConfigurations; it is deleted with that pipe.
	Owner string `json:"owner,omitempty"`
	// LastModified is set by the store.
	LastModified time.Time `json:"lastModified,omitzero"`
}

// Errors a cluster Service returns, wrapped; test with errors.Is.
var (
	ErrNotFound = errors.New("cluster not found")
	ErrInUse    = errors.New("cluster is used by pipes")
)

// Service manages clusters.
type Service interface {
	PutCluster(ctx context.Context, c Cluster) (Cluster, error)
	GetCluster(ctx context.Context, name string) (Cluster, error)
	ListClusters(ctx context.Context) ([]Cluster, error)
	// DeleteCluster refuses (ErrInUse) while a pipe uses the cluster.
	DeleteCluster(ctx context.Context, name string) error
}

// FieldError is a problem with one field and how to fix it.
type FieldError = fielderr.Field

// ValidationError lists every problem with a cluster: the one field-error
// type of every spec (package fielderr), with Kind "cluster".
type ValidationError = fielderr.List

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$`)
	arnRE  = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:kafka:([a-z0-9-]+):(\d{12}):cluster/([^/]+)/([^/]+)$`)
)

// ParseARN splits an MSK cluster ARN into region and cluster name.
func ParseARN(arn string) (region, name string, err error) {
	m := arnRE.FindStringSubmatch(arn)
	if m == nil {
		return "", "", fmt.Errorf("%q is not an MSK cluster ARN: expected arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID", arn)
	}
	return m[1], m[3], nil
}

// Validate checks c, naming every bad field and its fix.
func (c Cluster) Validate() error {
	var errs []FieldError
	add := func(field, reason string) { errs = append(errs, FieldError{Field: field, Reason: reason}) }
	if !nameRE.MatchString(c.Name) {
		add("name", fmt.Sprintf("%q: use 1–64 letters, digits, '-' or '_', starting with a letter or digit", c.Name))
	}
	if len(c.BootstrapServers) == 0 {
		add("bootstrapServers", "required: give one or more host:port brokers (--bootstrap-servers)")
	}
	for _, hp := range c.BootstrapServers {
		host, port, err := net.SplitHostPort(hp)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			add("bootstrapServers", fmt.Sprintf("%q is not host:port", hp))
		}
	}
	auth := c.Auth
	if auth == "" {
		auth = AuthAuto
	}
	if auth != AuthAuto && !authmode.Mode(auth).Valid() {
		add("auth", fmt.Sprintf("%q: use auto, mtls, scram-sha-512, scram-sha-256, plain, iam, tls or none", c.Auth))
	}
	if c.PasswordSecret != "" {
		if i := strings.Index(c.PasswordSecret, "/"); i <= 0 || i == len(c.PasswordSecret)-1 {
			add("passwordSecret", fmt.Sprintf("%q: give SECRET/KEY, the secret's name and the key holding the password", c.PasswordSecret))
		}
	}
	if c.User != "" && c.PasswordSecret == "" {
		add("passwordSecret", "a SASL user needs its password: set --password-secret SECRET/KEY")
	}
	if c.ARN != "" {
		if _, _, err := ParseARN(c.ARN); err != nil {
			add("arn", err.Error())
		}
	}
	if auth != AuthAuto && authmode.Mode(auth).Valid() {
		eff := c.EffectiveAuth()
		need := func(ok bool, field, reason string) {
			if !ok {
				add(field, reason)
			}
		}
		switch eff {
		case AuthMTLS:
			need(c.ClientCertSecret != "", "clientCertSecret", "mtls needs a tls-client secret: set --client-cert-secret")
		case AuthPlain, AuthScramSHA256, AuthScramSHA512:
			need(c.PasswordSecret != "", "passwordSecret", eff+" needs a user and password: set --user and --password-secret (or a secret with username and password keys)")
		}
		// A credential the chosen mode does not use would be ignored, and
		// the strongest credential must win: refuse rather than connect
		// with less than the user configured.
		if c.ClientCertSecret != "" && eff != AuthMTLS {
			add("auth", fmt.Sprintf("%s ignores the client certificate secret, and mtls is stronger: set --auth mtls or remove --client-cert-secret", eff))
		}
		if eff == AuthNone && (c.CACertSecret != "" || c.InsecureSkipTLSVerify) {
			add("auth", "none is plaintext, which has no certificate to check: set --auth tls, or remove --ca-cert-secret and --insecure-skip-tls-verify")
		}
		if c.PasswordSecret != "" && (eff == AuthIAM || eff == AuthTLS || eff == AuthNone) {
			add("auth", fmt.Sprintf("%s ignores the user and password secret: set --auth scram-sha-512, scram-sha-256 or plain, or remove --user and --password-secret", eff))
		}
	}
	if c.TLS != nil && !*c.TLS {
		switch eff := c.EffectiveAuth(); eff {
		case AuthNone, AuthPlain, AuthScramSHA256, AuthScramSHA512:
		default:
			add("tls", eff+" always runs over TLS: remove tls: false")
		}
		if c.CACertSecret != "" || c.InsecureSkipTLSVerify {
			add("tls", "caCertSecret and insecureSkipTLSVerify apply only over TLS")
		}
		if c.EffectiveAuth() == AuthPlain && !c.AllowPlaintextCredentials {
			add("tls", "SASL/PLAIN without TLS sends the password in clear text to anyone on the network path: turn TLS on, or set allowPlaintextCredentials (--allow-plaintext-credentials) if the network is trusted")
		}
	}
	if c.AllowPlaintextCredentials && (c.UsesTLS() || c.EffectiveAuth() != AuthPlain) {
		add("allowPlaintextCredentials", "applies only to SASL/PLAIN without TLS: remove it")
	}
	if len(errs) > 0 {
		return &ValidationError{Kind: "cluster", Fields: errs}
	}
	return nil
}

// credentials is what c has, for authmode.Select: a user and password
// secret counts as SCRAM-SHA-512, the one SASL mechanism MSK offers; a
// cluster using another states it with auth.
func (c Cluster) credentials() authmode.Credentials {
	return authmode.Credentials{
		ClientCert: c.ClientCertSecret != "",
		Scram512:   c.PasswordSecret != "",
		IAM:        c.MSK,
		TLS:        c.CACertSecret != "" || c.InsecureSkipTLSVerify,
	}
}

// EffectiveAuth is the mode Sluice connects with: Auth, or for auto the
// strongest the credentials allow. It never falls back to a weaker mode
// when the chosen one fails.
func (c Cluster) EffectiveAuth() string {
	if c.Auth == "" || c.Auth == AuthAuto {
		return string(authmode.Select(c.credentials()))
	}
	return c.Auth
}

// AuthReason says in one sentence why EffectiveAuth chose its mode.
func (c Cluster) AuthReason() string {
	if c.Auth != "" && c.Auth != AuthAuto {
		return "set explicitly"
	}
	return "auto: " + authmode.Explain(c.credentials())
}

// UsesTLS says whether connections are wrapped in TLS.
func (c Cluster) UsesTLS() bool {
	if c.TLS != nil {
		return *c.TLS
	}
	return c.EffectiveAuth() != AuthNone || c.CACertSecret != ""
}

// Secrets lists the secrets c refers to.
func (c Cluster) Secrets() []string {
	var out []string
	if c.PasswordSecret != "" {
		out = append(out, c.PasswordSecret[:strings.Index(c.PasswordSecret, "/")])
	}
	if c.CACertSecret != "" {
		out = append(out, c.CACertSecret)
	}
	if c.ClientCertSecret != "" {
		out = append(out, c.ClientCertSecret)
	}
	return out
}

// EventSourceARN is the ARN events and the Lambda-compatible API show for
// an MSK cluster: its own, or one derived from its name.
func (c Cluster) EventSourceARN() string {
	if !c.MSK {
		return ""
	}
	if c.ARN != "" {
		return c.ARN
	}
	region := c.Region
	if region == "" {
		region = "local"
	}
	return fmt.Sprintf("arn:aws:kafka:%s:000000000000:cluster/%s/sluice", region, c.Name)
}
