package cli

import (
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
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
)

// groupSessionTimeout goes down to 1 s, for clusters whose
// group.min.session.timeout.ms allows it (and the reliability suite, which
// kills `sluice serve` and needs the partitions back quickly).
func TestServeGroupSessionTimeoutRange(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"1s", time.Second, ""},
		{"45s", 45 * time.Second, ""},
		{"30m", 30 * time.Minute, ""},
		{"999ms", 0, "groupSessionTimeout: 999ms: use 1s–30m"},
		{"31m", 0, "groupSessionTimeout: 31m0s: use 1s–30m"},
		{"soon", 0, `groupSessionTimeout: "soon": use a duration`},
	} {
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		if err := os.WriteFile(path, []byte("groupSessionTimeout: "+tc.value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadServeConfig(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.value, err, tc.err)
		case tc.err == "" && cfg.sessionTimeout != tc.want:
			t.Errorf("%s: session %s, want %s", tc.value, cfg.sessionTimeout, tc.want)
		}
	}
}

// sleepAfter takes a duration of at least a second, or never.
func TestServeSleepAfter(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   string
	}{
		{"", 0, ""},
		{"1s", time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"never", -1, ""},
		{"500ms", 0, `sleepAfter: "500ms": use a duration of at least 1s`},
		{"soon", 0, `sleepAfter: "soon": use a duration`},
	} {
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		if err := os.WriteFile(path, []byte("sleepAfter: \""+tc.value+"\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadServeConfig(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.value, err, tc.err)
		case tc.err == "" && cfg.sleepAfter != tc.want:
			t.Errorf("%q: sleepAfter %s, want %s", tc.value, cfg.sleepAfter, tc.want)
		}
	}
}

var servingRE = regexp.MustCompile(`Serving the Sluice API at (https?://\S+) `)

// startServe runs `sluice serve` with config until the test ends and
// returns it and its API URL.
func startServe(t *testing.T, config string) (*started, string) {
	t.Helper()
	s := startCmd(t, "serve", "--config", config)
	waitFor(t, "the serving line", func() bool { return servingRE.MatchString(s.stdout.String()) })
	return s, servingRE.FindStringSubmatch(s.stdout.String())[1]
}

func TestServeRequiresToken(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	config := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\n", dataDir))
	token := createToken(t, "ci", "--config", config)
	s, apiURL := startServe(t, config)
	if strings.Contains(s.stderr.String(), "no API tokens exist") {
		t.Errorf("warned of no tokens with one created: %s", s.stderr)
	}

	r := run(t, nil, "--api", apiURL, "pipes", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "Error: the Sluice API at "+apiURL+" requires a token") ||
		!strings.Contains(r.stderr, "sluice tokens create NAME") || !strings.Contains(r.stderr, "SLUICE_TOKEN") {
		t.Errorf("without a token: exit %d, stderr %q", r.code, r.stderr)
	}
	wrong := api.NewToken()
	r = run(t, nil, "--api", apiURL, "--token", wrong, "pipes", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "refused the token") || strings.Contains(r.stderr, wrong) {
		t.Errorf("wrong token: exit %d, stderr %q", r.code, r.stderr)
	}

	mustOK(t, run(t, nil, append([]string{"--api", apiURL, "--token", token}, createDemo...)...))
	if r := mustOK(t, run(t, map[string]string{"SLUICE_TOKEN": token}, "--api", apiURL, "pipes", "list")); !strings.Contains(r.stdout, "demo") {
		t.Errorf("with SLUICE_TOKEN: %s", r.stdout)
	}
	// The flag wins over the environment, both ways.
	mustOK(t, run(t, map[string]string{"SLUICE_TOKEN": wrong}, "--api", apiURL, "--token", token, "pipes", "list"))
	if r := run(t, map[string]string{"SLUICE_TOKEN": token}, "--api", apiURL, "--token", wrong, "pipes", "list"); r.code != 1 {
		t.Errorf("--token did not win over SLUICE_TOKEN")
	}
	// A pasted token's trailing newline is not part of it.
	mustOK(t, run(t, map[string]string{"SLUICE_TOKEN": token + "\n"}, "--api", apiURL, "pipes", "list"))

	// The probes stay open, for load balancers.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(apiURL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s without a token: %s", p, resp.Status)
		}
	}
	// The AWS CLI's way: the token as SigV4 access key id.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", apiURL+"/2015-03-31/event-source-mappings/", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+token+"/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 200 {
		t.Errorf("Lambda route with the token as access key id: %s", resp.Status)
	}

	// Tokens can be managed while serve runs (WAL).
	mustOK(t, run(t, nil, "tokens", "delete", "ci", "--config", config))
	if code := s.stop(t); code != 0 {
		t.Errorf("exit %d: %s", code, s.stderr)
	}
	if strings.Contains(s.stdout.String()+s.stderr.String(), token) {
		t.Error("serve printed or logged the token")
	}
}

