package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClustersAndSecretsCommands sets up secrets, a cluster and a pipe on
// it through the CLI, and checks that no output ever shows a secret value.
func TestClustersAndSecretsCommands(t *testing.T) {
	const planted = "pl4nted-cli-s3cret-0d2c"
	sluice, _ := server(t)
	var all strings.Builder
	ok := func(args ...string) result {
		t.Helper()
		r := mustOK(t, sluice(args...))
		all.WriteString(r.stdout + r.stderr)
		return r
	}
	fail := func(want string, args ...string) {
		t.Helper()
		r := sluice(args...)
		all.WriteString(r.stdout + r.stderr)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("sluice %v: exit %d, stderr %q; want a failure saying %q", args, r.code, r.stderr, want)
		}
	}

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password.txt")
	if err := os.WriteFile(pwFile, []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonFile := filepath.Join(dir, "creds.json")
	if err := os.WriteFile(jsonFile, []byte(`{"username":"alice","password":"`+planted+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ok("secrets", "create", "generic", "msk-creds", "--literal", "user=alice", "--from-file", "password="+pwFile)
	if !strings.Contains(r.stdout, "password, user") {
		t.Errorf("create output: %s", r.stdout)
	}
	ok("secrets", "create", "generic", "json-creds", "--from-json", jsonFile)
	ok("secrets", "get", "msk-creds")
	ok("secrets", "get", "msk-creds", "-o", "json")
	r = ok("secrets", "list")
	if !strings.Contains(r.stdout, "json-creds") || !strings.Contains(r.stdout, "password,username") {
		t.Errorf("list: %s", r.stdout)
	}
	fail("--cert is required", "secrets", "create", "tls-ca", "ca")
	fail("privateKey", "secrets", "create", "tls-client", "c", "--from-json", jsonFile)

	fail("--client-cert-secret", "clusters", "set", "bad", "--bootstrap-servers", "b-1:9096", "--auth", "mtls")
	fail("does not exist", "clusters", "set", "msk", "--bootstrap-servers", "b-1:9096", "--user", "alice", "--password-secret", "nope/password")
	r = ok("clusters", "set", "msk", "--msk", "--arn", "arn:aws:kafka:us-east-1:123456789012:cluster/msk/abc-1",
		"--bootstrap-servers", "b-1:9096,b-2:9096", "--user", "alice", "--password-secret", "msk-creds/password")
	if !strings.Contains(r.stdout, "scram-sha-512") {
		t.Errorf("set output does not name the auth mode: %s", r.stdout)
	}
	r = ok("clusters", "get", "msk")
	for _, want := range []string{"scram-sha-512", "msk-creds/password", "arn:aws:kafka:us-east-1:123456789012:cluster/msk/abc-1"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("clusters get lacks %q:\n%s", want, r.stdout)
		}
	}
	ok("clusters", "get", "msk", "-o", "json")
	ok("clusters", "list")

	ok("pipes", "create", "orders", "--cluster", "msk", "--topic", "orders", "--target", "http://127.0.0.1:9000/")
	r = ok("pipes", "get", "orders", "-o", "json")
	if !strings.Contains(r.stdout, `"cluster": "msk"`) || !strings.Contains(r.stdout, `"lastProcessingResult"`) {
		t.Errorf("pipes get -o json: %s", r.stdout)
	}
	fail("only when the pipe is created", "pipes", "update", "orders", "--cluster", "other")
	fail("used by pipes", "clusters", "delete", "msk")
	fail("used by clusters", "secrets", "delete", "msk-creds")
	// Said once, in one sentence with its fix.
	for args, want := range map[string]string{"clusters delete msk": `Error: cluster "msk" is used by pipes [orders]: delete them first, or point them at another cluster`,
		"secrets delete msk-creds": `Error: secret "msk-creds" is used by clusters [msk]: point them elsewhere first`} {
		r := sluice(strings.Fields(args)...)
		if got := strings.TrimSpace(r.stderr); got != want {
			t.Errorf("sluice %s: %q, want %q", args, got, want)
		}
	}
	ok("pipes", "delete", "orders")
	ok("clusters", "delete", "msk")
	ok("secrets", "delete", "msk-creds")
	fail("not found", "secrets", "get", "msk-creds")

	if strings.Contains(all.String(), planted) {
		t.Fatalf("CLI output shows a secret value:\n%s", all.String())
	}
}

// TestSecretBrokers: --brokers binds a secret where it may be sent; get
// and list show it; a bad entry names itself.
func TestSecretBrokers(t *testing.T) {
	sluice, _ := server(t)
	r := mustOK(t, sluice("secrets", "create", "generic", "creds", "--literal", "password=p", "--brokers", "b-1.example.com:9096,*.kafka.example.com:9096"))
	if !strings.Contains(r.stdout, "it may be sent only to b-1.example.com:9096, *.kafka.example.com:9096") {
		t.Errorf("create: %s", r.stdout)
	}
	if r := mustOK(t, sluice("secrets", "get", "creds")); !strings.Contains(r.stdout, "Brokers:        b-1.example.com:9096,*.kafka.example.com:9096") {
		t.Errorf("get: %s", r.stdout)
	}
	mustOK(t, sluice("secrets", "create", "generic", "loose", "--literal", "password=p"))
	if r := mustOK(t, sluice("secrets", "list")); !strings.Contains(r.stdout, "(the first cluster to use it)") {
		t.Errorf("list: %s", r.stdout)
	}
	if r := sluice("secrets", "create", "generic", "bad", "--literal", "password=p", "--brokers", "kafka://h:1"); r.code != 1 || !strings.Contains(r.stderr, `broker "kafka://h:1": give host:port without a scheme`) {
		t.Errorf("bad broker: %d %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "password=p") {
		t.Error("a value was printed")
	}
}
