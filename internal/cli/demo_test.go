package cli

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/api/apitest"
)

// TestDemoTwiceOnOneDataDir: a second `dev --demo` on the data dir of the
// first finds the pipe it left and aims it at its own endpoint, instead of
// failing with "pipe already exists".
func TestDemoTwiceOnOneDataDir(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := apitest.NewService(t)
	first, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := svc.GetPipe(t.Context(), demoPipe)
	first.stop()
	second, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatalf("second demo on the same store: %v", err)
	}
	defer second.stop()
	p2, err := svc.GetPipe(t.Context(), demoPipe)
	if err != nil || p2.UUID != p1.UUID || p2.Target.URL == p1.Target.URL || !strings.HasPrefix(p2.Target.URL, "http://127.0.0.1:") {
		t.Fatalf("after the second demo: %+v (first %+v), %v; want the same pipe aimed at the new endpoint", p2.Target, p1.Target, err)
	}
}

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

// TestPlainDevParksTheDemoPipe: a plain dev after --demo disables the
// demo's pipe, whose endpoint is gone, and leaves a user's pipe named demo.
func TestPlainDevParksTheDemoPipe(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := apitest.NewService(t)
	d, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	var out bytes.Buffer
	if err := parkDemoPipe(t.Context(), &out, svc); err != nil {
		t.Fatal(err)
	}
	p, _ := svc.GetPipe(t.Context(), demoPipe)
	if p.IsEnabled() || !strings.Contains(out.String(), "is disabled") {
		t.Fatalf("after a plain dev the demo pipe is enabled=%v; said %q", p.IsEnabled(), out.String())
	}
	// --demo again turns it back on.
	d, err = startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	if p, _ := svc.GetPipe(t.Context(), demoPipe); !p.IsEnabled() {
		t.Fatal("--demo did not enable the demo pipe again")
	}
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
