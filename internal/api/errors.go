package api

import (
	"errors"
	"github.com/sluice-dev/sluice/internal/fielderr"
	"net"
	"strings"
	"syscall"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// Error codes of the API's error body. They are few on purpose: a client
// branches on the code, and reads the message to a person.
const (
	CodeBadRequest           = "BadRequest"           // 400: the body is not a pipe spec in JSON
	CodeInvalidParameter     = "InvalidParameter"     // 400: the spec is JSON but invalid; see fields
	CodeForbidden            = "Forbidden"            // 403: refused as a browser's request (browser.go)
	CodeNotFound             = "NotFound"             // 404
	CodeMethodNotAllowed     = "MethodNotAllowed"     // 405
	CodeConflict             = "Conflict"             // 409: the name is taken
	CodeInUse                = "InUse"                // 409: the pipe is being deleted
	CodePrecondition         = "PreconditionFailed"   // 412: If-Match names an old revision
	CodeRequestTooLarge      = "RequestTooLarge"      // 413: the body is over MaxBodyBytes
	CodeUnsupportedMediaType = "UnsupportedMediaType" // 415: a body that is not application/json
	CodeInternal             = "Internal"             // 500: details are in the server log only
)

// errorBody is the JSON of every error response.
type errorBody struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Fields  []fieldJSON `json:"fields,omitempty"`
}

// fieldJSON is pipe.FieldError on the wire; pipe stays free of wire tags.
type fieldJSON struct {
	Field  string `json:"field"`
	Value  string `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// Error is an error response of the API, as the Client returns it. Its
// Error is the server's message, written for a person. It unwraps to
// pipe.ErrNotFound (404), pipe.ErrExists (409) or a *pipe.ValidationError
// (400 InvalidParameter), so code using a pipe.Service branches the same way
// whether the service is local or behind this API.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	// Fields lists every invalid field of a rejected spec.
	Fields []pipe.FieldError
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the pipe package's error for the response's code, or nil.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeNotFound:
		return pipe.ErrNotFound
	case CodeConflict:
		return pipe.ErrExists
	case CodeInUse:
		return pipe.ErrDeleting
	case CodePrecondition:
		return pipe.ErrConflict
	case CodeInvalidParameter:
		if len(e.Fields) > 0 {
			// The server's message starts "invalid <kind>:".
			kind, _, _ := strings.Cut(strings.TrimPrefix(e.Message, "invalid "), ":")
			if strings.ContainsAny(kind, " \t") {
				kind = "pipe"
			}
			return &fielderr.List{Kind: kind, Fields: e.Fields}
		}
	}
	return nil
}

// UnreachableError means the client could not connect to the API at all,
// which for a CLI user almost always means no server is running there.
type UnreachableError struct {
	URL string // the API's base URL
	Err error  // the dial error
}

func (e *UnreachableError) Error() string {
	return "the Sluice API at " + e.URL + " is not reachable (" + dialReason(e.Err) + "): " +
		"start one with `sluice dev`, or point to a running one with --api URL or the SLUICE_API environment variable"
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// dialReason is the short cause of a dial failure: the full error repeats
// the method and URL the message already names.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "cannot resolve host " + dnsErr.Name
	case errors.As(err, &opErr) && opErr.Timeout():
		return "connection timed out"
	case errors.As(err, &opErr) && opErr.Err != nil:
		return opErr.Err.Error()
	default:
		return err.Error()
	}
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent: then the request certainly had no effect.
func isDialError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}
