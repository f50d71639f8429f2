package pipe

import (
	"fmt"
	"strconv"
)

// LambdaTarget invokes an AWS Lambda function (the lambda kind) through
// the Lambda Invoke API, synchronously, each batch one invocation.
type LambdaTarget struct {
	// FunctionName is what the Invoke API takes: a name, a partial ARN
	// (ACCOUNT:function:NAME) or a function ARN, optionally with
	// :QUALIFIER.
	FunctionName string `json:"functionName"`
	// Qualifier is a version or alias (or give it in FunctionName).
	Qualifier string `json:"qualifier,omitempty"`
	// Region is the function's: default the ARN's, else the standard
	// chain's (AWS_REGION, the shared config).
	Region string `json:"region,omitempty"`
	// EndpointURL overrides the Lambda endpoint: any Lambda-compatible
	// server, such as another Sluice.
	EndpointURL string `json:"endpointUrl,omitempty"`
	// TimeoutSeconds bounds one invocation (default 30, max 840).
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// ReportBatchItemFailures reads the function's answer as the
	// reference's partial batch response ({"batchItemFailures": …}).
	ReportBatchItemFailures bool `json:"reportBatchItemFailures,omitempty"`
}

// LambdaRequestLimitBytes is the Invoke API's limit on a synchronous
// request: a lambda target's batches are cut to it.
const LambdaRequestLimitBytes = 6 * 1024 * 1024

// validateLambda checks a lambda target section.
func validateLambda(v *ValidationError, s Spec) {
	t := s.Target.Lambda
	const f = "target.lambda."
	if t.FunctionName == "" {
		v.Add(f+"functionName", "", "required: give the function's name or ARN, e.g. arn:aws:lambda:us-east-1:123456789012:function:my-function")
	}
	if sec := t.TimeoutSeconds; !(sec >= 0 && sec <= maxTargetTimeoutSecondsFloat) {
		v.Add(f+"timeoutSeconds", strconv.FormatFloat(sec, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
	if s.PayloadLimitBytes > LambdaRequestLimitBytes {
		v.Add("payloadLimitBytes", strconv.Itoa(s.PayloadLimitBytes), fmt.Sprintf("a lambda target takes at most %d bytes a request (the Invoke API's limit): use that or less", LambdaRequestLimitBytes))
	}
}
