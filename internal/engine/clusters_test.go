package engine_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/kafkaauth"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// testCA is a CA made in the test, with a server certificate for
// 127.0.0.1 and localhost.
type testCA struct {
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool
	server  tls.Certificate
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{
		caCert:  caCert,
		caKey:   caKey,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:    pool,
		server:  tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
	}
}

// fixture reads a certificate fixture of package certs, made with openssl.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "certs", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const fixturePassword = "sluice-test-password" // see certs/testdata/gen.sh

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authEngine runs an engine with a keyring and a JSON log in a buffer.
func authEngine(t *testing.T) (*engine.Engine, *syncBuffer) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secret.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tun := fast
	tun.LagInterval = 200 * time.Millisecond
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Tuning: tun, Keyring: kr, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return eng, logs
}

// authCase is one auth mode: a kfake cluster configured for it, what Sluice
// is told, and how a test client produces to it.
type authCase struct {
	name     string
	kopts    []kfake.Opt
	secrets  []secret.Secret
	cluster  cluster.Cluster
	producer kafkaauth.Config
}

func authCases(t *testing.T, ca testCA) []authCase {
	const user, password = "alice", "pl4nted-s3cret-7c1e"
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(fixture(t, "ca.pem"))
	mtlsServer := serverTLS.Clone()
	mtlsServer.ClientAuth, mtlsServer.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	pw := secret.Secret{Name: "kafka-creds", Type: secret.Generic, Data: map[string][]byte{"password": []byte(password)}}
	ca1 := secret.Secret{Name: "kafka-ca", Type: secret.TLSCA, Data: map[string][]byte{"certificate": ca.certPEM}}
	client := secret.Secret{Name: "kafka-client", Type: secret.TLSClient, Data: map[string][]byte{
		"certificate": fixture(t, "rsa-chain.pem"), "privateKey": fixture(t, "rsa-key-pbes1-sha1-3des.pem"),
		"privateKeyPassword": []byte(fixturePassword)}}
	clientCert, err := tls.X509KeyPair(fixture(t, "rsa-chain.pem"), fixture(t, "rsa-key-pkcs8.pem"))
	if err != nil {
		t.Fatal(err)
	}
	no := false
	return []authCase{
		{name: "none", cluster: cluster.Cluster{}, producer: kafkaauth.Config{Mode: kafkaauth.None}},
		{name: "tls", kopts: []kfake.Opt{kfake.TLS(serverTLS)}, secrets: []secret.Secret{ca1},
			cluster:  cluster.Cluster{CACertSecret: "kafka-ca"},
			producer: kafkaauth.Config{Mode: kafkaauth.TLS, TLS: true, RootCAs: ca.pool}},
		{name: "plain", kopts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", user, password)}, secrets: []secret.Secret{pw},
			cluster:  cluster.Cluster{Auth: cluster.AuthPlain, TLS: &no, AllowPlaintextCredentials: true, User: user, PasswordSecret: "kafka-creds/password"},
			producer: kafkaauth.Config{Mode: kafkaauth.Plain, User: user, Password: password}},
		{name: "scram-sha-256", kopts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", user, password)}, secrets: []secret.Secret{pw},
			cluster:  cluster.Cluster{Auth: cluster.AuthScramSHA256, TLS: &no, User: user, PasswordSecret: "kafka-creds/password"},
			producer: kafkaauth.Config{Mode: kafkaauth.ScramSHA256, User: user, Password: password}},
		{name: "scram-sha-512-tls", kopts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password), kfake.TLS(serverTLS)},
			secrets:  []secret.Secret{pw, ca1},
			cluster:  cluster.Cluster{User: user, PasswordSecret: "kafka-creds/password", CACertSecret: "kafka-ca"}, // auto
			producer: kafkaauth.Config{Mode: kafkaauth.ScramSHA512, TLS: true, RootCAs: ca.pool, User: user, Password: password}},
		{name: "scram-user-in-secret", kopts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password)},
			secrets: []secret.Secret{{Name: "reference-creds", Type: secret.Generic, Data: map[string][]byte{"username": []byte(user), "password": []byte(password)}}},
			// The reference's SASL secret: the user name is in it too.
			cluster:  cluster.Cluster{PasswordSecret: "reference-creds/password", TLS: &no},
			producer: kafkaauth.Config{Mode: kafkaauth.ScramSHA512, User: user, Password: password}},
		{name: "mtls-pbes1-key", kopts: []kfake.Opt{kfake.TLS(mtlsServer)}, secrets: []secret.Secret{ca1, client},
			cluster:  cluster.Cluster{ClientCertSecret: "kafka-client", CACertSecret: "kafka-ca"}, // auto picks mtls
			producer: kafkaauth.Config{Mode: kafkaauth.MTLS, TLS: true, RootCAs: ca.pool, ClientCert: &clientCert}},
	}
}

