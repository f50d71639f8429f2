// Package pipe defines what a pipe is: its declared spec, its defaults and
// limits, its validation, and the status the engine reports for it. It does
// no I/O, so every other package can depend on it.
package pipe

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// StartingPosition says where a pipe starts reading a partition for which its
// consumer group has no committed offset. An existing committed offset always
// wins over it.
type StartingPosition string

// Starting positions, named as the reference platform names them.
const (
	TrimHorizon StartingPosition = "TRIM_HORIZON" // the oldest record still in the log
	Latest      StartingPosition = "LATEST"       // only records produced after the pipe joined
	AtTimestamp StartingPosition = "AT_TIMESTAMP" // the first record at or after StartingPositionTimestamp
)

// Limits and defaults. They follow the reference platform's event source
// mapping parameters so that a spec written for it means the same here.
const (
	DefaultBatchSize = 100
	MinBatchSize     = 1
	MaxBatchSize     = 10000

	// DefaultBatchingWindowSeconds is the reference's Kafka default of 500 ms.
	DefaultBatchingWindowSeconds = 0.5
	MaxBatchingWindowSeconds     = 300

	DefaultTargetTimeout = 30 * time.Second
	// MaxTargetTimeout is 14 minutes, the reference's limit for functions
	// behind a Kafka source, so a timed out call can still be retried well
	// within any sane rebalance and session budget.
	MaxTargetTimeout = 14 * time.Minute

	// DefaultPayloadLimitBytes is the reference's 6 MiB synchronous invoke limit.
	DefaultPayloadLimitBytes = 6 << 20
	// MinPayloadLimitBytes leaves room for the event envelope and one small record.
	MinPayloadLimitBytes = 1 << 10
	// MaxPayloadLimitBytes bounds the memory one in-flight batch may hold.
	MaxPayloadLimitBytes = 256 << 20

	// Unlimited is the value of MaximumRetryAttempts and
	// MaximumRecordAgeInSeconds that means "no limit", as in the reference.
	Unlimited                    = -1
	MaxRetryAttempts             = 10000
	MinRecordAgeSeconds          = 60
	MaxRecordAgeSeconds          = 604800
	MaxNameLength                = 64
	MaxTopicLength               = 249
	MaxConsumerGroupIDLength     = 200
	MaxBootstrapServers          = 10
	MaxTopics                    = 1
	maxURLLength                 = 2048
	maxTargetTimeoutSecondsFloat = float64(MaxTargetTimeout / time.Second)
)

