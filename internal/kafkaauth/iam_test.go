package kafkaauth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// connIsolateAWS points the AWS config chain at nothing on this machine, so
// that a developer's own ~/.aws or instance role cannot leak into a test. It
// uses t.Setenv, so callers must not be parallel.
func connIsolateAWS(t *testing.T) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                        empty,
		"AWS_SHARED_CREDENTIALS_FILE":            empty,
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_ROLE_ARN":                           "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		// Never wait on an instance metadata service in a test.
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// connIAMInitial runs one OAUTHBEARER authentication with the mechanism opts
// configure and returns the token it sends.
func connIAMInitial(ctx context.Context, t *testing.T, m sasl.Mechanism) (string, error) {
	t.Helper()
	_, first, err := m.Authenticate(ctx, "127.0.0.1:9098")
	if err != nil {
		return "", err
	}
	// RFC 7628: "n,," gs2 header, then kvsep-separated auth=Bearer <token>.
	const prefix = "n,,\x01auth=Bearer "
	s := string(first)
	if !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, "\x01\x01") {
		t.Fatalf("OAUTHBEARER initial response %q is not RFC 7628", s)
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, prefix), "\x01\x01"), nil
}

// connDecodeIAMToken checks the token's encoding and returns its URL.
func connDecodeIAMToken(t *testing.T, tok string) *url.URL {
	t.Helper()
	if strings.ContainsAny(tok, "=+/") {
		t.Errorf("token %q is not unpadded base64url", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatalf("token is not base64url: %v", err)
	}
	u, err := url.Parse(string(raw))
	if err != nil {
		t.Fatalf("token does not decode to a URL: %v", err)
	}
	return u
}

func TestIAMToken(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Mode:           IAM,
		TLS:            true,
		Region:         "us-east-1",
		AWSCredentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}
	opts, err := cfg.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config); tc == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("IAM does not dial TLS 1.2+: %v", tc)
	}

	m := connMechanism(t, opts)
	if m.Name() != "OAUTHBEARER" {
		t.Fatalf("IAM mechanism = %s, want OAUTHBEARER", m.Name())
	}
	tok, err := connIAMInitial(t.Context(), t, m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "SECRET") {
		t.Fatal("token contains the secret key")
	}
	u := connDecodeIAMToken(t, tok)
	if u.Scheme != "https" || u.Host != "kafka.us-east-1.amazonaws.com" {
		t.Errorf("token URL %s://%s, want https://kafka.us-east-1.amazonaws.com", u.Scheme, u.Host)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"Action":          "kafka-cluster:Connect",
		"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
		"X-Amz-Expires":   "900",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if c := q.Get("X-Amz-Credential"); !strings.HasPrefix(c, "AKID/") || !strings.HasSuffix(c, "/us-east-1/kafka-cluster/aws4_request") {
		t.Errorf("X-Amz-Credential = %q, want AKID/<date>/us-east-1/kafka-cluster/aws4_request", c)
	}
	for _, k := range []string{"X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "User-Agent"} {
		if q.Get(k) == "" {
			t.Errorf("token has no %s", k)
		}
	}
	if ua := q.Get("User-Agent"); !strings.HasPrefix(ua, "aws-msk-iam-sasl-signer-go/") {
		t.Errorf("User-Agent = %q", ua)
	}
	if d, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date")); err != nil || time.Since(d).Abs() > time.Minute {
		t.Errorf("X-Amz-Date = %q (%v); want now", q.Get("X-Amz-Date"), err)
	}
}

// connCountingProvider counts Retrieve calls and can block until its context
// ends, to show that tokens are made per authentication and respect ctx.
type connCountingProvider struct {
	calls atomic.Int32
	block bool
	err   error
}

func (p *connCountingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.calls.Add(1)
	if p.block {
		<-ctx.Done()
		return aws.Credentials{}, ctx.Err()
	}
	if p.err != nil {
		return aws.Credentials{}, p.err
	}
	return aws.Credentials{AccessKeyID: "AKIDCOUNT", SecretAccessKey: "SECRETCOUNT", Source: "test"}, nil
}

