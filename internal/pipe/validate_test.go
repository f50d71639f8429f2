package pipe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func valid() Spec {
	return Spec{Name: "orders", BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"orders"}, Target: Target{HTTP: &HTTPTarget{URL: "http://127.0.0.1:9000/"}}}
}

func ptr[T any](v T) *T { return &v }

func TestValidateAcceptsMinimalSpec(t *testing.T) {
	if err := valid().Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesFieldValueAndRange(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		mutate func(*Spec)
		field  string
		want   string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "name", "required"},
		{"bad name", func(s *Spec) { s.Name = "a b" }, "name", `"a b"`},
		{"no brokers", func(s *Spec) { s.BootstrapServers = nil }, "bootstrapServers", "required"},
		{"bad broker", func(s *Spec) { s.BootstrapServers = []string{"localhost"} }, "bootstrapServers[0]", "host:port"},
		{"bad port", func(s *Spec) { s.BootstrapServers = []string{"h:0"} }, "bootstrapServers[0]", "1–65535"},
		{"no topic", func(s *Spec) { s.Topics = nil }, "topics", "required"},
		{"two topics", func(s *Spec) { s.Topics = []string{"a", "b"} }, "topics", "exactly 1"},
		{"bad topic", func(s *Spec) { s.Topics = []string{"a/b"} }, "topics[0]", "topic name"},
		{"batch too big", func(s *Spec) { s.BatchSize = 10001 }, "batchSize", "1–10000"},
		{"batch negative", func(s *Spec) { s.BatchSize = -1 }, "batchSize", "1–10000"},
		{"window", func(s *Spec) { s.MaximumBatchingWindowInSeconds = ptr(301.0) }, "maximumBatchingWindowInSeconds", "0–300"},
		{"position", func(s *Spec) { s.StartingPosition = "EARLIEST" }, "startingPosition", "TRIM_HORIZON, LATEST or AT_TIMESTAMP"},
		{"ts missing", func(s *Spec) { s.StartingPosition = AtTimestamp }, "startingPositionTimestamp", "required"},
		{"ts future", func(s *Spec) { s.StartingPosition = AtTimestamp; s.StartingPositionTimestamp = ptr(now.Add(time.Hour)) }, "startingPositionTimestamp", "future"},
		{"ts without at", func(s *Spec) { s.StartingPositionTimestamp = ptr(now) }, "startingPositionTimestamp", "only allowed"},
		{"group", func(s *Spec) { s.ConsumerGroupID = "a#b" }, "consumerGroupId", "letters"},
		{"no target", func(s *Spec) { s.Target.HTTP.URL = "" }, "target.http.url", "required"},
		{"bad target", func(s *Spec) { s.Target.HTTP.URL = "ftp://x" }, "target.http.url", "http://"},
		{"timeout", func(s *Spec) { s.Target.HTTP.TimeoutSeconds = 900 }, "target.http.timeoutSeconds", "840"},
		{"payload", func(s *Spec) { s.PayloadLimitBytes = 10 }, "payloadLimitBytes", "1024"},
		{"retries", func(s *Spec) { s.Retry.MaximumRetryAttempts = ptr(10001) }, "retry.maximumRetryAttempts", "-1 (unlimited) or 0–10000"},
		{"age", func(s *Spec) { s.Retry.MaximumRecordAgeInSeconds = ptr(59) }, "retry.maximumRecordAgeInSeconds", "60–604800"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := valid()
			c.mutate(&s)
			err := s.Validate(now)
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

func TestValidateReportsEveryField(t *testing.T) {
	err := Spec{BatchSize: 0, Target: Target{HTTP: &HTTPTarget{URL: "x"}}}.Validate(time.Now())
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 4 {
		t.Fatalf("want name, bootstrapServers, topics, target.http.url; got %v", err)
	}
}

func TestNormalizeFillsDefaults(t *testing.T) {
	s := valid()
	s.UUID = "u-1"
	n := s.Normalize()
	if n.BatchSize != 100 || *n.MaximumBatchingWindowInSeconds != 0.5 || n.StartingPosition != TrimHorizon ||
		!n.IsEnabled() || n.TargetTimeout() != 30*time.Second || n.PayloadLimitBytes != 6<<20 ||
		n.MaxRetries() != Unlimited || n.MaxRecordAge() != 0 || n.GroupID() != "u-1" || n.BatchingWindow() != 500*time.Millisecond {
		t.Fatalf("defaults: %+v", n)
	}
	if err := n.Validate(time.Now()); err != nil {
		t.Fatalf("normalized spec must stay valid: %v", err)
	}
	z := valid()
	z.MaximumBatchingWindowInSeconds = ptr(0.0)
	if z.Normalize().BatchingWindow() != 0 {
		t.Fatal("an explicit zero window must stay zero")
	}
}

func TestValidateTargetAuth(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(*Spec)
		field  string
		reason string
	}{
		{"user info in the URL", func(s *Spec) { s.Target.HTTP.URL = "https://user:s3cret@hooks.example.com/x" }, "target.http.url", "send them from a secret"},
		{"bad header name", func(s *Spec) { s.Target.HTTP.Headers = map[string]string{"X Key": "v"} }, "target.http.headers.X Key", "HTTP header name"},
		{"reserved header", func(s *Spec) { s.Target.HTTP.Headers = map[string]string{"content-type": "text/plain"} }, "target.http.headers.content-type", "Sluice sets this header"},
		{"bad secret reference", func(s *Spec) { s.Target.HTTP.Headers = map[string]string{"X-Api-Key": "secret:nokey"} }, "target.http.headers.X-Api-Key", "secret:SECRET/KEY"},
		{"line break", func(s *Spec) { s.Target.HTTP.Headers = map[string]string{"X-Api-Key": "a\r\nHost: evil"} }, "target.http.headers.X-Api-Key", "without line breaks"},
		{"secret header on a function", func(s *Spec) {
			s.Target.HTTP.URL, s.Target.HTTP.Function = "", "billing"
			s.Target.HTTP.Headers = map[string]string{"Authorization": "secret:hook/token"}
		}, "target.http.headers.Authorization", "need target.http.url"},
		{"bad signing secret", func(s *Spec) { s.Target.HTTP.SigningSecret = "hook" }, "target.http.signingSecret", "SECRET/KEY"},
		{"oauth without a token URL", func(s *Spec) { s.Target.HTTP.OAuth = &OAuth{ClientSecret: "idp"} }, "target.http.oauth.tokenUrl", "required"},
		{"oauth with a bad client secret", func(s *Spec) {
			s.Target.HTTP.OAuth = &OAuth{TokenURL: "https://idp.example.com/token", ClientSecret: "Bad/Name"}
		}, "target.http.oauth.clientSecret", "clientId and clientSecret"},
		{"oauth and an Authorization header", func(s *Spec) {
			s.Target.HTTP.OAuth = &OAuth{TokenURL: "https://idp.example.com/token", ClientSecret: "idp"}
			s.Target.HTTP.Headers = map[string]string{"authorization": "Bearer x"}
		}, "target.http.headers.authorization", "OAuth sets Authorization"},
	} {
		s := valid()
		c.edit(&s)
		var ve *ValidationError
		if err := s.Validate(time.Now()); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", c.name, err)
			continue
		}
		found := false
		for _, f := range ve.Fields {
			if f.Field == c.field && strings.Contains(f.Reason, c.reason) {
				found = true
			}
			if strings.Contains(f.Value, "s3cret") {
				t.Errorf("%s: the error quotes the credential: %+v", c.name, f)
			}
		}
		if !found {
			t.Errorf("%s: %v, want %s saying %q", c.name, ve, c.field, c.reason)
		}
	}
	s := valid()
	s.Target.HTTP.Headers = map[string]string{"Authorization": "secret:hook/token", "X-Team": "payments"}
	s.Target.HTTP.SigningSecret = "hook/signing"
	if err := s.Validate(time.Now()); err != nil {
		t.Fatalf("valid target auth: %v", err)
	}
	refs := s.Target.HTTP.SecretRefs()
	if len(refs) != 2 || refs[0] != (SecretRef{"target.http.headers.Authorization", "hook", "token", s.Target.HTTP.URL}) || refs[1] != (SecretRef{"target.http.signingSecret", "hook", "signing", s.Target.HTTP.URL}) {
		t.Errorf("SecretRefs = %+v", refs)
	}
}

