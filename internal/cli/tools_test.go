package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestProduceToNoBroker fails within seconds, naming the address, rather
// than after the produce timeout.
func TestProduceToNoBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := runWithStdin(t, "a\n", "produce", "--bootstrap-servers", addr, "--topic", "t")
	if r.code != 1 || !strings.Contains(r.stderr, "--bootstrap-servers "+addr+": no broker answered") {
		t.Errorf("produce to nothing: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestProduceToBroker: records arrive.
func TestProduceToBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := runWithStdin(t, "k:v\nk2:v2\n", "produce", "--bootstrap-servers", c.ListenAddrs()[0], "--topic", "t", "--key-separator", ":")
	if r.code != 0 || !strings.Contains(r.stderr, "produced 2 records to t") {
		t.Errorf("produce: exit %d, stderr %q", r.code, r.stderr)
	}
}

// runWithStdin runs the command with stdin.
func runWithStdin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(t.Context(), args, Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin), Getenv: func(string) string { return "" }})
	return result{out.String(), errOut.String(), code}
}

// TestFlagTypoSuggestion: an unknown flag close to a real one names it.
func TestFlagTypoSuggestion(t *testing.T) {
	r := run(t, nil, "pipes", "create", "x", "--bootstrap-server", "a:1")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown flag: --bootstrap-server; did you mean --bootstrap-servers?") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, nil, "pipes", "create", "x", "--zzzzzzzz"); strings.Contains(r.stderr, "did you mean") {
		t.Errorf("a far-off flag got a suggestion: %q", r.stderr)
	}
}