// Spec is what a user declares. The zero value of an optional field means
// "use the default"; Normalize fills the defaults in.
type Spec struct {
	// Name identifies the pipe for people: unique, 1–64 characters of
	// letters, digits, '-' and '_'.
	Name string `json:"name"`
	// UUID identifies the pipe for machines and is the default consumer
	// group. Assigned on create; never changes.
	UUID string `json:"uuid,omitempty"`
	// BootstrapServers are the Kafka brokers to start from, as host:port.
	BootstrapServers []string `json:"bootstrapServers,omitempty"`
	// Cluster names a registered cluster (brokers, auth and credentials)
	// instead of BootstrapServers; exactly one of the two is given.
	Cluster string `json:"cluster,omitempty"`
	// Topics to read. The reference allows exactly one.
	Topics []string `json:"topics"`
	// StartingPosition applies only to partitions without a committed offset.
	StartingPosition StartingPosition `json:"startingPosition,omitempty"`
	// StartingPositionTimestamp is required with AT_TIMESTAMP, and may not be
	// in the future.
	StartingPositionTimestamp *time.Time `json:"startingPositionTimestamp,omitempty"`
	// BatchSize is the most records one delivery carries (1–10,000).
	BatchSize int `json:"batchSize,omitempty"`
	// MaximumBatchingWindowInSeconds is how long a batch may wait for more
	// records after its first one (0–300). Nil means the default 0.5 s.
	MaximumBatchingWindowInSeconds *float64 `json:"maximumBatchingWindowInSeconds,omitempty"`
	// ConsumerGroupID defaults to the UUID; it can be set only on create.
	ConsumerGroupID string `json:"consumerGroupId,omitempty"`
	// Enabled defaults to true; false stops consuming and keeps offsets.
	Enabled *bool `json:"enabled,omitempty"`
	// Target is where batches go.
	Target Target `json:"target"`
	// PayloadLimitBytes caps one delivery's encoded body (default 6 MiB).
	PayloadLimitBytes int `json:"payloadLimitBytes,omitempty"`
	// Retry says when a failing batch stops being retried.
	Retry RetryPolicy `json:"retry"`
	// OnFailure says where records go whose retries ran out.
	OnFailure OnFailure `json:"onFailure,omitzero"`
	// Format is the body the target gets: "lambda" (the Lambda Kafka
	// event, the default), "pipes" (the EventBridge Pipes event, a flat
	// array of records) or "cloudevents" (CloudEvents 1.0, a structured
	// batch).
	Format string `json:"format,omitempty"`
	// Enrichment, when set, receives each filtered batch and answers the
	// payload the target gets instead (the Pipes enrichment stage).
	Enrichment *Enrichment `json:"enrichment,omitempty"`
	// InputTemplate, when set, is the Pipes input transformer applied to
	// each record before the target: the target gets a JSON array of the
	// transformed records.
	InputTemplate string `json:"inputTemplate,omitempty"`
	// Description is free text, for people (the Pipes API's Description).
	Description string `json:"description,omitempty"`
	// FilterCriteria keeps only the records that match one of its
	// patterns; the others are committed and counted, never delivered.
	FilterCriteria *FilterCriteria `json:"filterCriteria,omitempty"`
	// Ordering is what stays in order: PARTITION (the default: one batch
	// of a partition in flight at a time), KEY (records of one key stay in
	// offset order, batches of disjoint keys of a partition are in flight
	// together; records without a key keep their place in the partition)
	// or NONE (batches of a partition in flight together, in any order).
	Ordering string `json:"ordering,omitempty"`
	// MinimumConcurrency and MaximumConcurrency bound the batches the pipe
	// has in flight at once, across its partitions (1–1,000; defaults 1
	// and 200, as the reference's MinimumPollers and MaximumPollers): the
	// concurrency controller raises the count while records wait and the
	// target is healthy, and halves it when the target throttles.
	MinimumConcurrency int `json:"minimumConcurrency,omitempty"`
	MaximumConcurrency int `json:"maximumConcurrency,omitempty"`
}

// Orderings.
const (
	OrderingPartition = "PARTITION"
	OrderingKey       = "KEY"
	OrderingNone      = "NONE"
)

// Concurrency limits and defaults.
const (
	DefaultMinimumConcurrency = 1
	DefaultMaximumConcurrency = 200
	MaxConcurrency            = 1000
)

// Enrichment is an HTTP endpoint, or a registered function, that gets the
// filtered batch (transformed by InputTemplate, if set) and answers what
// to deliver.
type Enrichment struct {
	URL      string `json:"url,omitempty"`
	Function string `json:"function,omitempty"`
	// TimeoutSeconds bounds one call (default 30, max 840).
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// InputTemplate transforms each record for the enrichment, as the
	// Pipes EnrichmentParameters.InputTemplate does.
	InputTemplate string `json:"inputTemplate,omitempty"`
}

// FilterCriteria is the reference's: up to 5 event patterns, ORed (see
// package filter for the language and how a Kafka record is matched).
type FilterCriteria struct {
	Filters []Filter `json:"filters"`
}

// Filter is one event pattern, a JSON object as text.
type Filter struct {
	Pattern string `json:"pattern"`
}

