package pipe

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one invalid field: its path in the spec, the bad value and
// what would be accepted instead.
type FieldError struct {
	Field  string // e.g. "batchSize" or "target.url"
	Value  string // the rejected value, as the user wrote it
	Reason string // what is allowed, phrased as the fix
}

func (e FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s: invalid value %s: %s", e.Field, e.Value, e.Reason)
}

// ValidationError holds every invalid field of a spec, so a user fixes them
// all in one round instead of one per attempt.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return "invalid pipe: " + strings.Join(msgs, "; ")
}

func (e *ValidationError) add(field, value, reason string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Value: value, Reason: reason})
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	// groupRE is the reference's ConsumerGroupId pattern.
	groupRE = regexp.MustCompile(`^[ a-zA-Z0-9\-/*:_+=.@]+$`)
)

// Validate checks a spec as the user wrote it (before Normalize) and returns
// a *ValidationError naming every bad field, or nil. now is the current time,
// for the rule that a starting timestamp may not lie in the future.
func (s Spec) Validate(now time.Time) error {
	v := &ValidationError{}
	switch {
	case s.Name == "":
		v.add("name", "", "required: give the pipe a name of letters, digits, '-' and '_'")
	case len(s.Name) > MaxNameLength || !nameRE.MatchString(s.Name):
		v.add("name", strconv.Quote(s.Name), fmt.Sprintf("use 1–%d letters, digits, '-' and '_'", MaxNameLength))
	}

	switch {
	case s.Cluster != "" && len(s.BootstrapServers) > 0:
		v.add("cluster", s.Cluster, "give either a cluster or bootstrapServers, not both: the cluster holds its brokers")
	case s.Cluster != "":
		if len(s.Cluster) > MaxNameLength || !nameRE.MatchString(s.Cluster) {
			v.add("cluster", strconv.Quote(s.Cluster), "name a cluster registered with `sluice clusters set`")
		}
	case len(s.BootstrapServers) == 0:
		v.add("bootstrapServers", "", "required: give at least one broker as host:port, or a cluster registered with `sluice clusters set`")
	case len(s.BootstrapServers) > MaxBootstrapServers:
		v.add("bootstrapServers", strconv.Itoa(len(s.BootstrapServers))+" servers", fmt.Sprintf("give 1–%d brokers", MaxBootstrapServers))
	}
	for i, hp := range s.BootstrapServers {
		if err := checkHostPort(hp); err != nil {
			v.add(fmt.Sprintf("bootstrapServers[%d]", i), strconv.Quote(hp), err.Error())
		}
	}

	switch {
	case len(s.Topics) == 0:
		v.add("topics", "", "required: name the topic to read")
	case len(s.Topics) > MaxTopics:
		v.add("topics", strings.Join(s.Topics, ","), fmt.Sprintf("give exactly %d topic; create one pipe per topic", MaxTopics))
	}
	for i, t := range s.Topics {
		if t == "" || t == "." || t == ".." || len(t) > MaxTopicLength || !topicRE.MatchString(t) {
			v.add(fmt.Sprintf("topics[%d]", i), strconv.Quote(t), fmt.Sprintf("a Kafka topic name is 1–%d letters, digits, '.', '_' and '-' (not '.' or '..')", MaxTopicLength))
		}
	}

	switch s.StartingPosition {
	case "", TrimHorizon, Latest:
		if s.StartingPositionTimestamp != nil {
			v.add("startingPositionTimestamp", s.StartingPositionTimestamp.Format(time.RFC3339), "only allowed with startingPosition AT_TIMESTAMP")
		}
	case AtTimestamp:
		switch {
		case s.StartingPositionTimestamp == nil:
			v.add("startingPositionTimestamp", "", "required with startingPosition AT_TIMESTAMP: give an RFC 3339 time")
		case s.StartingPositionTimestamp.After(now):
			v.add("startingPositionTimestamp", s.StartingPositionTimestamp.Format(time.RFC3339), "may not be in the future")
		}
	default:
		v.add("startingPosition", strconv.Quote(string(s.StartingPosition)), "use TRIM_HORIZON, LATEST or AT_TIMESTAMP")
	}

	if s.BatchSize != 0 && (s.BatchSize < MinBatchSize || s.BatchSize > MaxBatchSize) {
		v.add("batchSize", strconv.Itoa(s.BatchSize), fmt.Sprintf("use %d–%d", MinBatchSize, MaxBatchSize))
	}
	if w := s.MaximumBatchingWindowInSeconds; w != nil && (*w < 0 || *w > MaxBatchingWindowSeconds) {
		v.add("maximumBatchingWindowInSeconds", strconv.FormatFloat(*w, 'f', -1, 64), fmt.Sprintf("use 0–%d seconds", MaxBatchingWindowSeconds))
	}
	if g := s.ConsumerGroupID; g != "" && (len(g) > MaxConsumerGroupIDLength || !groupRE.MatchString(g)) {
		v.add("consumerGroupId", strconv.Quote(g), fmt.Sprintf("use 1–%d letters, digits, spaces and -/*:_+=.@", MaxConsumerGroupIDLength))
	}

	switch u, err := url.Parse(s.Target.URL); {
	case s.Target.Function != "" && s.Target.URL != "":
		v.add("target.function", s.Target.Function, "give either target.url or target.function, not both")
	case s.Target.Function != "":
		if !nameRE.MatchString(s.Target.Function) || len(s.Target.Function) > MaxNameLength {
			v.add("target.function", strconv.Quote(s.Target.Function), fmt.Sprintf("use the name of a registered function: 1–%d letters, digits, '-' and '_'", MaxNameLength))
		}
	case s.Target.URL == "":
		v.add("target.url", "", "required: give the http:// or https:// URL that receives batches, or target.function, a function registered with `sluice functions set`")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(s.Target.URL) > maxURLLength:
		v.add("target.url", strconv.Quote(s.Target.URL), "use an absolute http:// or https:// URL")
	case u.User != nil:
		// Not quoted back: the value is the credential.
		v.add("target.url", "(with user:password@)", "credentials in the URL would be stored, shown and logged in clear: "+
			"remove them from the URL and send them from a secret, e.g. --header Authorization=secret:SECRET/KEY")
	}
	validateTargetAuth(v, s.Target)
	if t := s.Target.TimeoutSeconds; t < 0 || t > maxTargetTimeoutSecondsFloat {
		v.add("target.timeoutSeconds", strconv.FormatFloat(t, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
	if p := s.PayloadLimitBytes; p != 0 && (p < MinPayloadLimitBytes || p > MaxPayloadLimitBytes) {
		v.add("payloadLimitBytes", strconv.Itoa(p), fmt.Sprintf("use %d–%d bytes", MinPayloadLimitBytes, MaxPayloadLimitBytes))
	}
	if r := s.Retry.MaximumRetryAttempts; r != nil && (*r < Unlimited || *r > MaxRetryAttempts) {
		v.add("retry.maximumRetryAttempts", strconv.Itoa(*r), fmt.Sprintf("use -1 (unlimited) or 0–%d", MaxRetryAttempts))
	}
	if a := s.Retry.MaximumRecordAgeInSeconds; a != nil && *a != Unlimited && (*a < MinRecordAgeSeconds || *a > MaxRecordAgeSeconds) {
		v.add("retry.maximumRecordAgeInSeconds", strconv.Itoa(*a), fmt.Sprintf("use -1 (unlimited) or %d–%d", MinRecordAgeSeconds, MaxRecordAgeSeconds))
	}

	if len(v.Fields) == 0 {
		return nil
	}
	return v
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return fmt.Errorf("use host:port, e.g. b-1.example.com:9092")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("the port must be a number 1–65535")
	}
	return nil
}

// InheritCreateOnly fills next's empty create-only fields from prev, so an
// update may leave them out.
func InheritCreateOnly(prev, next Spec) Spec {
	if next.UUID == "" {
		next.UUID = prev.UUID
	}
	if len(next.BootstrapServers) == 0 && next.Cluster == "" {
		next.BootstrapServers, next.Cluster = prev.BootstrapServers, prev.Cluster
	}
	if len(next.Topics) == 0 {
		next.Topics = prev.Topics
	}
	if next.StartingPosition == "" {
		next.StartingPosition = prev.StartingPosition
		if next.StartingPositionTimestamp == nil {
			next.StartingPositionTimestamp = prev.StartingPositionTimestamp
		}
	}
	if next.ConsumerGroupID == "" {
		next.ConsumerGroupID = prev.ConsumerGroupID
	}
	return next
}

// CreateOnlyChanges names the fields next changes although they can be set
// only on create, as the reference platform rules: the source, the topics,
// the starting position and the consumer group. Both specs are normalized.
func CreateOnlyChanges(prev, next Spec) *ValidationError {
	var errs []FieldError
	add := func(field string, value any, what string) {
		errs = append(errs, FieldError{Field: field, Value: fmt.Sprint(value),
			Reason: "can be set only when the pipe is created (" + what + "); delete and re-create the pipe to change it"})
	}
	if next.UUID != prev.UUID {
		add("uuid", next.UUID, "Sluice assigns it")
	}
	if !slices.Equal(next.BootstrapServers, prev.BootstrapServers) {
		add("bootstrapServers", strings.Join(next.BootstrapServers, ","), "the consumer group's offsets belong to that cluster")
	}
	if next.Cluster != prev.Cluster {
		add("cluster", next.Cluster, "the consumer group's offsets belong to that cluster")
	}
	if !slices.Equal(next.Topics, prev.Topics) {
		add("topics", strings.Join(next.Topics, ","), "the consumer group's offsets belong to those topics")
	}
	if next.StartingPosition != prev.StartingPosition {
		add("startingPosition", next.StartingPosition, "it applied when the group first read each partition")
	}
	if !sameTime(next.StartingPositionTimestamp, prev.StartingPositionTimestamp) {
		add("startingPositionTimestamp", next.StartingPositionTimestamp, "it applied when the group first read each partition")
	}
	if next.ConsumerGroupID != prev.ConsumerGroupID {
		add("consumerGroupId", next.ConsumerGroupID, "the committed offsets are the group's")
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: errs}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Validate checks a function's name and URL.
func (f Function) Validate() error {
	v := &ValidationError{}
	if f.Name == "" || len(f.Name) > MaxNameLength || !nameRE.MatchString(f.Name) {
		v.add("name", strconv.Quote(f.Name), fmt.Sprintf("use 1–%d letters, digits, '-' and '_'", MaxNameLength))
	}
	if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(f.URL) > maxURLLength {
		v.add("url", strconv.Quote(f.URL), "use an absolute http:// or https:// URL")
	}
	if len(v.Fields) > 0 {
		return v
	}
	return nil
}

// Limits of a target's headers.
const (
	MaxTargetHeaders     = 20
	maxHeaderValueLength = 8 << 10
)

var (
	// headerNameRE is an HTTP field name (RFC 9110's token).
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// secretRefRE is SECRET/KEY, secretNameRE SECRET, as package secret
	// names them (it is not imported: the domain stays free of I/O).
	secretRefRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?/[-._a-zA-Z0-9]{1,253}$`)
	secretNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)
)

// reservedHeaders are set by Sluice itself: a pipe may not replace them.
var reservedHeaders = []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent", "X-Sluice-Pipe", "X-Sluice-Signature"}

func validateTargetAuth(v *ValidationError, t Target) {
	if len(t.Headers) > MaxTargetHeaders {
		v.add("target.headers", strconv.Itoa(len(t.Headers)), fmt.Sprintf("give at most %d headers", MaxTargetHeaders))
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		field := "target.headers." + name
		value := t.Headers[name]
		switch {
		case !headerNameRE.MatchString(name):
			v.add(field, strconv.Quote(name), "use an HTTP header name: letters, digits and !#$%&'*+.^_`|~-")
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, name) }):
			v.add(field, "", "Sluice sets this header itself: use another name")
		}
		ref, isSecret := strings.CutPrefix(value, SecretValuePrefix)
		switch {
		case isSecret && !secretRefRE.MatchString(ref):
			v.add(field, strconv.Quote(value), "a secret value is secret:SECRET/KEY, naming a stored secret and one of its keys")
		case isSecret && t.Function != "":
			v.add(field, "", "headers from secrets need target.url: a function's URL can change without the pipe, and the secret would follow it")
		case !isSecret && (len(value) > maxHeaderValueLength || strings.ContainsAny(value, "\r\n\x00")):
			// Not quoted back: a value may be a credential given in clear.
			v.add(field, "", fmt.Sprintf("use a value of at most %d bytes without line breaks", maxHeaderValueLength))
		}
	}
	if o := t.OAuth; o != nil {
		switch u, err := url.Parse(o.TokenURL); {
		case o.TokenURL == "":
			v.add("target.oauth.tokenUrl", "", "required: the authorization server's token endpoint")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			v.add("target.oauth.tokenUrl", "", "use an absolute https:// URL without user:password@")
		}
		if !secretNameRE.MatchString(o.ClientSecret) {
			v.add("target.oauth.clientSecret", strconv.Quote(o.ClientSecret), "name a stored secret holding the keys clientId and clientSecret")
		}
		if t.Function != "" {
			v.add("target.oauth", "", "OAuth needs target.url: a function's URL can change without the pipe")
		}
		for name := range t.Headers {
			if strings.EqualFold(name, "Authorization") {
				v.add("target.headers."+name, "", "OAuth sets Authorization: give one or the other")
			}
		}
		if len(o.Scopes) > 20 {
			v.add("target.oauth.scopes", strconv.Itoa(len(o.Scopes)), "give at most 20 scopes")
		}
	}
	if s := t.SigningSecret; s != "" {
		switch {
		case !secretRefRE.MatchString(s):
			v.add("target.signingSecret", strconv.Quote(s), "give SECRET/KEY, naming a stored secret and the key holding the signing key")
		case t.Function != "":
			v.add("target.signingSecret", "", "a signing secret needs target.url: a function's URL can change without the pipe")
		}
	}
}
