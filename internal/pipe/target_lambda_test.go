package pipe

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func validLambda() Spec {
	s := valid()
	s.Target = Target{Lambda: &LambdaTarget{FunctionName: "orders"}}
	return s
}

func TestValidateLambdaAccepts(t *testing.T) {
	cases := map[string]func(*Spec){
		"name":              func(*Spec) {},
		"name with version": func(s *Spec) { s.Target.Lambda.FunctionName = "orders:7" },
		"name with latest":  func(s *Spec) { s.Target.Lambda.FunctionName = "orders:$LATEST" },
		"partial ARN":       func(s *Spec) { s.Target.Lambda.FunctionName = "123456789012:function:orders:live" },
		"ARN":               func(s *Spec) { s.Target.Lambda.FunctionName = "arn:aws:lambda:us-east-1:123456789012:function:orders" },
		"GovCloud ARN": func(s *Spec) {
			s.Target.Lambda.FunctionName = "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:orders:2"
		},
		"Sluice ARN": func(s *Spec) {
			s.Target.Lambda.FunctionName = "arn:aws:lambda:sluice:000000000000:function:orders"
			s.Target.Lambda.EndpointURL = "http://127.0.0.1:8080"
		},
		"qualifier":            func(s *Spec) { s.Target.Lambda.Qualifier = "live" },
		"same qualifier twice": func(s *Spec) { s.Target.Lambda.FunctionName, s.Target.Lambda.Qualifier = "orders:live", "live" },
		"region":               func(s *Spec) { s.Target.Lambda.Region = "eu-central-2" },
		"ARN and its region": func(s *Spec) {
			s.Target.Lambda.FunctionName = "arn:aws:lambda:us-east-1:123456789012:function:orders"
			s.Target.Lambda.Region = "us-east-1"
		},
		"endpoint":          func(s *Spec) { s.Target.Lambda.EndpointURL = "https://lambda.us-east-1.amazonaws.com" },
		"max timeout":       func(s *Spec) { s.Target.Lambda.TimeoutSeconds = 840 },
		"fraction":          func(s *Spec) { s.Target.Lambda.TimeoutSeconds = 0.5 },
		"payload at limit":  func(s *Spec) { s.PayloadLimitBytes = LambdaRequestLimitBytes },
		"payload below it":  func(s *Spec) { s.PayloadLimitBytes = 1 << 20 },
		"partial responses": func(s *Spec) { s.Target.Lambda.ReportBatchItemFailures = true },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := validLambda()
			mutate(&s)
			if err := s.Validate(time.Now()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateLambdaNamesFieldAndFix(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Spec)
		field  string
		want   string
	}{
		{"no function", func(s *Spec) { s.Target.Lambda.FunctionName = "" }, "target.lambda.functionName", "required"},
		{"ARN of another service", func(s *Spec) { s.Target.Lambda.FunctionName = "arn:aws:sqs:us-east-1:123456789012:q" }, "target.lambda.functionName", "arn:aws:lambda:REGION:ACCOUNT:function:NAME"},
		{"ARN without a name", func(s *Spec) { s.Target.Lambda.FunctionName = "arn:aws:lambda:us-east-1:123456789012:function:" }, "target.lambda.functionName", "not a function ARN"},
		{"name with a space", func(s *Spec) { s.Target.Lambda.FunctionName = "my function" }, "target.lambda.functionName", "letters, digits"},
		{"name with a slash", func(s *Spec) { s.Target.Lambda.FunctionName = "a/b" }, "target.lambda.functionName", "letters, digits"},
		{"bad qualifier", func(s *Spec) { s.Target.Lambda.Qualifier = "a b" }, "target.lambda.qualifier", "version"},
		{"two qualifiers", func(s *Spec) { s.Target.Lambda.FunctionName, s.Target.Lambda.Qualifier = "orders:1", "2" }, "target.lambda.qualifier", "already names qualifier 1"},
		{"bad region", func(s *Spec) { s.Target.Lambda.Region = "Frankfurt" }, "target.lambda.region", "us-east-1"},
		{"region against the ARN", func(s *Spec) {
			s.Target.Lambda.FunctionName = "arn:aws:lambda:us-east-1:123456789012:function:orders"
			s.Target.Lambda.Region = "eu-west-1"
		}, "target.lambda.region", "make it us-east-1"},
		{"relative endpoint", func(s *Spec) { s.Target.Lambda.EndpointURL = "lambda.local:8080" }, "target.lambda.endpointUrl", "absolute http(s) URL"},
		{"endpoint scheme", func(s *Spec) { s.Target.Lambda.EndpointURL = "ftp://lambda.local" }, "target.lambda.endpointUrl", "absolute http(s) URL"},
		{"negative timeout", func(s *Spec) { s.Target.Lambda.TimeoutSeconds = -1 }, "target.lambda.timeoutSeconds", "840"},
		{"timeout too long", func(s *Spec) { s.Target.Lambda.TimeoutSeconds = 841 }, "target.lambda.timeoutSeconds", "0 (the default, 30s) up to 840 seconds"},
		{"NaN timeout", func(s *Spec) { s.Target.Lambda.TimeoutSeconds = math.NaN() }, "target.lambda.timeoutSeconds", "840"},
		{"payload over 6 MiB", func(s *Spec) { s.PayloadLimitBytes = LambdaRequestLimitBytes + 1 }, "payloadLimitBytes", "at most 6291456 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validLambda()
			c.mutate(&s)
			err := s.Validate(time.Now())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			if len(ve.Fields) != 1 || ve.Fields[0].Field != c.field {
				t.Fatalf("fields %+v, want exactly %s", ve.Fields, c.field)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q does not mention %q", err, c.want)
			}
		})
	}
}

