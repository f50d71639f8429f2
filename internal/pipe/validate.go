package pipe

import (
	"github.com/sluice-dev/sluice/internal/fielderr"
	"github.com/sluice-dev/sluice/internal/filter"
	"github.com/sluice-dev/sluice/internal/transform"

	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one invalid field: its path in the spec, the bad value and
// what would be accepted instead.
type FieldError = fielderr.Field

// ValidationError holds every invalid field of a spec, so a user fixes them
// all in one round instead of one per attempt. It is the one field-error
// type of every spec (package fielderr), with Kind "pipe".
type ValidationError = fielderr.List

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
	v := fielderr.New("pipe")
	switch {
	case s.Name == "":
		v.Add("name", "", "required: give the pipe a name of letters, digits, '-' and '_'")
	case len(s.Name) > MaxNameLength || !nameRE.MatchString(s.Name):
		v.Add("name", strconv.Quote(s.Name), fmt.Sprintf("use 1–%d letters, digits, '-' and '_'", MaxNameLength))
	}

	switch {
	case s.Cluster != "" && len(s.BootstrapServers) > 0:
		v.Add("cluster", s.Cluster, "give either a cluster or bootstrapServers, not both: the cluster holds its brokers")
	case s.Cluster != "":
		if len(s.Cluster) > MaxNameLength || !nameRE.MatchString(s.Cluster) {
			v.Add("cluster", strconv.Quote(s.Cluster), "name a cluster registered with `sluice clusters set`")
		}
	case len(s.BootstrapServers) == 0:
		v.Add("bootstrapServers", "", "required: give at least one broker as host:port, or a cluster registered with `sluice clusters set`")
	case len(s.BootstrapServers) > MaxBootstrapServers:
		v.Add("bootstrapServers", strconv.Itoa(len(s.BootstrapServers))+" servers", fmt.Sprintf("give 1–%d brokers", MaxBootstrapServers))
	}
	for i, hp := range s.BootstrapServers {
		if err := checkHostPort(hp); err != nil {
			v.Add(fmt.Sprintf("bootstrapServers[%d]", i), strconv.Quote(hp), err.Error())
		}
	}

	switch {
	case len(s.Topics) == 0:
		v.Add("topics", "", "required: name the topic to read")
	case len(s.Topics) > MaxTopics:
		v.Add("topics", strings.Join(s.Topics, ","), fmt.Sprintf("give exactly %d topic; create one pipe per topic", MaxTopics))
	}
	for i, t := range s.Topics {
		if t == "" || t == "." || t == ".." || len(t) > MaxTopicLength || !topicRE.MatchString(t) {
			v.Add(fmt.Sprintf("topics[%d]", i), strconv.Quote(t), fmt.Sprintf("a Kafka topic name is 1–%d letters, digits, '.', '_' and '-' (not '.' or '..')", MaxTopicLength))
		}
	}

	switch s.StartingPosition {
	case "", TrimHorizon, Latest:
		if s.StartingPositionTimestamp != nil {
			v.Add("startingPositionTimestamp", s.StartingPositionTimestamp.Format(time.RFC3339), "only allowed with startingPosition AT_TIMESTAMP")
		}
	case AtTimestamp:
		switch {
		case s.StartingPositionTimestamp == nil:
			v.Add("startingPositionTimestamp", "", "required with startingPosition AT_TIMESTAMP: give an RFC 3339 time")
		case s.StartingPositionTimestamp.After(now):
			v.Add("startingPositionTimestamp", s.StartingPositionTimestamp.Format(time.RFC3339), "may not be in the future")
		}
	default:
		v.Add("startingPosition", strconv.Quote(string(s.StartingPosition)), "use TRIM_HORIZON, LATEST or AT_TIMESTAMP")
	}

	if s.BatchSize != 0 && (s.BatchSize < MinBatchSize || s.BatchSize > MaxBatchSize) {
		v.Add("batchSize", strconv.Itoa(s.BatchSize), fmt.Sprintf("use %d–%d", MinBatchSize, MaxBatchSize))
	}
	if w := s.MaximumBatchingWindowInSeconds; w != nil && (*w < 0 || *w > MaxBatchingWindowSeconds) {
		v.Add("maximumBatchingWindowInSeconds", strconv.FormatFloat(*w, 'f', -1, 64), fmt.Sprintf("use 0–%d seconds", MaxBatchingWindowSeconds))
	}
	if g := s.ConsumerGroupID; g != "" && (len(g) > MaxConsumerGroupIDLength || !groupRE.MatchString(g)) {
		v.Add("consumerGroupId", strconv.Quote(g), fmt.Sprintf("use 1–%d letters, digits, spaces and -/*:_+=.@", MaxConsumerGroupIDLength))
	}

	validateTarget(v, s)
	if p := s.PayloadLimitBytes; p != 0 && (p < MinPayloadLimitBytes || p > MaxPayloadLimitBytes) {
		v.Add("payloadLimitBytes", strconv.Itoa(p), fmt.Sprintf("use %d–%d bytes", MinPayloadLimitBytes, MaxPayloadLimitBytes))
	}
	if r := s.Retry.MaximumRetryAttempts; r != nil && (*r < Unlimited || *r > MaxRetryAttempts) {
		v.Add("retry.maximumRetryAttempts", strconv.Itoa(*r), fmt.Sprintf("use -1 (unlimited) or 0–%d", MaxRetryAttempts))
	}
	if a := s.Retry.MaximumRecordAgeInSeconds; a != nil && *a != Unlimited && (*a < MinRecordAgeSeconds || *a > MaxRecordAgeSeconds) {
		v.Add("retry.maximumRecordAgeInSeconds", strconv.Itoa(*a), fmt.Sprintf("use -1 (unlimited) or %d–%d", MinRecordAgeSeconds, MaxRecordAgeSeconds))
	}
	validateOnFailure(v, s)
	validateFilters(v, s.FilterCriteria)
	if s.InputTemplate != "" {
		if _, err := transform.Compile(s.InputTemplate); err != nil {
			v.Add("inputTemplate", "", err.Error())
		}
	}
	if e := s.Enrichment; e != nil && e.InputTemplate != "" {
		if _, err := transform.Compile(e.InputTemplate); err != nil {
			v.Add("enrichment.inputTemplate", "", err.Error())
		}
	}
	if e := s.Enrichment; e != nil {
		switch u, err := url.Parse(e.URL); {
		case e.URL != "" && e.Function != "":
			v.Add("enrichment.function", e.Function, "give either enrichment.url or enrichment.function, not both")
		case e.Function != "":
			if !nameRE.MatchString(e.Function) || len(e.Function) > MaxNameLength {
				v.Add("enrichment.function", strconv.Quote(e.Function), "use the name of a function registered with `sluice functions set`")
			}
		case e.URL == "":
			v.Add("enrichment.url", "", "required: give the http:// or https:// URL of the enrichment endpoint, or enrichment.function")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(e.URL) > maxURLLength:
			v.Add("enrichment.url", "", "use an absolute http:// or https:// URL without user:password@")
		}
		if t := e.TimeoutSeconds; t < 0 || t > maxTargetTimeoutSecondsFloat {
			v.Add("enrichment.timeoutSeconds", strconv.FormatFloat(t, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
		}
	}
	switch s.Ordering {
	case "", OrderingPartition, OrderingKey, OrderingNone:
	default:
		v.Add("ordering", strconv.Quote(s.Ordering), "use PARTITION (one batch of a partition in flight, the default), KEY (per-key order) or NONE")
	}
	if k := s.Target.Kafka; k != nil && k.Delivery == ExactlyOnce && s.Ordering != "" && s.Ordering != OrderingPartition {
		v.Add("ordering", s.Ordering, "EXACTLY_ONCE delivers a poll per transaction: leave ordering PARTITION")
	}
	for _, c := range []struct {
		field string
		n     int
	}{{"minimumConcurrency", s.MinimumConcurrency}, {"maximumConcurrency", s.MaximumConcurrency}} {
		if c.n < 0 || c.n > MaxConcurrency {
			v.Add(c.field, strconv.Itoa(c.n), fmt.Sprintf("use 1–%d batches in flight across the pipe's partitions", MaxConcurrency))
		}
	}
	if lo, hi := s.MinimumConcurrency, s.MaximumConcurrency; lo > 0 && hi > 0 && lo > hi {
		v.Add("minimumConcurrency", strconv.Itoa(lo), fmt.Sprintf("use at most maximumConcurrency (%d)", hi))
	}
	switch s.Format {
	case "", FormatLambda, FormatPipes, FormatCloudEvents:
	default:
		v.Add("format", strconv.Quote(s.Format), "use lambda (the Lambda Kafka event, the default), pipes (the EventBridge Pipes event) or cloudevents (CloudEvents 1.0, structured batch)")
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
	return &ValidationError{Kind: "pipe", Fields: errs}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Validate checks a function's name and URL.
func (f Function) Validate() error {
	v := fielderr.New("pipe")
	if f.Name == "" || len(f.Name) > MaxNameLength || !nameRE.MatchString(f.Name) {
		v.Add("name", strconv.Quote(f.Name), fmt.Sprintf("use 1–%d letters, digits, '-' and '_'", MaxNameLength))
	}
	switch h := f.Handler; {
	case h != nil && f.URL != "":
		v.Add("url", strconv.Quote(f.URL), "give either url (an HTTP endpoint) or handler (a program Sluice runs), not both")
	case h != nil:
		validateHandler(v, h)
	default:
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(f.URL) > maxURLLength {
			v.Add("url", strconv.Quote(f.URL), "use an absolute http:// or https:// URL, or give handler: the path of a Lambda handler for Sluice to run")
		}
	}
	if len(v.Fields) > 0 {
		return v
	}
	return nil
}

// validateHandler checks a hosted function's handler.
func validateHandler(v *ValidationError, h *Handler) {
	switch {
	case h.Path == "":
		v.Add("handler.path", "", "required: give the path of the handler's executable (a binary built with aws-lambda-go, or a bootstrap)")
	case !filepath.IsAbs(h.Path) || strings.ContainsRune(h.Path, 0):
		v.Add("handler.path", strconv.Quote(h.Path), "use an absolute path on the machine Sluice runs on")
	}
	if c := h.Concurrency; c < 0 || c > MaxHandlerConcurrency {
		v.Add("handler.concurrency", strconv.Itoa(c), fmt.Sprintf("use 1–%d processes (0 is the default, %d)", MaxHandlerConcurrency, DefaultHandlerConcurrency))
	}
	if s := h.TimeoutSeconds; !(s >= 0 && s <= MaxHandlerTimeout.Seconds()) {
		v.Add("handler.timeoutSeconds", strconv.FormatFloat(s, 'f', -1, 64), fmt.Sprintf("use up to %d seconds (0 is the default, %s)", int(MaxHandlerTimeout.Seconds()), DefaultHandlerTimeout))
	}
	if m := h.MemoryMB; m != 0 && (m < MinHandlerMemoryMB || m > MaxHandlerMemoryMB) {
		v.Add("handler.memoryMB", strconv.Itoa(m), fmt.Sprintf("use %d–%d MB (0 is the default, %d)", MinHandlerMemoryMB, MaxHandlerMemoryMB, DefaultHandlerMemoryMB))
	}
	for _, name := range slices.Sorted(maps.Keys(h.Env)) {
		field := "handler.env." + name
		switch {
		case !envNameRE.MatchString(name):
			v.Add(field, strconv.Quote(name), "use a variable name of letters, digits and '_' that does not start with a digit")
		case name == "AWS_LAMBDA_RUNTIME_API" || name == "_HANDLER" || strings.HasPrefix(name, ExecEnvReservedPrefix):
			v.Add(field, strconv.Quote(name), "Sluice sets this variable itself: use another name")
		}
		if strings.ContainsRune(h.Env[name], 0) {
			v.Add(field, "", "remove the NUL byte: no environment value can hold one")
		}
	}
}

// Failure destination schemes.
const (
	DestinationKafka = "kafka"
	DestinationHTTP  = "http"
	DestinationFile  = "file"
)

// maxDestinationLength is the reference's DestinationConfig limit.
const maxDestinationLength = 350

// Destination is a parsed OnFailure.Destination.
type Destination struct {
	Scheme string // DestinationKafka, DestinationHTTP or DestinationFile
	// Cluster and Topic, for kafka: Cluster is "" for the pipe's own.
	Cluster, Topic string
	// URL, for http (http or https) and file (the absolute path in Path).
	URL, Path string
}

// ParseDestination reads a failure destination URI, or explains what a
// valid one looks like.
func ParseDestination(raw string) (Destination, error) {
	if len(raw) > maxDestinationLength {
		return Destination{}, fmt.Errorf("use at most %d characters", maxDestinationLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Destination{}, errors.New("use kafka://TOPIC, kafka://CLUSTER/TOPIC, an http(s):// URL or file:///PATH")
	}
	switch u.Scheme {
	case "kafka":
		d := Destination{Scheme: DestinationKafka, Topic: u.Host}
		if p := strings.TrimPrefix(u.Path, "/"); p != "" {
			d.Cluster, d.Topic = u.Host, p
		}
		if d.Topic == "" || d.Topic == "." || d.Topic == ".." || len(d.Topic) > MaxTopicLength || !topicRE.MatchString(d.Topic) || u.RawQuery != "" || u.User != nil {
			return Destination{}, fmt.Errorf("use kafka://TOPIC (a topic on the pipe's cluster) or kafka://CLUSTER/TOPIC, with a Kafka topic name of 1–%d letters, digits, '.', '_' and '-'", MaxTopicLength)
		}
		if d.Cluster != "" && !nameRE.MatchString(d.Cluster) {
			return Destination{}, errors.New("in kafka://CLUSTER/TOPIC, CLUSTER is a cluster registered with `sluice clusters set`")
		}
		return d, nil
	case "http", "https":
		if u.Host == "" {
			return Destination{}, errors.New("use an absolute http:// or https:// URL")
		}
		if u.User != nil {
			return Destination{}, errors.New("remove the user:password@ from the URL: it would be stored and shown in clear")
		}
		return Destination{Scheme: DestinationHTTP, URL: raw}, nil
	case "file":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			return Destination{}, errors.New("use file:///ABSOLUTE/PATH.jsonl (three slashes)")
		}
		return Destination{Scheme: DestinationFile, Path: u.Path}, nil
	}
	return Destination{}, errors.New("use kafka://TOPIC, kafka://CLUSTER/TOPIC, an http(s):// URL or file:///PATH")
}

func validateOnFailure(v *ValidationError, s Spec) {
	f := s.OnFailure
	if f.Destination == "" {
		return
	}
	if f.Discard {
		v.Add("onFailure.discard", "true", "give either onFailure.destination or onFailure.discard, not both")
	}
	d, err := ParseDestination(f.Destination)
	if err != nil {
		v.Add("onFailure.destination", strconv.Quote(f.Destination), err.Error())
		return
	}
	if d.Scheme == DestinationKafka && (d.Cluster == "" || d.Cluster == s.Cluster) && slices.Contains(s.Topics, d.Topic) {
		v.Add("onFailure.destination", strconv.Quote(f.Destination), "the failure destination must differ from the topic the pipe reads: records that failed would be read again")
	}
}

// validateFilters compiles the patterns, naming the one that fails with
// its position and the fix.
func validateFilters(v *ValidationError, f *FilterCriteria) {
	if f == nil {
		return
	}
	if len(f.Filters) == 0 {
		v.Add("filterCriteria.filters", "", "give at least one pattern, or leave filterCriteria out to deliver every record")
		return
	}
	if _, err := filter.CompileAll(f.Patterns()); err != nil {
		var fe *filter.Error
		field := "filterCriteria.filters"
		if errors.As(err, &fe) && fe.Index >= 0 {
			field = fmt.Sprintf("filterCriteria.filters[%d].pattern", fe.Index)
		}
		v.Add(field, "", err.Error())
	}
}
