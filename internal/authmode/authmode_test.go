package authmode

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Credentials
		want Mode
		// explain must start with the mode and contain this.
		explain string
	}{
		{Credentials{}, None, "plaintext"},
		{Credentials{TLS: true}, TLS, "a CA is set or the cluster only accepts TLS"},
		{Credentials{IAM: true}, IAM, "MSK with IAM"},
		{Credentials{IAM: true, TLS: true}, IAM, "MSK with IAM"},
		{Credentials{Plain: true}, Plain, "SASL/PLAIN secret is set"},
		{Credentials{Plain: true, IAM: true, TLS: true}, Plain, "wins over IAM"},
		{Credentials{Scram256: true}, ScramSHA256, "SCRAM-SHA-256 secret"},
		{Credentials{Scram256: true, Plain: true}, ScramSHA256, "wins over SASL/PLAIN"},
		{Credentials{Scram512: true}, ScramSHA512, "SCRAM-SHA-512 secret"},
		{Credentials{Scram512: true, Scram256: true}, ScramSHA512, "wins over SCRAM-SHA-256"},
		{Credentials{Scram512: true, IAM: true}, ScramSHA512, "wins over IAM"},
		{Credentials{ClientCert: true}, MTLS, "mtls: a client certificate secret is set, and the strongest credential wins"},
		{Credentials{ClientCert: true, TLS: true}, MTLS, "client certificate"},
		{Credentials{ClientCert: true, Scram512: true, Scram256: true, Plain: true, IAM: true, TLS: true}, MTLS,
			"wins over SCRAM-SHA-512, SCRAM-SHA-256, SASL/PLAIN and IAM"},
	} {
		if got := Select(tc.c); got != tc.want {
			t.Errorf("Select(%+v) = %s, want %s", tc.c, got, tc.want)
		}
		ex := Explain(tc.c)
		if !strings.HasPrefix(ex, string(tc.want)+": ") || !strings.Contains(ex, tc.explain) {
			t.Errorf("Explain(%+v) = %q; want it to start with %q and contain %q", tc.c, ex, tc.want, tc.explain)
		}
		if strings.Count(ex, ".") > 0 || strings.Contains(ex, "\n") {
			t.Errorf("Explain(%+v) = %q; want one sentence without a period", tc.c, ex)
		}
	}
	// The exact wording of the common case, which docs quote.
	if got, want := Explain(Credentials{ClientCert: true}), "mtls: a client certificate secret is set, and the strongest credential wins"; got != want {
		t.Errorf("Explain(client cert) = %q, want %q", got, want)
	}
}