// Patterns lists the criteria's patterns; none for nil criteria.
func (f *FilterCriteria) Patterns() []string {
	if f == nil {
		return nil
	}
	out := make([]string, len(f.Filters))
	for i, x := range f.Filters {
		out[i] = x.Pattern
	}
	return out
}

// OnFailure is what happens to records whose retry limits ran out. With
// neither field set they are retried on (the PROBLEM says so), so nothing
// leaves a pipe undelivered unless the user chose where.
type OnFailure struct {
	// Destination receives them, in the reference's failure record
	// format: "kafka://TOPIC" (a topic on the pipe's cluster),
	// "kafka://CLUSTER/TOPIC" (a topic on another registered cluster), an
	// http(s):// URL, or "file:///PATH" (JSON lines, for dev).
	Destination string `json:"destination,omitempty"`
	// Discard drops them, counted and logged with their offsets, as the
	// reference does when limits are set without a destination.
	Discard bool `json:"discard,omitempty"`
}

// Target is where batches go. Exactly one section is set, and which one is
// the target's kind (see Kind); each kind's settings, validation and
// delivery live with its section: http (target_http.go), kafka
// (target_kafka.go), exec (target_exec.go), lambda (target_lambda.go) and
// function (target_function.go).
type Target struct {
	HTTP     *HTTPTarget     `json:"http,omitempty"`
	Kafka    *KafkaTarget    `json:"kafka,omitempty"`
	Exec     *ExecTarget     `json:"exec,omitempty"`
	Lambda   *LambdaTarget   `json:"lambda,omitempty"`
	Function *FunctionTarget `json:"function,omitempty"`
}

// Event formats a pipe's target may get (package event writes them).
const (
	FormatLambda      = "lambda"
	FormatPipes       = "pipes"
	FormatCloudEvents = "cloudevents"
)

// Target kinds, named as their spec sections are.
const (
	KindHTTP     = "http"
	KindKafka    = "kafka"
	KindExec     = "exec"
	KindLambda   = "lambda"
	KindFunction = "function"
)

