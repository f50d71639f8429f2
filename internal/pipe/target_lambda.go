package pipe

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
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

// FunctionARN is the parts of a Lambda function ARN,
// arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER].
type FunctionARN struct {
	Partition, Region, Account, Name, Qualifier string
}

// ParseFunctionARN splits a function ARN into its parts. ok is false for
// anything else, including an ARN of another service or resource; the
// parts are not checked against AWS's patterns (see IsAWS), because a
// Lambda-compatible server may use its own (Sluice's region is "sluice").
func ParseFunctionARN(s string) (a FunctionARN, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 7 || len(parts) > 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" {
		return FunctionARN{}, false
	}
	a = FunctionARN{Partition: parts[1], Region: parts[3], Account: parts[4], Name: parts[6]}
	if len(parts) == 8 {
		if a.Qualifier = parts[7]; a.Qualifier == "" {
			return FunctionARN{}, false
		}
	}
	if a.Partition == "" || a.Region == "" || a.Account == "" || a.Name == "" {
		return FunctionARN{}, false
	}
	return a, true
}

var (
	// awsRegion is the shape of an AWS region (us-east-1, us-gov-west-1,
	// eu-central-2).
	awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	// awsPartition: aws, aws-cn, aws-us-gov, aws-iso-b, ...
	awsPartition = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	awsAccount   = regexp.MustCompile(`^\d{12}$`)
	// lambdaName is a function name or partial ARN, as the Invoke API
	// takes it without the arn: prefix: [ACCOUNT:function:]NAME[:QUALIFIER].
	lambdaName = regexp.MustCompile(`^(\d{12}:function:)?[A-Za-z0-9_.-]+(:(\$LATEST|[A-Za-z0-9_-]+))?$`)
	// lambdaQualifier is a version ($LATEST, 1, 2, ...) or an alias.
	lambdaQualifier = regexp.MustCompile(`^(\$LATEST|[A-Za-z0-9_-]{1,128})$`)
)

// IsAWS reports whether the ARN is shaped as AWS's own: an AWS partition,
// a region such as us-east-1 and a 12-digit account. Sluice's own function
// ARNs (region "sluice") are not.
func (a FunctionARN) IsAWS() bool {
	return awsPartition.MatchString(a.Partition) && awsRegion.MatchString(a.Region) && awsAccount.MatchString(a.Account)
}

// IsAWSRegion reports whether s is shaped as an AWS region.
func IsAWSRegion(s string) bool { return awsRegion.MatchString(s) }

// validateLambda checks a lambda target section.
func validateLambda(v *ValidationError, s Spec) {
	t := s.Target.Lambda
	const f = "target.lambda."
	arn, isARN := ParseFunctionARN(t.FunctionName)
	switch {
	case t.FunctionName == "":
		v.Add(f+"functionName", "", "required: give the function's name or ARN, e.g. arn:aws:lambda:us-east-1:123456789012:function:my-function")
	case strings.HasPrefix(t.FunctionName, "arn:") && !isARN:
		v.Add(f+"functionName", t.FunctionName, "not a function ARN: use arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], or the function's name")
	case !isARN && !lambdaName.MatchString(t.FunctionName):
		v.Add(f+"functionName", t.FunctionName, "not a function name: use letters, digits, '-', '_' and '.' (optionally ACCOUNT:function: before and :QUALIFIER after), or the function's ARN")
	}
	inName := arn.Qualifier
	if !isARN {
		if parts := strings.Split(t.FunctionName, ":"); len(parts) == 2 || len(parts) == 4 {
			inName = parts[len(parts)-1]
		}
	}
	switch {
	case t.Qualifier != "" && !lambdaQualifier.MatchString(t.Qualifier):
		v.Add(f+"qualifier", t.Qualifier, "use a version ($LATEST, 1, 2, …) or an alias: letters, digits, '-' and '_', at most 128")
	case t.Qualifier != "" && inName != "" && inName != t.Qualifier:
		v.Add(f+"qualifier", t.Qualifier, fmt.Sprintf("functionName already names qualifier %s: give it once", inName))
	}
	switch {
	case t.Region != "" && !awsRegion.MatchString(t.Region):
		v.Add(f+"region", t.Region, "not an AWS region: use e.g. us-east-1, or leave it out for the ARN's region or the AWS configuration's")
	case t.Region != "" && isARN && arn.Region != t.Region:
		v.Add(f+"region", t.Region, fmt.Sprintf("functionName is an ARN in region %s: leave region out or make it %s", arn.Region, arn.Region))
	}
	if t.EndpointURL != "" {
		if u, err := url.Parse(t.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			shown := "" // not quoted back unless parsed without user info, which may hold a password
			if err == nil && u.User == nil {
				shown = t.EndpointURL
			}
			v.Add(f+"endpointUrl", shown, "use an absolute http(s) URL without user info, e.g. https://lambda.us-east-1.amazonaws.com or http://127.0.0.1:8080 (another Sluice)")
		}
	}
	if sec := t.TimeoutSeconds; !(sec >= 0 && sec <= maxTargetTimeoutSecondsFloat) {
		v.Add(f+"timeoutSeconds", strconv.FormatFloat(sec, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
	if s.PayloadLimitBytes > LambdaRequestLimitBytes {
		v.Add("payloadLimitBytes", strconv.Itoa(s.PayloadLimitBytes), fmt.Sprintf("a lambda target takes at most %d bytes a request (the Invoke API's limit): use that or less", LambdaRequestLimitBytes))
	}
}

// KnownRegion is the section's region, else its ARN's; "" when the AWS
// configuration of the process running the pipe decides.
func (t LambdaTarget) KnownRegion() string {
	if t.Region != "" {
		return t.Region
	}
	if a, ok := ParseFunctionARN(t.FunctionName); ok {
		return a.Region
	}
	return ""
}