func TestValidateOnFailure(t *testing.T) {
	for _, c := range []struct {
		name, dest string
		discard    bool
		field, say string
	}{
		{"kafka", "kafka://dlq", false, "", ""},
		{"other cluster", "kafka://backup/dlq", false, "", ""},
		{"http", "https://hooks.example.com/dlq", false, "", ""},
		{"file", "file:///var/lib/sluice/dlq.jsonl", false, "", ""},
		{"discard", "", true, "", ""},
		{"source topic", "kafka://orders", false, "onFailure.destination", "must differ from the topic"},
		{"bad topic", "kafka://bad topic", false, "onFailure.destination", "kafka://TOPIC"},
		{"relative file", "file://dlq.jsonl", false, "onFailure.destination", "file:///ABSOLUTE/PATH"},
		{"sqs", "arn:aws:sqs:us-east-1:1:q", false, "onFailure.destination", "kafka://TOPIC"},
		{"credentials", "https://u:p@hooks.example.com/", false, "onFailure.destination", "user:password@"},
		{"both", "kafka://dlq", true, "onFailure.discard", "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := valid()
			s.OnFailure = OnFailure{Destination: c.dest, Discard: c.discard}
			err := s.Validate(time.Now())
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != c.field || !strings.Contains(ve.Fields[0].Reason, c.say) {
				t.Fatalf("Validate = %v, want %s saying %q", err, c.field, c.say)
			}
		})
	}
}

// Path parameters fill the URL's * segments in order; query parameters
// are added; a count that does not match is refused.
func TestHTTPResolvedURL(t *testing.T) {
	h := HTTPTarget{PathParameterValues: []string{"eu west", "7"}, QueryParameters: map[string]string{"team": "pay", "b": "1"}}
	got, ok := h.ResolvedURL("https://api.example.com/regions/*/orders/*?x=1")
	if !ok || got != "https://api.example.com/regions/eu%20west/orders/7?b=1&team=pay&x=1" {
		t.Fatalf("ResolvedURL = %q, %v", got, ok)
	}
	if _, ok := (HTTPTarget{PathParameterValues: []string{"a"}}).ResolvedURL("https://x/y"); ok {
		t.Fatal("a value without a * segment resolved")
	}
	s := valid()
	s.Target.HTTP.PathParameterValues = []string{"a", "b"}
	if err := s.Validate(time.Now()); err == nil || !strings.Contains(err.Error(), "one value per * segment") {
		t.Fatalf("Validate = %v", err)
	}
}
