package cluster

import (
	"strings"
	"testing"
)

func TestValidateAndAuthSelection(t *testing.T) {
	no := false
	base := func(c Cluster) Cluster {
		c.Name, c.BootstrapServers = "c", []string{"b-1:9092"}
		return c
	}
	for _, tc := range []struct {
		name    string
		c       Cluster
		auth    string // EffectiveAuth when valid
		wantErr string // a substring of the error, when invalid
	}{
		{name: "plaintext", c: base(Cluster{}), auth: AuthNone},
		{name: "tls by CA", c: base(Cluster{CACertSecret: "ca"}), auth: AuthTLS},
		{name: "scram by user", c: base(Cluster{User: "u", PasswordSecret: "s/password"}), auth: AuthScramSHA512},
		{name: "mtls wins over scram", c: base(Cluster{User: "u", PasswordSecret: "s/p", ClientCertSecret: "client"}), auth: AuthMTLS},
		{name: "msk without secrets is iam", c: base(Cluster{MSK: true}), auth: AuthIAM},
		{name: "msk with scram", c: base(Cluster{MSK: true, User: "u", PasswordSecret: "s/p"}), auth: AuthScramSHA512},
		{name: "plain over plaintext, allowed by name", c: base(Cluster{Auth: AuthPlain, User: "u", PasswordSecret: "s/p", TLS: &no, AllowPlaintextCredentials: true}), auth: AuthPlain},
		{name: "plain over plaintext", c: base(Cluster{Auth: AuthPlain, User: "u", PasswordSecret: "s/p", TLS: &no}), wantErr: "sends the password in clear text"},
		{name: "plaintext credentials allowed where none are sent", c: base(Cluster{Auth: AuthScramSHA512, User: "u", PasswordSecret: "s/p", TLS: &no, AllowPlaintextCredentials: true}), wantErr: "applies only to SASL/PLAIN without TLS"},
		{name: "explicit weaker mode with a client cert", c: base(Cluster{Auth: AuthScramSHA512, User: "u", PasswordSecret: "s/p", ClientCertSecret: "client"}), wantErr: "set --auth mtls or remove --client-cert-secret"},
		{name: "iam ignoring a password", c: base(Cluster{Auth: AuthIAM, User: "u", PasswordSecret: "s/p"}), wantErr: "ignores the user and password"},
		{name: "mtls without a certificate", c: base(Cluster{Auth: AuthMTLS}), wantErr: "clientCertSecret"},
		{name: "none with a CA", c: base(Cluster{Auth: AuthNone, CACertSecret: "ca"}), wantErr: "set --auth tls"},
		{name: "iam without TLS", c: base(Cluster{Auth: AuthIAM, TLS: &no}), wantErr: "always runs over TLS"},
		{name: "user without password", c: base(Cluster{User: "u"}), wantErr: "needs its password"},
		{name: "user name from the secret", c: base(Cluster{PasswordSecret: "s/password"}), auth: AuthScramSHA512},
		{name: "password ref form", c: base(Cluster{User: "u", PasswordSecret: "nokey"}), wantErr: "SECRET/KEY"},
		{name: "unknown mode", c: base(Cluster{Auth: "kerberos"}), wantErr: `"kerberos"`},
		{name: "bad broker", c: Cluster{Name: "c", BootstrapServers: []string{"nohost"}}, wantErr: "host:port"},
		{name: "bad name", c: Cluster{Name: "a b", BootstrapServers: []string{"b:1"}}, wantErr: "name"},
		{name: "bad arn", c: base(Cluster{MSK: true, ARN: "arn:aws:sqs:us-east-1:123456789012:q"}), wantErr: "not an MSK cluster ARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.c.EffectiveAuth(); got != tc.auth {
				t.Fatalf("EffectiveAuth = %s (%s), want %s", got, tc.c.AuthReason(), tc.auth)
			}
		})
	}
}

func TestEventSourceARN(t *testing.T) {
	if got := (Cluster{Name: "x"}).EventSourceARN(); got != "" {
		t.Fatalf("a non-MSK cluster has ARN %q", got)
	}
	const arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/prod/abc-1"
	if got := (Cluster{Name: "prod", MSK: true, ARN: arn}).EventSourceARN(); got != arn {
		t.Fatalf("ARN %q", got)
	}
	derived := Cluster{Name: "prod", MSK: true, Region: "us-east-2"}.EventSourceARN()
	if region, name, err := ParseARN(derived); err != nil || region != "us-east-2" || name != "prod" {
		t.Fatalf("derived ARN %q does not parse back: %s %s %v", derived, region, name, err)
	}
}
