package devkafka

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// patientListener keeps accepting after an error that passes, as net/http's
// server does. kfake's accept loop returns on any error, so one "too many
// open files" (the broker holds two files open per partition) would leave
// the broker up but deaf to every new connection, with nothing said. It
// says why, at most once per patienceLogEvery, and tries again.
type patientListener struct {
	net.Listener
	log *slog.Logger
	// sleep waits between tries; time.Sleep but in tests.
	sleep func(time.Duration)
}

const patienceLogEvery = 10 * time.Second

func (l *patientListener) Accept() (net.Conn, error) {
	var (
		delay  time.Duration
		logged time.Time
	)
	for {
		conn, err := l.Listener.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) {
			return conn, err
		}
		if time.Since(logged) >= patienceLogEvery {
			logged = time.Now()
			msg := "the dev broker cannot accept a connection; retrying"
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				msg = "the dev broker is out of file descriptors (it keeps two files open per partition): raise the limit (ulimit -n) or delete topics you no longer need; retrying"
			}
			l.log.Error(msg, "err", err)
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		l.sleep(delay)
	}
}
