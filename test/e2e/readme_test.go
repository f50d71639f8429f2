package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// readmeBlock returns the n-th ```sh block (from 0) of the README section
// that starts with heading.
func readmeBlock(t *testing.T, heading string, n int) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("the README has no %q", heading)
	}
	if next := strings.Index(section, "\n## "); next >= 0 {
		section = section[:next]
	}
	blocks := strings.Split(section, "```sh\n")
	if len(blocks) <= n+1 {
		t.Fatalf("the README's %q has no sh block %d", heading, n)
	}
	block, _, _ := strings.Cut(blocks[n+1], "```")
	return block
}

// testTLS makes a CA, writes its certificate to caFile, and returns a
// server certificate for 127.0.0.1 it signed.
func testTLS(t *testing.T, caFile string) tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "walkthrough CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestREADMEWalkthrough runs the README's "Amazon MSK with the AWS CLI"
// commands as written, with the AWS CLI v2, against a broker that asks for
// SASL/SCRAM-SHA-512 over TLS as MSK's port 9096 does: only the addresses
// and the values the first block exports are the test's. The batches must
// reach the target as MSK events with the cluster's ARN.
func TestREADMEWalkthrough(t *testing.T) {
	need(t, "/usr/bin/aws")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	cert := testTLS(t, caFile)
	// The broker's CA stands in for the public CA MSK's certificates
	// chain to: Go reads the system roots from SSL_CERT_FILE.
	t.Setenv("SSL_CERT_FILE", caFile)
	const password = "walkthrough-pw"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "alice", password),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := strings.Join(kc.ListenAddrs(), ",")

	const arn = "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abcd-1234"
	s := sink.New()
	var sawMSK atomic.Bool
	s.Decide = func(ev *sink.Event) sink.Decision {
		if ev.EventSource == "aws:kafka" && ev.EventSourceArn == arn {
			sawMSK.Store(true)
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	// The first block's config, on a free port.
	api := freeAddr(t)
	config := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "apiAddr: %s\ndataDir: %s\n", api, filepath.Join(dir, "sluice-data")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "msk-password.txt"), []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not "serve --config" first: testproc would make the first token,
	// which the walkthrough makes itself.
	testproc.Start(t, binary, "sluice serve", api, "serve", "--log-level", "warn", "--config", config)

	block := strings.ReplaceAll(readmeBlock(t, "## Amazon MSK with the AWS CLI", 1), "127.0.0.1:8080", api)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(binary)+":/usr/bin:/bin",
		"CLUSTER_ARN="+arn, "BROKERS="+brokers, "TARGET="+srv.URL+"/",
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"EventSourceArn": "`+arn+`"`) {
		t.Errorf("list-event-source-mappings did not show the mapping on %s:\n%s", arn, out.String())
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic("orders"),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool(t, caFile)}), kgo.SASL(scram512("alice", password)))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 5 {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "the records at the target", func() bool { return s.Stats().Accepted >= 5 })
	if !sawMSK.Load() {
		t.Fatal(`the events lack "eventSource":"aws:kafka" with the cluster's ARN`)
	}
}

func pool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

func scram512(user, pass string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}
