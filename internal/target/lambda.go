package target

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// The lambda kind: the pipe's target.lambda section, an AWS Lambda
// function (or any server speaking the Invoke API) invoked synchronously
// through the AWS SDK, one invocation per batch.
func init() {
	Register(Kind{Name: pipe.KindLambda, Key: lambdaKey, Describe: describeLambda, Open: openLambda})
}

// lambdaKey is every field of the section: the spec already restarts a
// pipe whose section changed, and the key says so for the engine's log.
// The credentials are not in it: the SDK's chain refreshes them itself.
func lambdaKey(spec pipe.Spec, _ Env) string {
	t := spec.Target.Lambda
	return fmt.Sprintf("lambda:%s,qualifier=%s,region=%s,endpoint=%s,timeout=%g,partial=%t",
		t.FunctionName, t.Qualifier, t.Region, t.EndpointURL, t.TimeoutSeconds, t.ReportBatchItemFailures)
}

// describeLambda is "lambda NAME[:QUALIFIER] [at ENDPOINT] (region R)",
// the region as far as the spec tells it (the AWS configuration's is only
// known once the target is open).
func describeLambda(spec pipe.Spec, _ Env) string {
	t := spec.Target.Lambda
	var b strings.Builder
	b.WriteString("lambda " + t.FunctionName)
	if t.Qualifier != "" {
		b.WriteString(":" + t.Qualifier)
	}
	if t.EndpointURL != "" {
		b.WriteString(" at " + RedactURL(t.EndpointURL))
	}
	if r := t.KnownRegion(); r != "" {
		b.WriteString(" (region " + r + ")")
	}
	return b.String()
}

// openLambda builds a Lambda client from the standard AWS configuration
// (environment, shared files, SSO, web identity, container and instance
// roles). Credentials are resolved at the first invocation, so a missing
// one is the pipe's PROBLEM then, not a failure to start.
func openLambda(ctx context.Context, spec pipe.Spec, env Env) (Target, error) {
	t := spec.Target.Lambda
	switch {
	case t.FunctionName == "":
		return nil, errors.New("target.lambda.functionName is required: give the function's name or ARN")
	case env.Encoder == nil:
		return nil, errors.New("target: Encoder is required")
	}
	var opts []func(*config.LoadOptions) error
	if r := t.KnownRegion(); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("lambda target %s: cannot load the AWS configuration (AWS_* variables, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, the profile): fix it or unset what is broken: %w", t.FunctionName, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("lambda target %s: no AWS region: set target.lambda.region, give the function's ARN as target.lambda.functionName, or set AWS_REGION", t.FunctionName)
	}
	var client aws.HTTPClient = &http.Client{Transport: DefaultTransport}
	if env.HTTPClient != nil {
		client = env.HTTPClient
	}
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.HTTPClient = client
		// One attempt: the retry stage backs off and the concurrency
		// controller halves on a 429 only if it sees the throttle, and
		// the SDK's own retries would hide it and hold a batch for their
		// backoff on top of Sluice's.
		o.Retryer = aws.NopRetryer{}
		if t.EndpointURL != "" {
			o.BaseEndpoint = aws.String(t.EndpointURL)
		}
	})
	limit := pipe.LambdaRequestLimitBytes
	if spec.PayloadLimitBytes > 0 {
		limit = min(limit, spec.PayloadLimitBytes)
	}
	inv := &lambdaInvoker{client: lc, function: t.FunctionName, region: cfg.Region, timeout: spec.TargetTimeout()}
	if t.Qualifier != "" {
		inv.qualifier = aws.String(t.Qualifier)
	}
	return &invokeTarget{
		name: t.FunctionName, inv: inv, enc: env.Encoder, limit: limit,
		timeout: spec.TargetTimeout(), partial: t.ReportBatchItemFailures,
	}, nil
}

// lambdaInvoker calls the Invoke API with InvocationType RequestResponse.
type lambdaInvoker struct {
	client    *lambda.Client
	function  string
	qualifier *string
	region    string
	timeout   time.Duration // for the PROBLEM of a timed-out call
}

// Invoke makes one synchronous invocation and sorts what came back into
// the function's answer, its error, or an InvokeError for the policies.
func (l *lambdaInvoker) Invoke(ctx context.Context, payload []byte) (Invocation, error) {
	out, err := l.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		Qualifier:      l.qualifier,
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return Invocation{}, l.invokeError(ctx, err)
	}
	inv := Invocation{Payload: out.Payload}
	if out.FunctionError != nil {
		inv.FunctionError = *out.FunctionError
		if inv.FunctionError == "" {
			inv.FunctionError = "Unhandled"
		}
	}
	return inv, nil
}