func produceWith(t *testing.T, addrs []string, auth kafkaauth.Config, topic string, n int) {
	t.Helper()
	opts, err := auth.Opts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestEveryAuthModeDelivers runs one pipe per auth mode, each on a kfake
// cluster configured for that mode, through clusters and secrets as a user
// sets them up, and checks that every record arrives and no secret value
// shows in the logs.
func TestEveryAuthModeDelivers(t *testing.T) {
	const topic, n = "orders", 20
	ca := newTestCA(t)
	eng, logs := authEngine(t)
	ctx := context.Background()
	for _, tc := range authCases(t, ca) {
		t.Run(tc.name, func(t *testing.T) {
			kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, topic),
				kfake.GroupMinSessionTimeout(500 * time.Millisecond)}, tc.kopts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			produceWith(t, kc.ListenAddrs(), tc.producer, topic, n)
			for _, s := range tc.secrets {
				// Each case's brokers are new: the value is given again
				// with them (see TestSecretsGoOnlyToTheirBrokers).
				if s.Type.Binds() {
					s.Brokers = kc.ListenAddrs()
				}
				if _, err := eng.PutSecret(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			c := tc.cluster
			c.Name, c.BootstrapServers = tc.name, kc.ListenAddrs()
			if c, err = eng.PutCluster(ctx, c); err != nil {
				t.Fatal(err)
			}
			if got := c.EffectiveAuth(); got != string(tc.producer.Mode) {
				t.Fatalf("effective auth %s (%s), want %s", got, c.AuthReason(), tc.producer.Mode)
			}
			s := sink.New()
			srv := httptest.NewServer(s)
			defer srv.Close()
			if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: tc.name, Cluster: tc.name, Topics: []string{topic},
				Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "every record over "+tc.name, func() bool { return s.Stats().Accepted >= n })
			waitFor(t, 10*time.Second, "status OK", func() bool {
				p, err := eng.GetPipe(ctx, tc.name)
				return err == nil && p.Status.LastProcessingResult == pipe.ResultOK
			})
			// The lag monitor reaches the cluster with the same auth.
			waitFor(t, 10*time.Second, "lag measured as 0 over "+tc.name, func() bool {
				d, err := eng.Describe(ctx, tc.name)
				return err == nil && d.Lag != nil && d.Lag.Error == "" && len(d.Lag.Partitions) == 2 && d.Lag.Total == 0
			})
			if err := eng.DeletePipe(ctx, tc.name); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the pipe gone", func() bool {
				_, err := eng.GetPipe(ctx, tc.name)
				return err != nil
			})
		})
	}
	for _, planted := range []string{"pl4nted-s3cret-7c1e", fixturePassword, "PRIVATE KEY"} {
		if strings.Contains(logs.String(), planted) {
			t.Errorf("the log holds a secret value (%q)", planted)
		}
	}
	if !strings.Contains(logs.String(), `"auth":"mtls"`) {
		t.Errorf("the log does not say which auth mode a pipe uses")
	}
}

