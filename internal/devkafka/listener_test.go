package devkafka

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// erring fails its first n Accepts with err, then accepts for real.
type erring struct {
	net.Listener
	n   atomic.Int32
	err error
}

func (e *erring) Accept() (net.Conn, error) {
	if e.n.Add(-1) >= 0 {
		return nil, e.err
	}
	return e.Listener.Accept()
}

// TestListenerOutlastsTooManyOpenFiles: an accept that fails with EMFILE is
// logged with its fix and tried again, and the connection waiting is then
// accepted; a closed listener still ends the loop.
func TestListenerOutlastsTooManyOpenFiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := &erring{Listener: ln, err: fmt.Errorf("accept tcp: %w", syscall.EMFILE)}
	inner.n.Store(3)
	var logs bytes.Buffer
	var waits []time.Duration
	l := &patientListener{Listener: inner, log: slog.New(slog.NewTextHandler(&logs, nil)), sleep: func(d time.Duration) { waits = append(waits, d) }}
	defer l.Close()

	dialed := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept = %v, want the dialed connection after the EMFILEs", err)
	}
	conn.Close()
	if err := <-dialed; err != nil {
		t.Fatal(err)
	}
	if len(waits) != 3 || waits[0] != 5*time.Millisecond || waits[2] != 20*time.Millisecond {
		t.Errorf("waited %v, want 5ms, 10ms, 20ms", waits)
	}
	if out := logs.String(); strings.Count(out, "out of file descriptors") != 1 || !strings.Contains(out, "ulimit -n") {
		t.Errorf("log %q, want one line naming the cause and the fix", out)
	}

	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
