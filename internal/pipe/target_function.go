package pipe

import (
	"fmt"
	"strconv"
)

// FunctionTarget invokes a function Sluice hosts (the function kind): a
// Lambda handler registered with `sluice functions set NAME --handler`,
// run as child processes behind the Lambda Runtime API, each batch one
// invocation.
type FunctionTarget struct {
	// Name is the hosted function's.
	Name string `json:"name"`
	// TimeoutSeconds bounds one invocation, at most the function's own
	// timeout; 0 is the function's own.
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// ReportBatchItemFailures reads the handler's answer as the
	// reference's partial batch response ({"batchItemFailures": …}).
	ReportBatchItemFailures bool `json:"reportBatchItemFailures,omitempty"`
}

// validateFunction checks a function target section.
func validateFunction(v *ValidationError, t *FunctionTarget) {
	const f = "target.function."
	if !nameRE.MatchString(t.Name) || len(t.Name) > MaxNameLength {
		v.Add(f+"name", strconv.Quote(t.Name), fmt.Sprintf("use the name of a function registered with `sluice functions set NAME --handler PATH`: 1–%d letters, digits, '-' and '_'", MaxNameLength))
	}
	if s := t.TimeoutSeconds; !(s >= 0 && s <= maxTargetTimeoutSecondsFloat) {
		v.Add(f+"timeoutSeconds", strconv.FormatFloat(s, 'f', -1, 64), fmt.Sprintf("use 0 (the function's own timeout) up to %d seconds", int(maxTargetTimeoutSecondsFloat)))
	}
}