// Kind is the name of the target's one section, or "" when none or
// several are set (Validate refuses both).
func (t Target) Kind() string {
	kinds := t.kinds()
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// kinds lists the sections that are set.
func (t Target) kinds() []string {
	var out []string
	if t.HTTP != nil {
		out = append(out, KindHTTP)
	}
	if t.Kafka != nil {
		out = append(out, KindKafka)
	}
	if t.Exec != nil {
		out = append(out, KindExec)
	}
	if t.Lambda != nil {
		out = append(out, KindLambda)
	}
	if t.Function != nil {
		out = append(out, KindFunction)
	}
	return out
}

// PartialResponses reports whether the target reads answers as the
// reference's partial batch response (the kind's reportBatchItemFailures;
// an exec target always does, and is not counted here).
func (t Target) PartialResponses() bool {
	switch {
	case t.HTTP != nil:
		return t.HTTP.ReportBatchItemFailures
	case t.Lambda != nil:
		return t.Lambda.ReportBatchItemFailures
	case t.Function != nil:
		return t.Function.ReportBatchItemFailures
	}
	return false
}

// WithPartialResponses is t with its kind's reportBatchItemFailures set
// to on, the section copied; a kind without the setting is t unchanged.
func (t Target) WithPartialResponses(on bool) Target {
	switch {
	case t.HTTP != nil:
		h := *t.HTTP
		h.ReportBatchItemFailures = on
		t.HTTP = &h
	case t.Lambda != nil:
		l := *t.Lambda
		l.ReportBatchItemFailures = on
		t.Lambda = &l
	case t.Function != nil:
		f := *t.Function
		f.ReportBatchItemFailures = on
		t.Function = &f
	}
	return t
}

// FunctionName is the name of the registered function the target
// delivers to (target.http.function or target.function.name), or "".
func (t Target) FunctionName() string {
	if t.Function != nil {
		return t.Function.Name
	}
	return t.HTTPOrZero().Function
}

// SecretRefs lists the secrets the target uses, in a stable order.
func (t Target) SecretRefs() []SecretRef {
	if t.HTTP != nil {
		return t.HTTP.SecretRefs()
	}
	return nil
}

// HTTPTarget is an HTTP endpoint that receives each batch as a POST: a
// URL, or a function registered by name whose URL can change without
// touching the pipes that use it.
type HTTPTarget struct {
	URL string `json:"url,omitempty"`
	// Function names a registered Function instead of a URL.
	Function string `json:"function,omitempty"`
	// TimeoutSeconds bounds one delivery attempt (default 30, max 840).
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// Headers are added to every delivery: API keys, Authorization. A
	// value "secret:SECRET/KEY" is that key of a stored secret, read when
	// the pipe starts and never shown; other values are sent as given.
	Headers map[string]string `json:"headers,omitempty"`
	// SigningSecret, SECRET/KEY, signs every body, as webhook receivers
	// expect: X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>">.
	SigningSecret string `json:"signingSecret,omitempty"`
	// OAuth, when set, sends every delivery with a bearer token from the
	// OAuth 2.0 client credentials grant, cached until it expires.
	OAuth *OAuth `json:"oauth,omitempty"`
	// PathParameterValues fill the URL path's "*" wildcards in order, and
	// QueryParameters are added to its query, as the Pipes API's
	// HttpParameters do; the URL keeps its wildcards, so either can change.
	PathParameterValues []string          `json:"pathParameterValues,omitempty"`
	QueryParameters     map[string]string `json:"queryParameters,omitempty"`
	// ReportBatchItemFailures makes a 2xx answer's body count, as the
	// reference's FunctionResponseTypes ["ReportBatchItemFailures"] does:
	// {"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":N}}]}
	// names the records that failed. Sluice also reads "poison": true on
	// an item: that record goes to the failure destination without
	// further retries.
	ReportBatchItemFailures bool `json:"reportBatchItemFailures,omitempty"`
}

// OAuth is the client credentials grant of a target's authorization server.
type OAuth struct {
	// TokenURL is the authorization server's token endpoint.
	TokenURL string `json:"tokenUrl"`
	// ClientSecret names a secret holding the keys clientId and
	// clientSecret.
	ClientSecret string `json:"clientSecret"`
	// Scopes are asked for with each token, if any.
	Scopes []string `json:"scopes,omitempty"`
}

// The keys of an OAuth client secret.
const (
	OAuthClientIDKey     = "clientId"
	OAuthClientSecretKey = "clientSecret"
)

// SecretValuePrefix starts a header value read from a secret.
const SecretValuePrefix = "secret:"

// SecretRef is a reference to one key of a stored secret.
type SecretRef struct {
	Field  string // where it is used, e.g. target.http.headers.Authorization
	Secret string
	Key    string
	// URL is where the value is sent: the target, or the token endpoint.
	URL string
}

// SecretRefs lists the secrets the HTTP target uses, in a stable order.
func (t HTTPTarget) SecretRefs() []SecretRef {
	var out []SecretRef
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		if ref, ok := strings.CutPrefix(t.Headers[name], SecretValuePrefix); ok {
			s, k, _ := strings.Cut(ref, "/")
			out = append(out, SecretRef{Field: "target.http.headers." + name, Secret: s, Key: k, URL: t.URL})
		}
	}
	if t.SigningSecret != "" {
		s, k, _ := strings.Cut(t.SigningSecret, "/")
		out = append(out, SecretRef{Field: "target.http.signingSecret", Secret: s, Key: k, URL: t.URL})
	}
	if o := t.OAuth; o != nil && o.ClientSecret != "" {
		for _, k := range []string{OAuthClientIDKey, OAuthClientSecretKey} {
			out = append(out, SecretRef{Field: "target.http.oauth.clientSecret", Secret: o.ClientSecret, Key: k, URL: o.TokenURL})
		}
	}
	return out
}