func TestIAMTokenPerAuthentication(t *testing.T) {
	t.Parallel()
	p := &connCountingProvider{}
	opts, err := Config{Mode: IAM, TLS: true, Region: "eu-central-1", AWSCredentials: p}.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("Opts retrieved credentials %d times; tokens must be made per connection", n)
	}
	m := connMechanism(t, opts)
	for i := 1; i <= 2; i++ {
		tok, err := connIAMInitial(t.Context(), t, m)
		if err != nil {
			t.Fatal(err)
		}
		if u := connDecodeIAMToken(t, tok); u.Host != "kafka.eu-central-1.amazonaws.com" {
			t.Errorf("host %s", u.Host)
		}
		if n := p.calls.Load(); n != int32(i) {
			t.Errorf("after %d authentications the provider was asked %d times", i, n)
		}
	}
}

func TestIAMTokenContext(t *testing.T) {
	t.Parallel()
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		p := &connCountingProvider{}
		opts, err := Config{Mode: IAM, TLS: true, Region: "us-east-1", AWSCredentials: p}.Opts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = connIAMInitial(ctx, t, connMechanism(t, opts))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("token on a canceled context: %v; want context.Canceled", err)
		}
		if p.calls.Load() != 0 {
			t.Error("a canceled context still asked for credentials")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		opts, err := Config{Mode: IAM, TLS: true, Region: "us-east-1", AWSCredentials: &connCountingProvider{block: true}}.Opts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = connIAMInitial(ctx, t, connMechanism(t, opts))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("token with a hanging provider: %v; want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("token took %v after its deadline", d)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("no role attached")
		opts, err := Config{Mode: IAM, TLS: true, Region: "us-east-1", AWSCredentials: &connCountingProvider{err: boom}}.Opts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, err = connIAMInitial(t.Context(), t, connMechanism(t, opts))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "iam") {
			t.Errorf("token with a failing provider: %v; want it wrapped", err)
		}
	})
}

// The tests below change the process environment, so they are not parallel.

func TestIAMMissingRegion(t *testing.T) {
	connIsolateAWS(t)
	_, err := Config{Mode: IAM, TLS: true, AWSCredentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}.Opts(t.Context())
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "region" || !strings.Contains(err.Error(), "--region") {
		t.Fatalf("IAM without a region: %v; want a region field error naming --region", err)
	}
}

func TestIAMDefaultChain(t *testing.T) {
	connIsolateAWS(t)
	// Region and credentials both from the environment: the standard
	// chain, as on a machine with AWS_* variables set.
	t.Setenv("AWS_REGION", "ap-southeast-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETENV")
	opts, err := Config{Mode: IAM, TLS: true}.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := connIAMInitial(t.Context(), t, connMechanism(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	u := connDecodeIAMToken(t, tok)
	if u.Host != "kafka.ap-southeast-2.amazonaws.com" || !strings.HasPrefix(u.Query().Get("X-Amz-Credential"), "AKIDENV/") {
		t.Errorf("token for %s with credential %s; want the environment's region and key", u.Host, u.Query().Get("X-Amz-Credential"))
	}

	// An explicit region wins over the chain's.
	opts, err = Config{Mode: IAM, TLS: true, Region: "us-west-2"}.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, err = connIAMInitial(t.Context(), t, connMechanism(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	if u := connDecodeIAMToken(t, tok); u.Host != "kafka.us-west-2.amazonaws.com" {
		t.Errorf("token host %s; want the explicit region", u.Host)
	}
}

func TestIAMNoCredentials(t *testing.T) {
	connIsolateAWS(t)
	// Opts succeeds (credentials are looked up per connection), and the
	// token then fails with an error that says credentials are missing.
	opts, err := Config{Mode: IAM, TLS: true, Region: "us-east-1"}.Opts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), connTestTimeout)
	defer cancel()
	_, err = connIAMInitial(ctx, t, connMechanism(t, opts))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("token with no credentials anywhere: %v (ctx %v); want a prompt error", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "credentials") {
		t.Errorf("error %q does not mention credentials", err)
	}
}