// TestAuthProblemsShowAndRecover misconfigures a cluster in each way the
// reference names, checks the pipe shows the reference's problem, then
// fixes it and checks the records arrive and the problem clears.
func TestAuthProblemsShowAndRecover(t *testing.T) {
	const topic, n = "orders", 5
	ca := newTestCA(t)
	eng, logs := authEngine(t)
	ctx := context.Background()
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
	const admin, adminPW = "admin", "admin-pw"

	result := func(name string) string {
		p, err := eng.GetPipe(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return p.Status.LastProcessingResult
	}
	run := func(t *testing.T, name string, kc *kfake.Cluster, producer kafkaauth.Config, c cluster.Cluster, wantProblem string, fix func()) {
		produceWith(t, kc.ListenAddrs(), producer, topic, n)
		c.Name, c.BootstrapServers = name, kc.ListenAddrs()
		if _, err := eng.PutCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
		s := sink.New()
		srv := httptest.NewServer(s)
		defer srv.Close()
		if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: name, Cluster: name, Topics: []string{topic},
			Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the problem "+wantProblem, func() bool { return strings.HasPrefix(result(name), "PROBLEM: "+wantProblem) })
		t.Logf("%s: %s", name, result(name))
		if s.Stats().Accepted != 0 {
			t.Fatalf("records were delivered despite %s", result(name))
		}
		fix()
		waitFor(t, 30*time.Second, "delivery after the fix", func() bool { return s.Stats().Accepted >= n })
		waitFor(t, 10*time.Second, "the problem to clear", func() bool { return result(name) == pipe.ResultOK })
	}

	t.Run("wrong SCRAM password", func(t *testing.T) {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.EnableSASL(),
			kfake.Superuser("SCRAM-SHA-512", "alice", "right-pw"), kfake.GroupMinSessionTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		if _, err := eng.PutSecret(ctx, secret.Secret{Name: "scram", Type: secret.Generic, Data: map[string][]byte{"password": []byte("wr0ng-pw-5e3a")}}); err != nil {
			t.Fatal(err)
		}
		no := false
		run(t, "scram", kc, kafkaauth.Config{Mode: kafkaauth.ScramSHA512, User: "alice", Password: "right-pw"},
			cluster.Cluster{User: "alice", PasswordSecret: "scram/password", TLS: &no}, "SASL authentication failed", func() {
				if _, err := eng.PutSecret(ctx, secret.Secret{Name: "scram", Type: secret.Generic, Data: map[string][]byte{"password": []byte("right-pw")}}); err != nil {
					t.Fatal(err)
				}
			})
	})

	t.Run("missing ACL", func(t *testing.T) {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.EnableSASL(), kfake.EnableACLs(),
			kfake.Superuser("SCRAM-SHA-512", admin, adminPW), kfake.GroupMinSessionTimeout(500*time.Millisecond),
			kfake.User("SCRAM-SHA-512", "bob", "bob-pw",
				kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true},
				kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true},
				kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true},
				kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true},
			))
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		if _, err := eng.PutSecret(ctx, secret.Secret{Name: "bob", Type: secret.Generic, Data: map[string][]byte{"password": []byte("bob-pw")}}); err != nil {
			t.Fatal(err)
		}
		no := false
		adminCfg := kafkaauth.Config{Mode: kafkaauth.ScramSHA512, User: admin, Password: adminPW}
		run(t, "acl", kc, adminCfg, cluster.Cluster{User: "bob", PasswordSecret: "bob/password", TLS: &no},
			"Cluster failed to authorize Sluice", func() {
				if !strings.Contains(result("acl"), "DescribeConfigs") {
					t.Errorf("the problem does not name the missing permission: %s", result("acl"))
				}
				opts, err := adminCfg.Opts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(kc.ListenAddrs()...))...)
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				b := kadm.NewACLs().Allow("User:bob").AllowHosts().Clusters().Operations(kadm.OpDescribeConfigs).ResourcePatternType(kadm.ACLPatternLiteral)
				res, err := kadm.NewClient(cl).CreateACLs(ctx, b)
				if err == nil {
					for _, r := range res {
						err = errors.Join(err, r.Err)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			})
	})

	t.Run("mTLS with an untrusted certificate", func(t *testing.T) {
		// The brokers trust ca's certificates only, not the fixtures' CA,
		// until the fix swaps the pool; the listener reads it per handshake.
		var clientCAs atomic.Pointer[x509.CertPool]
		clientCAs.Store(ca.pool)
		mtlsServer := serverTLS.Clone()
		mtlsServer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := serverTLS.Clone()
			c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs.Load()
			return c, nil
		}
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.TLS(mtlsServer),
			kfake.GroupMinSessionTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		for _, s := range []secret.Secret{
			{Name: "mtls-ca", Type: secret.TLSCA, Data: map[string][]byte{"certificate": ca.certPEM}},
			{Name: "mtls-client", Type: secret.TLSClient, Data: map[string][]byte{"certificate": fixture(t, "ec-chain.pem"),
				"privateKey": fixture(t, "ec-key-pbes2-aes256.pem"), "privateKeyPassword": []byte(fixturePassword)}},
		} {
			if _, err := eng.PutSecret(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		// The test producer uses a certificate the brokers trust.
		producerCert := clientCertFrom(t, ca)
		run(t, "mtls", kc, kafkaauth.Config{Mode: kafkaauth.MTLS, TLS: true, RootCAs: ca.pool, ClientCert: &producerCert},
			cluster.Cluster{ClientCertSecret: "mtls-client", CACertSecret: "mtls-ca"}, "Server failed to authenticate Sluice", func() {
				// Trust the fixtures' CA as well: the brokers now accept it.
				pool := ca.pool.Clone()
				pool.AppendCertsFromPEM(fixture(t, "ca.pem"))
				clientCAs.Store(pool)
			})
	})

	t.Run("wrong key password", func(t *testing.T) {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.TLS(serverTLS),
			kfake.GroupMinSessionTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		client := secret.Secret{Name: "bad-key", Type: secret.TLSClient, Data: map[string][]byte{"certificate": fixture(t, "rsa-chain.pem"),
			"privateKey": fixture(t, "rsa-key-pbes1-sha1-3des.pem"), "privateKeyPassword": []byte("n0t-the-pw-8d1f")}}
		for _, s := range []secret.Secret{{Name: "tls-ca", Type: secret.TLSCA, Data: map[string][]byte{"certificate": ca.certPEM}}, client} {
			if _, err := eng.PutSecret(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		run(t, "badkey", kc, kafkaauth.Config{Mode: kafkaauth.TLS, TLS: true, RootCAs: ca.pool},
			cluster.Cluster{ClientCertSecret: "bad-key", CACertSecret: "tls-ca"}, "Provided certificate or private key is invalid", func() {
				client.Data["privateKeyPassword"] = []byte(fixturePassword)
				if _, err := eng.PutSecret(ctx, client); err != nil {
					t.Fatal(err)
				}
			})
	})

	for _, planted := range []string{"wr0ng-pw-5e3a", "n0t-the-pw-8d1f", "bob-pw", fixturePassword} {
		if strings.Contains(logs.String(), planted) {
			t.Errorf("the log holds a secret value (%q)", planted)
		}
	}
	if n := strings.Count(logs.String(), "SASL authentication failed"); n > 3 {
		t.Errorf("the SASL problem was logged %d times; once per change is the rule", n)
	}
}

// clientCertFrom issues a client certificate signed by ca.
func clientCertFrom(t *testing.T, ca testCA) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "producer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, &key.PublicKey, ca.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestInsecureClusterWarns: turning TLS verification off is allowed by
// name, and logged as the risk it is.
func TestInsecureClusterWarns(t *testing.T) {
	eng, logs := authEngine(t)
	if _, err := eng.PutCluster(context.Background(), cluster.Cluster{Name: "lab", BootstrapServers: []string{"127.0.0.1:9094"},
		Auth: cluster.AuthTLS, InsecureSkipTLSVerify: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"cluster skips TLS certificate verification`) || !strings.Contains(logs.String(), `"cluster":"lab"`) {
		t.Errorf("no warning for a cluster without TLS verification:\n%s", logs.String())
	}
	before := strings.Count(logs.String(), "skips TLS")
	if _, err := eng.PutCluster(context.Background(), cluster.Cluster{Name: "prod", BootstrapServers: []string{"127.0.0.1:9094"},
		Auth: cluster.AuthTLS}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs.String(), "skips TLS") != before {
		t.Error("a verified cluster was warned about")
	}
}

// TestSecretsGoOnlyToTheirBrokers: a token holder who may edit clusters
// re-points a cluster that uses a stored password at a broker they run, or
// makes a new cluster there with it. Both are refused, naming the secret
// and the host, and no password reaches that broker, which records every
// SASL exchange; giving the secret's value again with the new brokers is
// what allows them, and then the broker does see a login (the positive
// control: had the refusals failed, it would have seen the password).
func TestSecretsGoOnlyToTheirBrokers(t *testing.T) {
	const password = "pl4nted-b0und-s3cret"
	eng, _ := authEngine(t)
	ctx := context.Background()
	evilKafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "their-own"))
	if err != nil {
		t.Fatal(err)
	}
	defer evilKafka.Close()
	var seen syncBuffer
	evilKafka.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		evilKafka.KeepControl()
		seen.Write(req.(*kmsg.SASLAuthenticateRequest).SASLAuthBytes)
		return nil, nil, false
	})
	evil := evilKafka.ListenAddrs()[0]

	if _, err := eng.PutSecret(ctx, secret.Secret{Name: "kafka-creds", Type: secret.Generic,
		Data: map[string][]byte{"username": []byte("alice"), "password": []byte(password)}}); err != nil {
		t.Fatal(err)
	}
	no := false
	prod := cluster.Cluster{Name: "prod", BootstrapServers: []string{"127.0.0.1:19092"}, Auth: cluster.AuthPlain, TLS: &no,
		AllowPlaintextCredentials: true, PasswordSecret: "kafka-creds/password"}
	if _, err := eng.PutCluster(ctx, prod); err != nil {
		t.Fatal(err)
	}
	if m, err := eng.GetSecret(ctx, "kafka-creds"); err != nil || !slices.Equal(m.Brokers, []string{"127.0.0.1:19092"}) {
		t.Fatalf("the first cluster did not bind the secret: %+v, %v", m, err)
	}
	if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: "orders", Cluster: "prod", Topics: []string{"orders"},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:1/"}}}); err != nil {
		t.Fatal(err)
	}
	repointed := prod
	repointed.BootstrapServers = []string{evil}
	other := prod
	other.Name = "evil"
	other.BootstrapServers = []string{evil}
	for _, c := range []cluster.Cluster{repointed, other} {
		_, err := eng.PutCluster(ctx, c)
		if err == nil || !strings.Contains(err.Error(), `secret "kafka-creds" may be sent only to the hosts it is bound to (127.0.0.1:19092)`) ||
			!strings.Contains(err.Error(), evil) {
			t.Errorf("cluster %s on %s: %v, want a refusal naming the secret and the host", c.Name, evil, err)
		}
	}
	// A new password without brokers stays where the secret was sent.
	if _, err := eng.PutSecret(ctx, secret.Secret{Name: "kafka-creds", Type: secret.Generic,
		Data: map[string][]byte{"username": []byte("alice"), "password": []byte(password + "-2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PutCluster(ctx, other); err == nil {
		t.Error("after a new value without brokers, the secret could be sent to a new host")
	}
	if c, _ := eng.GetCluster(ctx, "prod"); !slices.Equal(c.BootstrapServers, prod.BootstrapServers) {
		t.Errorf("prod was re-pointed: %v", c.BootstrapServers)
	}
	// Whoever gives the value again decides where it goes: the broker
	// then sees that value, and never the ones before.
	if _, err := eng.PutSecret(ctx, secret.Secret{Name: "kafka-creds", Type: secret.Generic, Brokers: []string{"127.0.0.1:19092", evil},
		Data: map[string][]byte{"username": []byte("alice"), "password": []byte("their-own")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.PutCluster(ctx, other); err != nil {
		t.Fatalf("with the value given again with its brokers: %v", err)
	}
	if _, err := eng.CreatePipe(ctx, pipe.Spec{Name: "evil", Cluster: "evil", Topics: []string{"orders"},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:1/"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the broker to see a login", func() bool { return strings.Contains(seen.String(), "their-own") })
	if strings.Contains(seen.String(), password) {
		t.Fatal("a stored password reached the broker it was not bound to")
	}
}

// TestTargetCredentialsFromSecrets: an HTTP target gets its API key header
// and a valid HMAC signature from a secret; the key is in no log line, API
// answer or store file; the secret is bound to the target's host, so a
// second pipe cannot send it elsewhere; a URL with user info is refused.
func TestTargetCredentialsFromSecrets(t *testing.T) {
	const apiKey, signing = "pl4nted-api-k3y", "pl4nted-s1gning-k3y"
	const topic, n = "orders", 10
	c := newCluster(t, topic, 1)
	produce(t, c.ListenAddrs(), topic, 1, n, time.Time{})
	var (
		mu       sync.Mutex
		keys     []string
		verified int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, mac, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("X-Sluice-Signature"), "t="), ",v1=")
		m := hmac.New(sha256.New, []byte(signing))
		m.Write([]byte(ts + "." + string(body)))
		mu.Lock()
		keys = append(keys, r.Header.Get("X-Api-Key"))
		if hex.EncodeToString(m.Sum(nil)) == mac {
			verified++
		}
		mu.Unlock()
	}))
	defer srv.Close()
	eng, logs := authEngine(t)
	ctx := context.Background()
	if _, err := eng.PutSecret(ctx, secret.Secret{Name: "hook", Type: secret.Generic,
		Data: map[string][]byte{"apiKey": []byte(apiKey), "signing": []byte(signing)}}); err != nil {
		t.Fatal(err)
	}
	spec := pipe.Spec{Name: "hooked", BootstrapServers: c.ListenAddrs(), Topics: []string{topic}, BatchSize: 5,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL + "/in?team=payments", Headers: map[string]string{"X-Api-Key": "secret:hook/apiKey", "X-Team": "payments"},
			SigningSecret: "hook/signing"}}}
	if _, err := eng.CreatePipe(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "signed deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return verified >= 2
	})
	mu.Lock()
	for _, k := range keys {
		if k != apiKey {
			t.Errorf("a delivery carried X-Api-Key %q", k)
		}
	}
	mu.Unlock()

	// Bound to the target's host: another host is refused.
	other := spec
	other.Name, other.Target.HTTP.URL = "leak", "https://attacker.example/collect"
	if _, err := eng.CreatePipe(ctx, other); err == nil || !strings.Contains(err.Error(), `secret "hook" may be sent only to the hosts it is bound to`) ||
		!strings.Contains(err.Error(), "attacker.example:443") {
		t.Errorf("a pipe sending the secret to another host: %v", err)
	}
	other.Target = pipe.Target{HTTP: &pipe.HTTPTarget{URL: "https://user:pw@hooks.example.com/"}}
	if _, err := eng.CreatePipe(ctx, other); err == nil || !strings.Contains(err.Error(), "credentials in the URL") {
		t.Errorf("a URL with user info: %v", err)
	}

	p, err := eng.GetPipe(ctx, "hooked")
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(p)
	d, _ := eng.Describe(ctx, "hooked")
	described, _ := json.Marshal(d)
	if err := eng.DeletePipe(ctx, "hooked"); err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the log": logs.String(), "the pipe": string(answer), "describe": string(described)} {
		for _, planted := range []string{apiKey, signing} {
			if strings.Contains(text, planted) {
				t.Errorf("%s holds a secret value", what)
			}
		}
	}
	if strings.Contains(logs.String(), "team=payments") {
		t.Error("the log holds the target URL's query")
	}
}