// RetryPolicy bounds the retries of a failed batch. Both limits default to
// Unlimited: a failing batch is retried until it succeeds, as the reference
// does by default, so nothing is dropped without the user asking for it.
type RetryPolicy struct {
	// MaximumRetryAttempts is -1 (unlimited) or 0–10,000; 0 means the
	// first failure is final. Nil means unlimited.
	MaximumRetryAttempts *int `json:"maximumRetryAttempts,omitempty"`
	// MaximumRecordAgeInSeconds is -1 (unlimited) or 60–604,800.
	MaximumRecordAgeInSeconds *int `json:"maximumRecordAgeInSeconds,omitempty"`
	// BisectBatchOnError splits a failed batch in halves and retries each
	// on its own, down to single records, so one poison record is set
	// apart from the rest; the splits do not count as retries.
	BisectBatchOnError bool `json:"bisectBatchOnError,omitempty"`
}

// State is a pipe's lifecycle state, with the reference's names.
type State string

// States.
const (
	StateCreating  State = "Creating"
	StateEnabling  State = "Enabling"
	StateEnabled   State = "Enabled"
	StateDisabling State = "Disabling"
	StateDisabled  State = "Disabled"
	StateUpdating  State = "Updating"
	StateDeleting  State = "Deleting"
)

// Values of LastProcessingResult besides "PROBLEM: …".
const (
	ResultNoRecords = "No records processed"
	ResultOK        = "OK"
	ProblemPrefix   = "PROBLEM: "
)

// Status is what the engine observed about a running pipe.
type Status struct {
	State                 State     `json:"state"`
	StateTransitionReason string    `json:"stateTransitionReason,omitempty"`
	LastProcessingResult  string    `json:"lastProcessingResult"`
	LastModified          time.Time `json:"lastModified"`
}

// Pipe is a spec with its status, as stored and as the API returns it.
type Pipe struct {
	Spec
	Status   Status `json:"status"`
	Revision int64  `json:"revision"`
}

// Errors a Service returns; callers branch on them with errors.Is.
var (
	ErrNotFound = errors.New("pipe not found")
	ErrExists   = errors.New("pipe already exists")
	// ErrConflict means a write named a revision that is no longer the
	// stored one: someone else changed the pipe in between.
	ErrConflict = errors.New("pipe was changed since the revision this write is based on")
	// ErrDeleting means the pipe is being deleted and cannot be changed.
	ErrDeleting = errors.New("pipe is being deleted")
)

// Service manages pipes. The control plane implements it over the store, and
// the API client implements it over HTTP, so the CLI and the server agree on
// one contract.
type Service interface {
	CreatePipe(ctx context.Context, spec Spec) (Pipe, error)
	GetPipe(ctx context.Context, name string) (Pipe, error)
	ListPipes(ctx context.Context) ([]Pipe, error)
	// UpdatePipe replaces the spec of the pipe named spec.Name. Fields
	// that can be set only on create may be left empty (they keep their
	// value) but not changed. A non-zero ifRevision must equal the stored
	// revision, or the update fails with ErrConflict.
	UpdatePipe(ctx context.Context, spec Spec, ifRevision int64) (Pipe, error)
	// DeletePipe starts deleting a pipe: it moves to Deleting at once and
	// is gone once its consumer has stopped and committed.
	DeletePipe(ctx context.Context, name string) error
}

// Function is a named function pipes can target by name, as event source
// mappings name a function: an HTTP endpoint (URL), or a Lambda handler
// Sluice hosts (Handler). Exactly one is set.
type Function struct {
	Name         string    `json:"name"`
	URL          string    `json:"url,omitempty"`
	Handler      *Handler  `json:"handler,omitempty"`
	LastModified time.Time `json:"lastModified"`
	// Status is what a hosted function's processes are doing; the
	// control plane fills it in on reads, and nothing stores it.
	Status *FunctionStatus `json:"status,omitempty"`
}

