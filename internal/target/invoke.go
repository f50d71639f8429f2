package target

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
)

// Invocation is a function's answer to one synchronous invocation.
type Invocation struct {
	// Payload is what the function returned, or its error document
	// ({"errorType", "errorMessage", ...}) when FunctionError is set.
	Payload []byte
	// FunctionError is set when the function failed: the reference's
	// X-Amz-Function-Error ("Unhandled", or "Handled" in old runtimes).
	FunctionError string
}

// Invoker calls a function synchronously with one payload: an AWS Lambda
// function through the Invoke API, or a handler Sluice hosts. A returned
// error means no answer of the function's came (throttled, unreachable,
// timed out, refused); a failed function is an Invocation with
// FunctionError. Safe for concurrent use.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (Invocation, error)
}

// FunctionError is a batch the function failed on: the handler's error
// type and message are the pipe's PROBLEM.
type FunctionError struct {
	Function string
	Type     string
	Message  string
}

func (e *FunctionError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("function %s failed: %s: %s", e.Function, e.Type, msg)
}

// NewFunctionError reads the error document of a failed invocation.
func NewFunctionError(function string, inv Invocation) *FunctionError {
	var doc struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	fe := &FunctionError{Function: function, Type: inv.FunctionError}
	if json.Unmarshal(inv.Payload, &doc) == nil && (doc.Type != "" || doc.Message != "") {
		if doc.Type != "" {
			fe.Type = doc.Type
		}
		fe.Message = doc.Message
	} else {
		fe.Message = printable(inv.Payload)
	}
	return fe
}

// InvokeError is an invocation that got no answer of the function's:
// throttled, refused, unreachable or timed out. Its methods tell the
// retry and concurrency policies what kind (batch.Throttle,
// batch.Unavailable, the HTTP status).
type InvokeError struct {
	// Status is the HTTP status of the invoke call, 0 when none came.
	Status int
	// RetryAfterDelay is the delay the service asked for, or 0.
	RetryAfterDelay time.Duration
	// Throttled marks the service's throttling (TooManyRequestsException,
	// or every process of a hosted function busy past the timeout).
	Throttled bool
	Problem   string
	Err       error
}

func (e *InvokeError) Error() string {
	if e.Err != nil && !strings.HasSuffix(e.Problem, e.Err.Error()) {
		return fmt.Sprintf("%s: %v", e.Problem, e.Err)
	}
	return e.Problem
}

func (e *InvokeError) Unwrap() error { return e.Err }

// RetryAfter is the delay asked for; a throttle without one still backs
// off (see batch.Throttle).
func (e *InvokeError) RetryAfter() time.Duration {
	if e.RetryAfterDelay == 0 && e.Throttled {
		return time.Second
	}
	return e.RetryAfterDelay
}

// TargetUnavailable: the records are not to blame.
func (e *InvokeError) TargetUnavailable() bool { return true }

// HTTPStatus is the invoke call's status (429 when throttled).
func (e *InvokeError) HTTPStatus() int {
	if e.Status == 0 && e.Throttled {
		return 429
	}
	return e.Status
}

// invokeTarget delivers each batch as one synchronous invocation of a
// function, in the pipe's event format: the core of the lambda and
// function kinds, which differ only in how they reach the function.
type invokeTarget struct {
	name    string // for PROBLEMs: the function's name or ARN
	inv     Invoker
	enc     *event.Encoder
	limit   int // the largest request body, bytes
	timeout time.Duration
	partial bool // honour a partial batch response
	closer  func() error
	bufs    sync.Pool // *[]byte: the encoded batches, reused once answered
}

func (t *invokeTarget) Close() error {
	if t.closer != nil {
		return t.closer()
	}
	return nil
}

// Deliver invokes the function once with the batch.
func (t *invokeTarget) Deliver(ctx context.Context, b *batch.Batch) batch.Result {
	if b.Oversized {
		return oversizedRecord(b, t.limit)
	}
	payload := b.Payload
	if payload == nil {
		// The invoker is done with the payload once it has answered, so
		// its buffer serves the next batch.
		bufp, _ := t.bufs.Get().(*[]byte)
		if bufp == nil {
			bufp = new([]byte)
		}
		*bufp = t.enc.Append((*bufp)[:0], b.Records)
		defer t.bufs.Put(bufp)
		payload = *bufp
	}
	if len(payload) > t.limit {
		return batch.FailedAll(b, oversizedBatch(len(payload), t.limit))
	}
	if t.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	inv, err := t.inv.Invoke(ctx, payload)
	if err != nil {
		return batch.FailedAll(b, err)
	}
	if inv.FunctionError != "" {
		return batch.FailedAll(b, NewFunctionError(t.name, inv))
	}
	if !t.partial {
		return batch.DeliveredAll(b)
	}
	return partialResult(b, inv.Payload)
}
