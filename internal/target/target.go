// Package target delivers batches to where a pipe sends them. A Target is
// one small interface; policy (retry, later failure destinations and
// throttling) wraps it.
package target

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/source"
)

// Target delivers one batch. A nil error means the target accepted the
// whole batch. Implementations must honour ctx and be safe for concurrent
// use by many partitions.
type Target interface {
	Deliver(ctx context.Context, b *source.Batch) error
}

// Error is a failed delivery, with what the policy needs to decide when to
// retry.
type Error struct {
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// RetryAfter is the delay the target asked for, or 0.
	RetryAfter time.Duration
	// Problem is the user-facing reason, without the "PROBLEM: " prefix.
	Problem string
	Err     error
}

func (e *Error) Error() string {
	// A Problem may already end with its cause ("target unreachable: dial
	// tcp …"), and saying it twice helps nobody.
	if e.Err != nil && !strings.HasSuffix(e.Problem, e.Err.Error()) {
		return fmt.Sprintf("%s: %v", e.Problem, e.Err)
	}
	return e.Problem
}

func (e *Error) Unwrap() error { return e.Err }

// ErrOversized fails a batch whose single record is larger than the payload
// limit: retrying cannot help, but the contract still retries it per policy
// until a failure destination takes it.
var ErrOversized = errors.New("record larger than the payload limit")

// ProblemOf is the user-facing reason for a delivery error.
func ProblemOf(err error) string {
	var te *Error
	if errors.As(err, &te) {
		return te.Problem
	}
	return err.Error()
}