// Kind is "hosted" for a Handler, "url" otherwise.
func (f Function) Kind() string {
	if f.Handler != nil {
		return FunctionHosted
	}
	return FunctionURL
}

// Function kinds.
const (
	FunctionURL    = "url"
	FunctionHosted = "hosted"
)

// Handler is a Lambda handler Sluice runs as child processes, serving
// them the Lambda Runtime API: a binary built with aws-lambda-go
// (lambda.Start), or any custom runtime's bootstrap.
type Handler struct {
	// Path is the executable, an absolute path on the machine Sluice
	// runs on.
	Path string `json:"path"`
	// Env is added to the handler's environment.
	Env map[string]string `json:"env,omitempty"`
	// Concurrency is how many processes may run at once, each one
	// invocation at a time (default 10, at most 1000).
	Concurrency int `json:"concurrency,omitempty"`
	// TimeoutSeconds bounds one invocation (default 3, as the
	// reference's; at most 900).
	TimeoutSeconds float64 `json:"timeoutSeconds,omitempty"`
	// MemoryMB is told to the handler (AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
	// default 128, 128–10240); Sluice does not enforce it.
	MemoryMB int `json:"memoryMB,omitempty"`
}

// Normalized is h with its defaults filled in: what a hosted function
// runs with.
func (h Handler) Normalized() Handler {
	if h.Concurrency == 0 {
		h.Concurrency = DefaultHandlerConcurrency
	}
	if h.TimeoutSeconds == 0 {
		h.TimeoutSeconds = DefaultHandlerTimeout.Seconds()
	}
	if h.MemoryMB == 0 {
		h.MemoryMB = DefaultHandlerMemoryMB
	}
	return h
}

// Timeout is the bound of one invocation, the default filled in.
func (h Handler) Timeout() time.Duration {
	return time.Duration(h.Normalized().TimeoutSeconds * float64(time.Second))
}

// Handler bounds and defaults.
const (
	DefaultHandlerConcurrency = 10
	MaxHandlerConcurrency     = 1000
	DefaultHandlerTimeout     = 3 * time.Second
	MaxHandlerTimeout         = 900 * time.Second
	DefaultHandlerMemoryMB    = 128
	MinHandlerMemoryMB        = 128
	MaxHandlerMemoryMB        = 10240
)

// FunctionStatus is a hosted function's processes and counts since this
// process started.
type FunctionStatus struct {
	Processes   int    `json:"processes"`
	Busy        int    `json:"busy"`
	Invocations int64  `json:"invocations"`
	Errors      int64  `json:"errors"`
	ColdStarts  int64  `json:"coldStarts"`
	Restarts    int64  `json:"restarts"`
	LastError   string `json:"lastError,omitempty"`
}

// ErrFunctionNotFound and ErrFunctionInUse are what a FunctionService
// returns for a missing function and for deleting one pipes still use.
var (
	ErrFunctionNotFound = errors.New("function not found")
	ErrFunctionInUse    = errors.New("function is used by pipes")
)

// FunctionService manages functions; the engine and the API client
// implement it.
type FunctionService interface {
	// PutFunction creates or replaces a function; pipes using it move to
	// the new URL.
	PutFunction(ctx context.Context, f Function) (Function, error)
	GetFunction(ctx context.Context, name string) (Function, error)
	ListFunctions(ctx context.Context) ([]Function, error)
	// DeleteFunction refuses (ErrFunctionInUse) while a pipe targets it.
	DeleteFunction(ctx context.Context, name string) error
}

