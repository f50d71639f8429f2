package host

import (
	"bytes"
	"log/slog"
	"sync"
)

// maxLogLine bounds a line of handler output held before it is logged:
// a handler that never writes a newline cannot hold memory.
const maxLogLine = 16 << 10

// lineLog logs a handler's output line by line, each with the request id
// of the invocation in flight, as the reference's log lines carry it.
type lineLog struct {
	log    *slog.Logger
	stream string
	p      *process

	mu  sync.Mutex
	buf []byte
}

func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			room := maxLogLine - len(l.buf)
			if len(b) < room {
				l.buf = append(l.buf, b...)
				return n, nil
			}
			l.buf = append(l.buf, b[:room]...)
			b = b[room:]
			l.flush()
			continue
		}
		l.buf = append(l.buf, b[:i]...)
		b = b[i+1:]
		l.flush()
	}
	return n, nil
}

// flush logs the line held; l.mu is held.
func (l *lineLog) flush() {
	line := bytes.TrimRight(l.buf, "\r")
	l.buf = l.buf[:0]
	if len(line) == 0 {
		return
	}
	l.log.Info("handler output", "request_id", l.p.requestID(), "stream", l.stream, "line", string(line))
}
