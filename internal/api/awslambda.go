package api

import (
	"fmt"
	"net/http"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// AWS Lambda functions as event source mapping targets. A FunctionName
// that is an ARN of AWS's own shape (arn:aws:lambda:us-east-1:123456789012:
// function:NAME) names a function in AWS, which the lambda target kind
// invokes through the Invoke API with the server's AWS credentials. That
// reaches outside the machine with the server's identity, so a server
// does it only when it was started to (lambdaHandler.aws); otherwise such
// an ARN still names the Sluice function of its NAME, as it always did.

// awsFunction is the target of FunctionName name when it is an AWS
// function ARN: ok is false for anything else (URLs, names, Sluice's own
// arn:aws:lambda:sluice:000000000000:function:NAME).
func awsFunction(name string) (t pipe.Target, ok bool) {
	a, isARN := pipe.ParseFunctionARN(name)
	if !isARN || !a.IsAWS() {
		return pipe.Target{}, false
	}
	return pipe.Target{Lambda: &pipe.LambdaTarget{FunctionName: name}}, true
}

// awsNotEnabled answers an AWS function ARN that names no Sluice function
// on a server that does not invoke AWS Lambda: as the Lambda API answers
// an unknown function, saying both ways to make it known.
func awsNotEnabled(arn, fn string) *lambdaError {
	return &lambdaError{http.StatusNotFound, lambdaNotFound, fmt.Sprintf(
		"Function not found: %s. This server does not invoke AWS Lambda functions: start `sluice serve` (or `sluice dev`) with %s to invoke it in AWS with the server's AWS credentials, "+
			"or register a Sluice function with `sluice functions set %s --url URL`.", arn, awsLambdaFlag, fn)}
}

// awsLambdaFlag is the server flag that enables AWS Lambda targets.
const awsLambdaFlag = "--aws-lambda"

// WithAWSLambda makes the Lambda API take an AWS function ARN as
// FunctionName for a lambda target (sluice serve/dev --aws-lambda).
func WithAWSLambda() Option { return func(o *observeOptions) { o.awsLambda = true } }

// functionArnOf is the FunctionArn a mapping shows: an AWS function's
// own ARN, a Sluice function's ARN, or the target's URL.
func functionArnOf(t pipe.Target) string {
	switch {
	case t.Lambda != nil:
		// Where() says "lambda:ARN"; the API's field is the bare ARN.
		return t.Lambda.FunctionName
	case t.FunctionName() != "":
		return functionARNPrefix + t.FunctionName()
	}
	return t.Where()
}

// carryTarget moves what a mapping's FunctionName does not set (the
// timeout, partial batch responses) from the old target to the new one,
// when either is an http or a lambda target.
func carryTarget(old, t pipe.Target) pipe.Target {
	if old.HTTP == nil && old.Lambda == nil && old.Function == nil {
		return t
	}
	return t.WithPartialResponses(old.PartialResponses()).WithTimeoutSeconds(old.TimeoutSeconds())
}

// targets reports whether a mapping's target t is what a list's
// FunctionName filter names: fn, the name it gives (a Sluice function's
// or a URL), or arn, the filter as given (an AWS function's ARN).
func targets(t pipe.Target, fn, arn string) bool {
	if t.Lambda != nil {
		return t.Lambda.FunctionName == arn
	}
	return t.FunctionName() == fn || t.HTTPOrZero().URL == fn
}
