// Package lockfile takes exclusive advisory locks on files, which the
// kernel releases when the holder closes them or dies (SIGKILL included),
// so a crashed process never leaves a stale lock behind.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrHeld is what Acquire wraps when another process holds the lock.
var ErrHeld = errors.New("held by another process")

// Lock is a held lock; Release gives it up.
type Lock struct{ f *os.File }

// Acquire takes the lock at path without waiting, and writes who holds it
// (pid and start time) into the file, for the error the next process
// gets: that error wraps ErrHeld and says who.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	ok, err := TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		b := make([]byte, 256)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := strings.TrimSpace(string(b[:n]))
		if holder == "" {
			holder = "a process that did not say which"
		}
		return nil, fmt.Errorf("%w (%s)", ErrHeld, holder)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+", since "+time.Now().UTC().Format(time.RFC3339)+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