// invokeError turns the SDK's error into an InvokeError whose Problem
// names the fix. Err keeps the SDK's error (operation, status, request
// id), which names no credential.
func (l *lambdaInvoker) invokeError(ctx context.Context, err error) error {
	fn := l.function
	if l.qualifier != nil {
		fn += ":" + *l.qualifier
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	e := &InvokeError{Status: status, Err: err}

	var throttle *types.TooManyRequestsException
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &throttle):
		e.Status, e.Throttled = http.StatusTooManyRequests, true
		if throttle.RetryAfterSeconds != nil {
			if secs, perr := strconv.ParseFloat(strings.TrimSpace(*throttle.RetryAfterSeconds), 64); perr == nil && secs > 0 {
				e.RetryAfterDelay = time.Duration(secs * float64(time.Second))
			}
		}
		reason := string(throttle.Reason)
		if reason == "" {
			reason = throttle.ErrorMessage()
		}
		e.Problem = fmt.Sprintf("function %s is throttled (%s): Sluice lowers its concurrency and retries; raise the function's reserved concurrency or the account's limit, or lower maximumConcurrency", fn, reason)
	case status == http.StatusTooManyRequests:
		e.Throttled = true
		e.Problem = fmt.Sprintf("function %s is throttled: Sluice lowers its concurrency and retries", fn)
	case errors.As(err, new(*types.ResourceNotFoundException)):
		e.Problem = fmt.Sprintf("function %s not found in region %s: check target.lambda.functionName, target.lambda.qualifier and target.lambda.region", fn, l.region)
	case errors.As(err, new(*types.RequestTooLargeException)), errors.As(err, new(*types.SerializedRequestEntityTooLargeException)):
		e.Problem = fmt.Sprintf("function %s refused the batch as too large: lower payloadLimitBytes (the Invoke API takes at most %d bytes)", fn, pipe.LambdaRequestLimitBytes)
	case errors.As(err, new(*types.InvalidRequestContentException)):
		e.Problem = fmt.Sprintf("function %s refused the request as invalid JSON: check the pipe's inputTemplate or enrichment, which make the body", fn)
	case errors.As(err, new(*types.ResourceNotReadyException)), errors.As(err, new(*types.ResourceConflictException)):
		e.Problem = fmt.Sprintf("function %s is not ready (being created or updated): Sluice retries", fn)
	// The service answers a refused key or signature 403 too, so the
	// codes come before the status.
	case status == http.StatusUnauthorized || (errors.As(err, &apiErr) && isCredentialCode(apiErr.ErrorCode())):
		e.Problem = fmt.Sprintf("the AWS credentials were refused invoking %s: check the access key, session token and clock (the standard chain: AWS_ACCESS_KEY_ID, AWS_PROFILE, a role)", fn)
	case status == http.StatusForbidden || (errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDeniedException"):
		e.Problem = fmt.Sprintf("access denied: the credentials need lambda:InvokeFunction on %s (region %s)", fn, l.region)
	case errors.As(err, &apiErr) && status >= 500:
		e.Problem = fmt.Sprintf("function %s: Lambda service error %s (HTTP %d): Sluice retries", fn, apiErr.ErrorCode(), status)
	case errors.As(err, &apiErr):
		e.Problem = fmt.Sprintf("function %s: the Lambda service refused the invocation with %s (HTTP %d)", fn, apiErr.ErrorCode(), status)
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		e.Problem = fmt.Sprintf("function %s did not answer within %s: raise target.lambda.timeoutSeconds (at most the function's own timeout) or make the function faster", fn, l.timeout)
	case ctx.Err() != nil:
		e.Problem = fmt.Sprintf("invocation of %s abandoned: the pipe is stopping", fn)
	case isCredentialsMissing(err):
		e.Problem = fmt.Sprintf("no AWS credentials to invoke %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role (container, instance, web identity)", fn)
	default:
		e.Problem = fmt.Sprintf("Lambda endpoint unreachable invoking %s (region %s): check the network, target.lambda.region and target.lambda.endpointUrl", fn, l.region)
	}
	return e
}

// isCredentialCode reports the error codes of a signature or key the
// service refused.
func isCredentialCode(code string) bool {
	switch code {
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
		"IncompleteSignature", "InvalidClientTokenId", "SignatureDoesNotMatch", "MissingAuthenticationToken":
		return true
	}
	return false
}

// isCredentialsMissing reports that the request was never sent because
// the chain found no credentials. The SDK has no typed error for it
// across its signers, so its wording is the signal.
func isCredentialsMissing(err error) bool {
	s := err.Error()
	return strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "no EC2 IMDS role found") ||
		strings.Contains(s, "anonymous credentials")
}