// TestTargetOAuth: a pipe's target gets a bearer token from the client
// credentials grant, with the client's id and secret from a stored secret
// that is bound to the token endpoint's host.
func TestTargetOAuth(t *testing.T) {
	const clientSecret = "pl4nted-cl1ent-s3cret"
	const topic, n = "orders", 10
	c := newCluster(t, topic, 1)
	produce(t, c.ListenAddrs(), topic, 1, n, time.Time{})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, sec, _ := r.BasicAuth()
		if id == "" {
			id, sec = r.FormValue("client_id"), r.FormValue("client_secret")
		}
		if id != "sluice" || sec != clientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"granted","token_type":"Bearer","expires_in":3600}`)
	}))
	defer idp.Close()
	var bearer atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer granted" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		bearer.Add(1)
	}))
	defer srv.Close()
	eng, logs := authEngine(t)
	ctx := context.Background()
	if _, err := eng.PutSecret(ctx, secret.Secret{Name: "idp", Type: secret.Generic,
		Data: map[string][]byte{"clientId": []byte("sluice"), "clientSecret": []byte(clientSecret)}}); err != nil {
		t.Fatal(err)
	}
	spec := pipe.Spec{Name: "oauth", BootstrapServers: c.ListenAddrs(), Topics: []string{topic}, BatchSize: 5,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL, OAuth: &pipe.OAuth{TokenURL: idp.URL + "/token", ClientSecret: "idp"}}}}
	if _, err := eng.CreatePipe(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "deliveries with the bearer token", func() bool { return bearer.Load() >= 2 })
	if m, _ := eng.GetSecret(ctx, "idp"); !slices.Equal(m.Brokers, []string{strings.TrimPrefix(idp.URL, "http://")}) {
		t.Errorf("the client secret is bound to %v, want the token endpoint's host", m.Brokers)
	}
	if strings.Contains(logs.String(), clientSecret) {
		t.Error("the log holds the client secret")
	}
}
