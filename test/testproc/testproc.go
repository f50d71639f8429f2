// Package testproc runs the sluice binary as a child process, for the tests
// that need a real process (a SIGKILL, a second member of a group, the CLI
// as a user runs it): build the binary once, start it and wait for its API,
// signal it, and run the CLI against it.
package testproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/sluice into a temporary directory; remove it with
// the returned function. Call it from TestMain.
func Build() (binary string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		return "", nil, err
	}
	binary = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", binary, "github.com/sluice-dev/sluice/cmd/sluice")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building sluice: %w", err)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}

// FreeAddr returns a loopback host:port nothing listens on.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Buffer is a bytes.Buffer safe for a child's output and a test reading it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proc is a running sluice process with an API.
type Proc struct {
	Name   string
	Binary string
	// API is the host:port of its API.
	API string
	// Out is its stdout and stderr.
	Out *Buffer
	// Token is what CLI sends as SLUICE_TOKEN: `serve` requires one, and
	// Start makes one for it.
	Token string

	t      *testing.T
	cmd    *exec.Cmd
	exited chan error
}

// Start runs binary with args and waits until the API at api answers
// /healthz. The test's cleanup kills it if it still runs, and prints its
// output if the test failed.
func Start(t *testing.T, binary, name, api string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Binary: binary, API: api, Out: &Buffer{}, t: t, exited: make(chan error, 1)}
	if len(args) > 2 && args[0] == "serve" && args[1] == "--config" {
		p.Token = CreateToken(t, binary, args[2])
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.Out, p.Out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.Name, p.Out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited at start: %v\n%s", name, err, p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", name, p.Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig and waits for the process to exit; any signal but
// SIGKILL must end in a clean exit.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.exited:
		if sig != syscall.SIGKILL && err != nil {
			p.t.Fatalf("%s did not stop cleanly on %v: %v\n%s", p.Name, sig, err, p.Out.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s did not exit after %v", p.Name, sig)
	}
}

// CreateToken runs `sluice tokens create` for the serve config at config
// and returns the token, for Proc.Token: `serve` requires one.
func CreateToken(t *testing.T, binary, config string) string {
	t.Helper()
	// A name per call: a restarted process of the same config needs one too.
	name := fmt.Sprintf("test-%d", time.Now().UnixNano())
	out, err := exec.Command(binary, "tokens", "create", name, "--config", config, "-o", "json").Output()
	if err != nil {
		t.Fatalf("sluice tokens create: %v", err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &tok); err != nil || tok.Token == "" {
		t.Fatalf("sluice tokens create printed %q: %v", out, err)
	}
	return tok.Token
}

// CLI runs the sluice CLI against the process's API and returns its
// stdout; a failure fails the test.
func (p *Proc) CLI(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(p.Binary, args...)
	cmd.Env = append(os.Environ(), "SLUICE_API=http://"+p.API)
	if p.Token != "" {
		cmd.Env = append(cmd.Env, "SLUICE_TOKEN="+p.Token)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("sluice %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
