package kafkaauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// connTestTimeout bounds every broker interaction in these tests, so that a
// client that retries forever fails the test instead of hanging it.
const connTestTimeout = 10 * time.Second

// connCA is a throwaway certificate authority for one test.
type connCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func connNewCA(t *testing.T, name string) *connCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          connSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &connCA{cert: cert, key: key, pool: pool}
}

func connSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// issue signs a leaf certificate: a server certificate for 127.0.0.1 and
// localhost, or a client certificate named cn.
func (ca *connCA) issue(t *testing.T, cn string, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: connSerial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// connServerTLS is the listener config of a TLS broker whose certificate ca
// signed. With clientCAs set, the broker requires a client certificate signed
// by one of them.
func connServerTLS(t *testing.T, ca *connCA, clientCAs *x509.CertPool) *tls.Config {
	t.Helper()
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{ca.issue(t, "broker", false)},
	}
	if clientCAs != nil {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = clientCAs
	}
	return tc
}

// connCluster starts a one-broker kfake cluster with a seeded topic and
// closes it when the test ends.
func connCluster(t *testing.T, topic string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, topic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// connClient builds a kgo client for the cluster from cfg.Opts plus extra
// options, and closes it when the test ends.
func connClient(t *testing.T, c *kfake.Cluster, cfg Config, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), connTestTimeout)
	defer cancel()
	opts, err := cfg.Opts(ctx)
	if err != nil {
		t.Fatalf("Opts(%v): %v", cfg, err)
	}
	opts = append(opts, kgo.SeedBrokers(c.ListenAddrs()...))
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// connRoundTrip produces a few records with one client and consumes them back
// with a group consumer, both built from cfg, and fails the test unless every
// record arrives.
func connRoundTrip(t *testing.T, c *kfake.Cluster, topic string, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), connTestTimeout)
	defer cancel()

	const n = 5
	producer := connClient(t, c, cfg)
	want := make(map[string]bool, n)
	for i := range n {
		v := fmt.Sprintf("record-%d", i)
		want[v] = true
		r := &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce with %v: %v", cfg, err)
		}
	}

	consumer := connClient(t, c, cfg,
		kgo.ConsumerGroup("g-"+topic),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	for len(want) > 0 {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume with %v: %d records missing: %v", cfg, len(want), err)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consume with %v: %s[%d]: %v", cfg, e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { delete(want, string(r.Value)) })
	}
}

// connExpectFail builds a client from cfg and fails the test unless talking
// to the cluster fails within a bounded time. It returns the error.
func connExpectFail(t *testing.T, c *kfake.Cluster, cfg Config) error {
	t.Helper()
	cl := connClient(t, c, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), connTestTimeout)
	defer cancel()
	err := cl.Ping(ctx)
	if err == nil {
		t.Fatalf("Ping with %v succeeded, want an error", cfg)
	}
	if ctx.Err() != nil {
		t.Fatalf("Ping with %v only failed by timing out: %v", cfg, err)
	}
	return err
}

// connMechanism returns the single SASL mechanism that opts configure, read
// back from a real client so the test sees what kgo will use.
func connMechanism(t *testing.T, opts []kgo.Opt) sasl.Mechanism {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	if len(ms) != 1 {
		t.Fatalf("opts configure %d SASL mechanisms, want 1", len(ms))
	}
	return ms[0]
}
