// Package target delivers batches to where a pipe sends them. A Target is
// one small interface; the policies (package stage) wrap it, and a pipe
// chooses its kind by the section of its spec that is set (see kind.go).
// Each kind is a file of its own: http.go is the one to copy.
package target

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Target delivers batches. Deliver makes one attempt and answers each
// record's outcome (batch.DeliveredAll when the target took them all,
// batch.FailedAll when it took none); the policies decide what happens
// next. Implementations must honour ctx and be safe for concurrent use by
// many partitions. Close releases what the target holds; no Deliver runs
// after it.
type Target interface {
	Deliver(ctx context.Context, b *batch.Batch) batch.Result
	Close() error
}

// Error is a failed HTTP delivery, with what the policies need to decide
// when to retry (batch.Throttle) and whether splitting the batch can help
// (batch.Unavailable).
type Error struct {
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// RetryAfterDelay is the delay the target asked for, or 0.
	RetryAfterDelay time.Duration
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

// RetryAfter is the delay the target asked for; see batch.Throttle.
func (e *Error) RetryAfter() time.Duration { return e.RetryAfterDelay }

// TargetUnavailable reports that no answer came (unreachable, timed out):
// the records are not to blame; see batch.Unavailable.
func (e *Error) TargetUnavailable() bool { return e.StatusCode == 0 && !errors.Is(e.Err, ErrOversized) }

// ErrOversized fails a batch whose single record is larger than the payload
// limit: retrying cannot help, so the record carries the condition
// batch.MaximumPayloadSizeExceeded and goes to the failure destination at
// once (without one it is retried on, so nothing is dropped).
var ErrOversized = errors.New("record larger than the payload limit")

// ProblemOf is the user-facing reason for a delivery error.
func ProblemOf(err error) string {
	var te *Error
	if errors.As(err, &te) {
		return te.Problem
	}
	return err.Error()
}

// HTTPStatus is the status the target answered, 0 when none came; failure
// records carry it (destination.HTTPStatuser).
func (e *Error) HTTPStatus() int { return e.StatusCode }