// With no token yet, serve starts, says how to create one, and refuses
// everything until one exists; creating it needs no restart.
func TestServeWithoutTokens(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	config := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\n", dataDir))
	s, apiURL := startServe(t, config)
	if !strings.Contains(s.stderr.String(), "no API tokens exist") || !strings.Contains(s.stderr.String(), "sluice tokens create NAME") {
		t.Errorf("no warning naming 'sluice tokens create': %s", s.stderr)
	}
	if strings.Contains(s.stderr.String(), "no authentication") {
		t.Errorf("the old no-authentication warning remains: %s", s.stderr)
	}
	if r := run(t, nil, "--api", apiURL, "--token", api.NewToken(), "pipes", "list"); r.code != 1 || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("with no tokens: exit %d, stderr %q", r.code, r.stderr)
	}
	// Refusals are not cached: the new token works at once.
	token := createToken(t, "first", "--config", config)
	mustOK(t, run(t, nil, "--api", apiURL, "--token", token, "pipes", "list"))
}

func TestServeTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		body, want string
	}{
		{"tlsCertFile: a.crt\n", "tlsCertFile is set but tlsKeyFile is not"},
		{"tlsKeyFile: a.key\n", "tlsKeyFile is set but tlsCertFile is not"},
		{"memberName: worker/0\n", `memberName: "worker/0": use only letters, digits`},
		{"logformat: json\n", `unknown field "logformat": names are case-sensitive; the fields are apiAddr, dataDir, logFormat`},
		{"tlsCertFyle: a.crt\n", "the fields are apiAddr, dataDir, logFormat, groupSessionTimeout, sleepAfter, memberName, tlsCertFile, tlsKeyFile"},
		{fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\ntlsCertFile: %s\ntlsKeyFile: %s\n", dir, filepath.Join(dir, "no.crt"), filepath.Join(dir, "no.key")),
			"tlsCertFile " + filepath.Join(dir, "no.crt") + ", tlsKeyFile " + filepath.Join(dir, "no.key") + ": open "},
	} {
		r := run(t, nil, "serve", "--config", writeConfig(t, c.body))
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.body, r.code, r.stderr, c.want)
		}
	}
}

// testPKI writes a CA certificate, and a certificate for 127.0.0.1 it
// signed with its key, to dir.
func testPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sluice"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.crt", "CERTIFICATE", caDER), write("tls.crt", "CERTIFICATE", der), write("tls.key", "PRIVATE KEY", keyDER)
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := testPKI(t, dir)
	dataDir := filepath.Join(dir, "data")
	config := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\ntlsCertFile: %s\ntlsKeyFile: %s\n", dataDir, certFile, keyFile))
	token := createToken(t, "ci", "--config", config)
	_, apiURL := startServe(t, config)
	if !strings.HasPrefix(apiURL, "https://127.0.0.1:") {
		t.Fatalf("printed URL %s, want https://", apiURL)
	}

	mustOK(t, run(t, nil, append([]string{"--api", apiURL, "--token", token, "--api-ca-cert", caFile}, createDemo...)...))
	env := map[string]string{"SLUICE_API": apiURL, "SLUICE_TOKEN": token, "SLUICE_API_CA_CERT": caFile}
	if r := mustOK(t, run(t, env, "pipes", "list")); !strings.Contains(r.stdout, "demo") {
		t.Errorf("with SLUICE_API_CA_CERT: %s", r.stdout)
	}

	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		// The private CA is not trusted unless given.
		{nil, []string{"--api", apiURL, "--token", token}, "--api-ca-cert"},
		// Certificates are no proof of identity without the token.
		{nil, []string{"--api", apiURL, "--api-ca-cert", caFile}, "requires a token"},
		{nil, []string{"--api", "http" + strings.TrimPrefix(apiURL, "https"), "--token", token}, "the API serves HTTPS: use an https:// URL"},
		{nil, []string{"--api", "http" + strings.TrimPrefix(apiURL, "https"), "--api-ca-cert", caFile}, "--api-ca-cert: the API URL"},
		{nil, []string{"--api", apiURL, "--api-ca-cert", certFile + ".missing"}, "--api-ca-cert: open "},
		{nil, []string{"--api", apiURL, "--api-ca-cert", keyFile}, "no PEM certificate"},
		// The flag wins over the environment.
		{map[string]string{"SLUICE_API_CA_CERT": caFile}, []string{"--api", apiURL, "--token", token, "--api-ca-cert", keyFile}, "--api-ca-cert " + keyFile + ": no PEM certificate"},
	} {
		r := run(t, c.env, append(c.args, "pipes", "list")...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}

	// TLS 1.2 at least.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	for _, v := range []struct {
		max uint16
		ok  bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		// MinVersion 1.0 so that the refusal is the server's, not
		// this client's default minimum.
		conn, err := tls.Dial("tcp", strings.TrimPrefix(apiURL, "https://"), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: v.max})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != v.ok || (err != nil && !strings.Contains(err.Error(), "remote error")) {
			t.Errorf("TLS max version %x: handshake error %v, want success %v", v.max, err, v.ok)
		}
	}
}