// IsEnabled reports whether the pipe should be consuming.
func (s Spec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// GroupID is the consumer group the pipe reads in.
func (s Spec) GroupID() string {
	if s.ConsumerGroupID != "" {
		return s.ConsumerGroupID
	}
	return s.UUID
}

// BatchingWindow is the batching window as a duration.
func (s Spec) BatchingWindow() time.Duration {
	w := DefaultBatchingWindowSeconds
	if s.MaximumBatchingWindowInSeconds != nil {
		w = *s.MaximumBatchingWindowInSeconds
	}
	return time.Duration(w * float64(time.Second))
}

// TargetTimeout is the timeout of one delivery attempt: the kind's
// timeoutSeconds (a Kafka target's deliveryTimeoutSeconds).
func (s Spec) TargetTimeout() time.Duration {
	secs := s.Target.TimeoutSeconds()
	if secs == 0 {
		return DefaultTargetTimeout
	}
	return time.Duration(secs * float64(time.Second))
}

// TimeoutSeconds is the kind's timeoutSeconds (a Kafka target's
// deliveryTimeoutSeconds); 0 when unset or the kind has none.
func (t Target) TimeoutSeconds() float64 {
	switch {
	case t.HTTP != nil:
		return t.HTTP.TimeoutSeconds
	case t.Kafka != nil:
		return t.Kafka.DeliveryTimeoutSeconds
	case t.Exec != nil:
		return t.Exec.TimeoutSeconds
	case t.Lambda != nil:
		return t.Lambda.TimeoutSeconds
	case t.Function != nil:
		return t.Function.TimeoutSeconds
	}
	return 0
}

// WithTimeoutSeconds is t with its kind's timeout set to secs, the
// section copied.
func (t Target) WithTimeoutSeconds(secs float64) Target {
	switch {
	case t.HTTP != nil:
		h := *t.HTTP
		h.TimeoutSeconds = secs
		t.HTTP = &h
	case t.Kafka != nil:
		k := *t.Kafka
		k.DeliveryTimeoutSeconds = secs
		t.Kafka = &k
	case t.Exec != nil:
		e := *t.Exec
		e.TimeoutSeconds = secs
		t.Exec = &e
	case t.Lambda != nil:
		l := *t.Lambda
		l.TimeoutSeconds = secs
		t.Lambda = &l
	case t.Function != nil:
		f := *t.Function
		f.TimeoutSeconds = secs
		t.Function = &f
	}
	return t
}

// MaxRetries is the retry limit, or Unlimited.
func (s Spec) MaxRetries() int {
	if s.Retry.MaximumRetryAttempts == nil {
		return Unlimited
	}
	return *s.Retry.MaximumRetryAttempts
}

// MaxRecordAge is the record age limit, or 0 for unlimited.
func (s Spec) MaxRecordAge() time.Duration {
	if s.Retry.MaximumRecordAgeInSeconds == nil || *s.Retry.MaximumRecordAgeInSeconds == Unlimited {
		return 0
	}
	return time.Duration(*s.Retry.MaximumRecordAgeInSeconds) * time.Second
}

// Normalize returns the spec with every default filled in, so that what is
// stored and shown is what runs.
func (s Spec) Normalize() Spec {
	if s.StartingPosition == "" {
		s.StartingPosition = TrimHorizon
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.MaximumBatchingWindowInSeconds == nil {
		w := DefaultBatchingWindowSeconds
		s.MaximumBatchingWindowInSeconds = &w
	}
	if s.Enabled == nil {
		t := true
		s.Enabled = &t
	}
	s.Target = s.Target.normalize()
	if s.PayloadLimitBytes == 0 {
		s.PayloadLimitBytes = DefaultPayloadLimitBytes
	}
	if s.Format == "" {
		s.Format = FormatLambda
	}
	if s.Ordering == "" {
		s.Ordering = OrderingPartition
	}
	if s.MinimumConcurrency == 0 {
		s.MinimumConcurrency = DefaultMinimumConcurrency
	}
	if s.MaximumConcurrency == 0 {
		s.MaximumConcurrency = max(DefaultMaximumConcurrency, s.MinimumConcurrency)
	}
	if s.Retry.MaximumRetryAttempts == nil {
		u := Unlimited
		s.Retry.MaximumRetryAttempts = &u
	}
	if s.Retry.MaximumRecordAgeInSeconds == nil {
		u := Unlimited
		s.Retry.MaximumRecordAgeInSeconds = &u
	}
	if s.ConsumerGroupID == "" {
		s.ConsumerGroupID = s.UUID
	}
	return s
}

// Where names where the target delivers, without secrets: the http
// section's URL (or "" for a registered function, which callers name
// their way), kafka://[CLUSTER/]TOPIC, exec:COMMAND, or lambda:FUNCTION.
func (t Target) Where() string {
	switch {
	case t.Kafka != nil:
		if t.Kafka.Cluster != "" {
			return "kafka://" + t.Kafka.Cluster + "/" + t.Kafka.Topic
		}
		return "kafka://" + t.Kafka.Topic
	case t.Exec != nil:
		return "exec:" + strings.Join(t.Exec.Command, " ")
	case t.Lambda != nil:
		return "lambda:" + t.Lambda.FunctionName
	}
	return t.HTTPOrZero().URL
}

// normalize fills the defaults of the target's section. The sections are
// copied, so a spec shared with the caller is not changed under it.
func (t Target) normalize() Target {
	switch {
	case t.HTTP != nil:
		h := *t.HTTP
		if h.TimeoutSeconds == 0 {
			h.TimeoutSeconds = DefaultTargetTimeout.Seconds()
		}
		t.HTTP = &h
	case t.Kafka != nil:
		k := t.Kafka.normalize()
		t.Kafka = &k
	case t.Exec != nil:
		e := *t.Exec
		if e.TimeoutSeconds == 0 {
			e.TimeoutSeconds = DefaultTargetTimeout.Seconds()
		}
		t.Exec = &e
	case t.Lambda != nil:
		l := *t.Lambda
		if l.TimeoutSeconds == 0 {
			l.TimeoutSeconds = DefaultTargetTimeout.Seconds()
		}
		t.Lambda = &l
	case t.Function != nil:
		// No default timeout: 0 is the function's own.
		f := *t.Function
		t.Function = &f
	}
	return t
}

// HTTPOrZero is the http section, or its zero value when the target is of
// another kind, for code that reads HTTP fields of any pipe.
func (t Target) HTTPOrZero() HTTPTarget {
	if t.HTTP == nil {
		return HTTPTarget{}
	}
	return *t.HTTP
}

// ARNPrefix starts the ARN a pipe is known by in the Pipes API and in
// input templates (<aws.pipes.pipe-arn>): a fixed region and account, since
// a pipe lives in no AWS account.
const ARNPrefix = "arn:aws:pipes:sluice:000000000000:pipe/"

// ARN is the pipe's ARN.
func ARN(name string) string { return ARNPrefix + name }

// ResolvedURL is the URL the HTTP target posts to: u with its path's "*"
// wildcards filled by PathParameterValues, in order, and QueryParameters
// added. ok is false when the counts of wildcards and values differ.
func (t HTTPTarget) ResolvedURL(u string) (string, bool) {
	if len(t.PathParameterValues) == 0 && len(t.QueryParameters) == 0 {
		return u, true
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return u, false
	}
	segs := strings.Split(parsed.Path, "/")
	next := 0
	for i, seg := range segs {
		if seg == "*" {
			if next >= len(t.PathParameterValues) {
				return u, false
			}
			segs[i] = url.PathEscape(t.PathParameterValues[next])
			next++
		}
	}
	if next != len(t.PathParameterValues) {
		return u, false
	}
	parsed.RawPath = ""
	parsed.Path, _ = url.PathUnescape(strings.Join(segs, "/"))
	parsed.RawPath = strings.Join(segs, "/")
	if len(t.QueryParameters) > 0 {
		q := parsed.Query()
		for _, k := range slices.Sorted(maps.Keys(t.QueryParameters)) {
			q.Set(k, t.QueryParameters[k])
		}
		parsed.RawQuery = q.Encode()
	}
	return parsed.String(), true
}