func TestValidateLambdaDoesNotEchoEndpointUserInfo(t *testing.T) {
	s := validLambda()
	s.Target.Lambda.EndpointURL = "https://user:hunter2@lambda.local"
	err := s.Validate(time.Now())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want a refusal that does not show the password", err)
	}
}

func TestParseFunctionARN(t *testing.T) {
	for _, c := range []struct {
		in      string
		ok, aws bool
		want    FunctionARN
	}{
		{"arn:aws:lambda:us-east-1:123456789012:function:orders", true, true, FunctionARN{"aws", "us-east-1", "123456789012", "orders", ""}},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:orders:live", true, true, FunctionARN{"aws-cn", "cn-north-1", "123456789012", "orders", "live"}},
		{"arn:aws:lambda:sluice:000000000000:function:orders", true, false, FunctionARN{"aws", "sluice", "000000000000", "orders", ""}},
		{"arn:aws:lambda:us-east-1:1234:function:orders", true, false, FunctionARN{"aws", "us-east-1", "1234", "orders", ""}},
		{"arn:aws:lambda:us-east-1:123456789012:function:orders:", false, false, FunctionARN{}},
		{"arn:aws:lambda:us-east-1:123456789012:layer:x", false, false, FunctionARN{}},
		{"arn:aws:lambda:us-east-1:123456789012:function:a:b:c", false, false, FunctionARN{}},
		{"orders", false, false, FunctionARN{}},
	} {
		got, ok := ParseFunctionARN(c.in)
		if ok != c.ok || got != c.want || got.IsAWS() != c.aws {
			t.Errorf("ParseFunctionARN(%q) = %+v, %t (AWS %t); want %+v, %t (AWS %t)", c.in, got, ok, got.IsAWS(), c.want, c.ok, c.aws)
		}
	}
}

func TestLambdaTargetTimeoutAndNormalize(t *testing.T) {
	s := validLambda()
	if got := s.TargetTimeout(); got != DefaultTargetTimeout {
		t.Fatalf("default timeout %s, want %s", got, DefaultTargetTimeout)
	}
	s.Target.Lambda.TimeoutSeconds = 2.5
	if got := s.TargetTimeout(); got != 2500*time.Millisecond {
		t.Fatalf("timeout %s, want 2.5s", got)
	}
	s = validLambda()
	n := s.Normalize()
	if n.Target.Lambda.TimeoutSeconds != DefaultTargetTimeout.Seconds() || s.Target.Lambda.TimeoutSeconds != 0 {
		t.Fatalf("normalize: %v (the caller's section %v must stay as it was)", n.Target.Lambda.TimeoutSeconds, s.Target.Lambda.TimeoutSeconds)
	}
	if w := n.Target.Where(); w != "lambda:orders" {
		t.Fatalf("Where = %q", w)
	}
}
