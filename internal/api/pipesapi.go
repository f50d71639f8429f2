package api

// The Amazon EventBridge Pipes API (2015-10-07), so the AWS CLI, SDKs,
// Terraform and CloudFormation manage Kafka-sourced pipes unchanged
// (`aws pipes … --endpoint-url`). Shapes follow the pipes 2015-10-07 model
// (service-2.json, rest-json); a field of the model that Sluice does not
// implement is refused with a ValidationException naming it, never
// accepted and ignored. RoleArn is the one exception: the model requires
// it and Sluice has no IAM, so it is accepted and not used (nor stored:
// DescribePipe does not show it, as pipe.Spec has no field for it).
//
// Pipes created here have Format "pipes" (the Pipes event, a flat array
// of records). Omitted, StartingPosition is Sluice's default TRIM_HORIZON
// and the batching window its 0.5 s (shown rounded, as the model's integer).
// UpdatePipe changes the members it is given and keeps the others; a Kafka
// parameters section or HttpParameters given is replaced as one, so a
// batching member left out there is back to its default (Credentials left
// out are kept). Sluice keeps no creation time apart from the last change,
// so CreationTime is LastModifiedTime.
//
//	POST   /v1/pipes/{Name}        CreatePipe
//	GET    /v1/pipes/{Name}        DescribePipe
//	PUT    /v1/pipes/{Name}        UpdatePipe
//	DELETE /v1/pipes/{Name}        DeletePipe
//	GET    /v1/pipes               ListPipes
//	POST   /v1/pipes/{Name}/start  StartPipe
//	POST   /v1/pipes/{Name}/stop   StopPipe
//	GET    /tags/{resourceArn}     ListTagsForResource (always none)
//
// Routing. These paths are the native API's, so a request is a Pipes API
// request when its AWS Signature V4 credential scope names the service
// pipes, as every AWS client signs it:
//
//	Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/pipes/aws4_request, …
//
// (or X-Amz-Credential in a presigned query); every other request is the
// native API's. The signature is never verified. Without authentication
// (`sluice dev`) any key is taken; with WithAuth the access key id must be
// a Sluice token with the scope the request needs, exactly as on the
// Lambda-compatible routes (auth.go), and a refusal is answered as AWS
// does: 403 UnrecognizedClientException or AccessDeniedException.
//
// Sluice has no accounts or regions: a pipe's ARN is
// arn:aws:pipes:sluice:000000000000:pipe/NAME, and a registered function
// shows as arn:aws:lambda:sluice:000000000000:function:NAME, as on the
// Lambda-compatible API.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/fielderr"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/strictjson"
)

// pipesService is the SigV4 signing name of the Pipes API.
const pipesService = "pipes"

// pipeARNPrefix is how a pipe appears as Arn: Sluice has no account or
// region, so they are fixed.
const pipeARNPrefix = pipe.ARNPrefix

// Pipes error types, as the SDKs read them from x-amzn-errortype.
const (
	pipesValidation   = "ValidationException"
	pipesNotFound     = "NotFoundException"
	pipesConflict     = "ConflictException"
	pipesInternal     = "InternalException"
	pipesUnknownOp    = "UnknownOperationException"
	pipesMaxInput     = 8192 // InputTemplate
	pipesMaxDesc      = 512  // Description
	pipesMaxListLimit = 100
)

// Pipe states of the model.
const (
	pipesRunning  = "RUNNING"
	pipesStopped  = "STOPPED"
	pipesDeleted  = "DELETED"
	pipesDeleting = "DELETING"
)

// Kafka source parameter sections, also the prefix of their fields' names.
const (
	smkParams = "SourceParameters.SelfManagedKafkaParameters"
	mskParams = "SourceParameters.ManagedStreamingKafkaParameters"
)

// pipesRequest is CreatePipeRequest and UpdatePipeRequest. Fields Sluice
// does not implement are raw, only to notice that they were sent; the
// ones of newer models (LogConfiguration, KmsKeyIdentifier) too, so they
// are named rather than called unknown.
type pipesRequest struct {
	Description          *string                `json:"Description,omitempty"`
	DesiredState         *string                `json:"DesiredState,omitempty"`
	Enrichment           *string                `json:"Enrichment,omitempty"`
	EnrichmentParameters *pipesEnrichmentParams `json:"EnrichmentParameters,omitempty"`
	RoleArn              *string                `json:"RoleArn,omitempty"`
	Source               *string                `json:"Source,omitempty"`
	SourceParameters     *pipesSourceParams     `json:"SourceParameters,omitempty"`
	Tags                 map[string]string      `json:"Tags,omitempty"`
	Target               *string                `json:"Target,omitempty"`
	TargetParameters     *pipesTargetParams     `json:"TargetParameters,omitempty"`
	LogConfiguration     json.RawMessage        `json:"LogConfiguration,omitempty"`
	KmsKeyIdentifier     json.RawMessage        `json:"KmsKeyIdentifier,omitempty"`
}

// pipesSourceParams is PipeSourceParameters (and its Update variant).
type pipesSourceParams struct {
	FilterCriteria                  *pipesFilterCriteria `json:"FilterCriteria,omitempty"`
	SelfManagedKafkaParameters      *pipesKafkaParams    `json:"SelfManagedKafkaParameters,omitempty"`
	ManagedStreamingKafkaParameters *pipesKafkaParams    `json:"ManagedStreamingKafkaParameters,omitempty"`
	ActiveMQBrokerParameters        json.RawMessage      `json:"ActiveMQBrokerParameters,omitempty"`
	DynamoDBStreamParameters        json.RawMessage      `json:"DynamoDBStreamParameters,omitempty"`
	KinesisStreamParameters         json.RawMessage      `json:"KinesisStreamParameters,omitempty"`
	RabbitMQBrokerParameters        json.RawMessage      `json:"RabbitMQBrokerParameters,omitempty"`
	SqsQueueParameters              json.RawMessage      `json:"SqsQueueParameters,omitempty"`
}

// pipesKafkaParams is the union of PipeSourceSelfManagedKafkaParameters
// and PipeSourceManagedStreamingKafkaParameters (and their Update
// variants); what a section does not have is refused by name.
type pipesKafkaParams struct {
	TopicName                      *string           `json:"TopicName,omitempty"`
	StartingPosition               *string           `json:"StartingPosition,omitempty"`
	BatchSize                      *int              `json:"BatchSize,omitempty"`
	MaximumBatchingWindowInSeconds *int              `json:"MaximumBatchingWindowInSeconds,omitempty"`
	ConsumerGroupID                *string           `json:"ConsumerGroupID,omitempty"`
	AdditionalBootstrapServers     []string          `json:"AdditionalBootstrapServers,omitempty"`
	Credentials                    *pipesCredentials `json:"Credentials,omitempty"`
	ServerRootCaCertificate        *string           `json:"ServerRootCaCertificate,omitempty"`
	Vpc                            json.RawMessage   `json:"Vpc,omitempty"`
}

// pipesCredentials is SelfManagedKafkaAccessConfigurationCredentials (and
// MSKAccessCredentials), a union: one member is set.
type pipesCredentials struct {
	BasicAuth                *string `json:"BasicAuth,omitempty"`
	SaslScram256Auth         *string `json:"SaslScram256Auth,omitempty"`
	SaslScram512Auth         *string `json:"SaslScram512Auth,omitempty"`
	ClientCertificateTlsAuth *string `json:"ClientCertificateTlsAuth,omitempty"`
}

type pipesFilterCriteria struct {
	Filters []pipesFilter `json:"Filters"`
}

type pipesFilter struct {
	Pattern *string `json:"Pattern,omitempty"`
}

// pipesTargetParams is PipeTargetParameters.
type pipesTargetParams struct {
	InputTemplate                      *string              `json:"InputTemplate,omitempty"`
	HttpParameters                     *pipesHTTPParams     `json:"HttpParameters,omitempty"`
	LambdaFunctionParameters           *pipesLambdaFunction `json:"LambdaFunctionParameters,omitempty"`
	BatchJobParameters                 json.RawMessage      `json:"BatchJobParameters,omitempty"`
	CloudWatchLogsParameters           json.RawMessage      `json:"CloudWatchLogsParameters,omitempty"`
	EcsTaskParameters                  json.RawMessage      `json:"EcsTaskParameters,omitempty"`
	EventBridgeEventBusParameters      json.RawMessage      `json:"EventBridgeEventBusParameters,omitempty"`
	KinesisStreamParameters            json.RawMessage      `json:"KinesisStreamParameters,omitempty"`
	RedshiftDataParameters             json.RawMessage      `json:"RedshiftDataParameters,omitempty"`
	SageMakerPipelineParameters        json.RawMessage      `json:"SageMakerPipelineParameters,omitempty"`
	SqsQueueParameters                 json.RawMessage      `json:"SqsQueueParameters,omitempty"`
	StepFunctionStateMachineParameters json.RawMessage      `json:"StepFunctionStateMachineParameters,omitempty"`
	TimestreamParameters               json.RawMessage      `json:"TimestreamParameters,omitempty"`
}

// pipesLambdaFunction is PipeTargetLambdaFunctionParameters: Sluice
// always waits for the answer, REQUEST_RESPONSE.
type pipesLambdaFunction struct {
	InvocationType *string `json:"InvocationType,omitempty"`
}

// pipesHTTPParams is PipeTargetHttpParameters (and the enrichment's).
type pipesHTTPParams struct {
	HeaderParameters      map[string]string `json:"HeaderParameters,omitempty"`
	PathParameterValues   []string          `json:"PathParameterValues,omitempty"`
	QueryStringParameters map[string]string `json:"QueryStringParameters,omitempty"`
}

// pipesEnrichmentParams is PipeEnrichmentParameters.
type pipesEnrichmentParams struct {
	InputTemplate  *string          `json:"InputTemplate,omitempty"`
	HttpParameters *pipesHTTPParams `json:"HttpParameters,omitempty"`
}

// pipeState is the answer of CreatePipe, UpdatePipe, StartPipe, StopPipe
// and DeletePipe.
type pipeState struct {
	Arn              string  `json:"Arn"`
	Name             string  `json:"Name"`
	CreationTime     float64 `json:"CreationTime"`
	LastModifiedTime float64 `json:"LastModifiedTime"`
	CurrentState     string  `json:"CurrentState"`
	DesiredState     string  `json:"DesiredState"`
}

// pipeSummary is Pipe, a ListPipes entry.
type pipeSummary struct {
	pipeState
	StateReason string `json:"StateReason,omitempty"`
	Source      string `json:"Source"`
	Target      string `json:"Target"`
	Enrichment  string `json:"Enrichment,omitempty"`
}

// pipeDescription is DescribePipeResponse.
type pipeDescription struct {
	pipeSummary
	Description          string                 `json:"Description,omitempty"`
	SourceParameters     *pipesSourceParams     `json:"SourceParameters,omitempty"`
	TargetParameters     *pipesTargetParams     `json:"TargetParameters,omitempty"`
	EnrichmentParameters *pipesEnrichmentParams `json:"EnrichmentParameters,omitempty"`
}

// pipesError is an error as the Pipes API answers it.
type pipesError struct {
	status int
	typ    string
	msg    string
	fields []pipesField // ValidationException's fieldList
	// ConflictException's resourceId and resourceType.
	resourceID, resourceType string
}

// pipesField is a ValidationExceptionField.
type pipesField struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (e *pipesError) Error() string { return e.typ + ": " + e.msg }

// pipesInvalid is a ValidationException about one field.
func pipesInvalid(field, format string, args ...any) *pipesError {
	msg := fmt.Sprintf(format, args...)
	return &pipesError{status: http.StatusBadRequest, typ: pipesValidation, msg: field + ": " + msg,
		fields: []pipesField{{Name: field, Message: msg}}}
}

func pipesConflictErr(name, msg string) *pipesError {
	return &pipesError{status: http.StatusConflict, typ: pipesConflict, msg: msg, resourceID: name, resourceType: "pipe"}
}

// pipesAPI serves the Pipes API over the same services as the native API.
type pipesAPI struct {
	h        *handler
	funcs    pipe.FunctionService // nil: targets must be URLs
	clusters cluster.Service      // nil: MSK sources and Credentials are refused
	mux      *http.ServeMux
}

func newPipesAPI(h *handler, funcs pipe.FunctionService, clusters cluster.Service) *pipesAPI {
	p := &pipesAPI{h: h, funcs: funcs, clusters: clusters, mux: http.NewServeMux()}
	for _, path := range []string{"/v1/pipes", "/v1/pipes/{$}"} {
		p.mux.HandleFunc("GET "+path, p.list)
	}
	p.mux.HandleFunc("POST /v1/pipes/{name}", p.create)
	p.mux.HandleFunc("GET /v1/pipes/{name}", p.describe)
	p.mux.HandleFunc("PUT /v1/pipes/{name}", p.update)
	p.mux.HandleFunc("DELETE /v1/pipes/{name}", p.delete)
	p.mux.HandleFunc("POST /v1/pipes/{name}/start", func(w http.ResponseWriter, r *http.Request) { p.setRunning(w, r, true) })
	p.mux.HandleFunc("POST /v1/pipes/{name}/stop", func(w http.ResponseWriter, r *http.Request) { p.setRunning(w, r, false) })
	p.mux.HandleFunc("GET /tags/{arn...}", p.listTags)
	p.mux.HandleFunc("POST /tags/{arn...}", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, pipesInvalid("tags", "Sluice does not keep tags on pipes; leave them out."), "")
	})
	p.mux.HandleFunc("DELETE /tags/{arn...}", func(w http.ResponseWriter, r *http.Request) {
		// No pipe has tags, so removing some leaves none.
		p.h.writeJSON(w, r, http.StatusOK, struct{}{})
	})
	p.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, &pipesError{status: http.StatusNotFound, typ: pipesUnknownOp,
			msg: fmt.Sprintf("%s %s is not an operation of the EventBridge Pipes API that Sluice serves.", r.Method, r.URL.Path)}, "")
	})
	return p
}

// route sends Pipes API requests (by their SigV4 credential scope) to the
// Pipes API behind its token check, and every other request to native.
func (p *pipesAPI) route(native http.Handler) http.Handler {
	pipes := p.h.obs.auth.wrapPipes(p.h.log, p.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sigV4Service(r) == pipesService {
			pipes.ServeHTTP(w, r)
			return
		}
		native.ServeHTTP(w, r)
	})
}

// sigV4Service is the service of the request's SigV4 credential scope
// (KEY/DATE/REGION/SERVICE/aws4_request), from the Authorization header or
// a presigned URL's X-Amz-Credential; "" when it has none.
func sigV4Service(r *http.Request) string {
	cred := ""
	scheme, rest, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if scheme == "AWS4-HMAC-SHA256" {
		for _, part := range strings.Split(rest, ",") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				cred = c
				break
			}
		}
	} else if strings.Contains(r.URL.RawQuery, "X-Amz-Credential") {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return ""
	}
	return parts[3]
}

// wrapPipes is the token check of the Pipes API, the Lambda-compatible
// routes' one (wrap) with the Pipes API's refusals: the token is the
// access key id of the SigV4 header (or a bearer token); the signature is
// not verified (see requestToken). A nil a (no WithAuth, `sluice dev`)
// checks nothing.
func (a *authenticator) wrapPipes(log *slog.Logger, next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := requestToken(r.Header.Get("Authorization"), true)
		if token == "" {
			log.DebugContext(r.Context(), "pipes api request refused: no token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writePipesError(w, &pipesError{status: http.StatusForbidden, typ: lambdaUnrecognizedClient, msg: lambdaInvalidTokenMsg})
			return
		}
		tok, ok, err := a.check(r.Context(), token)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			id := requestID()
			log.ErrorContext(r.Context(), "api token lookup failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
			writePipesError(w, &pipesError{status: http.StatusInternalServerError, typ: pipesInternal, msg: "internal error (request id " + id + "); the server log has the details"})
			return
		}
		if !ok {
			log.InfoContext(r.Context(), "pipes api request refused: invalid token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writePipesError(w, &pipesError{status: http.StatusForbidden, typ: lambdaUnrecognizedClient, msg: lambdaInvalidTokenMsg})
			return
		}
		if need := requiredScope(r); scopeRank(tok.scope) < scopeRank(need) {
			log.InfoContext(r.Context(), "pipes api request refused: token scope", "method", r.Method, "path", r.URL.Path, "token", tok.name, "scope", tok.scope, "needs", need)
			writePipesError(w, &pipesError{status: http.StatusForbidden, typ: lambdaAccessDenied, msg: fmt.Sprintf(
				"token %q has scope %s; %s %s needs %s: use a token with scope %s (sluice tokens create NAME --scope %s)",
				tok.name, tok.scope, r.Method, r.URL.Path, need, need, need)})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, tok)))
	})
}

// writePipesError writes e as the Pipes API does: the type in
// x-amzn-errortype, the message (and the exception's other members) in
// the body.
func writePipesError(w http.ResponseWriter, e *pipesError) {
	body := map[string]any{"message": e.msg}
	if e.typ == pipesValidation {
		fields := e.fields
		if fields == nil {
			fields = []pipesField{}
		}
		body["fieldList"] = fields
	}
	if e.typ == pipesConflict {
		body["resourceId"], body["resourceType"] = e.resourceID, e.resourceType
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("x-amzn-errortype", e.typ)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// fail answers err. kafka is the source parameter section the request's
// pipe has (smkParams or mskParams), to name native fields; "" is smkParams.
func (p *pipesAPI) fail(w http.ResponseWriter, r *http.Request, err error, kafka string) {
	name := r.PathValue("name")
	var pe *pipesError
	var ve *fielderr.List
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &ve):
		pe = pipesFieldErrors(ve, kafka)
	case errors.Is(err, pipe.ErrNotFound):
		pe = &pipesError{status: http.StatusNotFound, typ: pipesNotFound, msg: fmt.Sprintf("Pipe %s does not exist.", name)}
	case errors.Is(err, pipe.ErrFunctionNotFound):
		pe = &pipesError{status: http.StatusNotFound, typ: pipesNotFound, msg: err.Error()}
	case errors.Is(err, pipe.ErrExists):
		pe = pipesConflictErr(name, fmt.Sprintf("Pipe %s already exists: delete it first or choose another name.", name))
	case errors.Is(err, pipe.ErrDeleting):
		pe = pipesConflictErr(name, fmt.Sprintf("Pipe %s is being deleted: wait until it is gone.", name))
	case errors.Is(err, pipe.ErrConflict):
		pe = pipesConflictErr(name, fmt.Sprintf("Another operation changed pipe %s at the same time; retry.", name))
	case r.Context().Err() != nil:
		return
	default:
		id := requestID()
		p.h.log.ErrorContext(r.Context(), "pipes api request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		pe = &pipesError{status: http.StatusInternalServerError, typ: pipesInternal, msg: "internal error (request id " + id + "); the server log has the details"}
	}
	writePipesError(w, pe)
}

// pipesFieldErrors is a native validation error as a ValidationException,
// its fields named as the Pipes API names them.
func pipesFieldErrors(ve *fielderr.List, kafka string) *pipesError {
	e := &pipesError{status: http.StatusBadRequest, typ: pipesValidation}
	msgs := make([]string, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		f.Field = pipesFieldName(f.Field, kafka)
		msg := f.Reason
		if f.Value != "" {
			msg = "invalid value " + f.Value + ": " + f.Reason
		}
		e.fields = append(e.fields, pipesField{Name: f.Field, Message: msg})
		msgs = append(msgs, f.Error())
	}
	e.msg = strings.Join(msgs, "; ")
	return e
}

// pipesFieldName is a spec field's name in the Pipes API.
func pipesFieldName(f, kafka string) string {
	if kafka == "" {
		kafka = smkParams
	}
	switch f {
	case "name":
		return "Name"
	case "cluster", "bootstrapServers", "bootstrapServers[0]":
		return "Source"
	case "topics", "topics[0]":
		return kafka + ".TopicName"
	case "startingPosition", "startingPositionTimestamp":
		return kafka + ".StartingPosition"
	case "batchSize":
		return kafka + ".BatchSize"
	case "maximumBatchingWindowInSeconds":
		return kafka + ".MaximumBatchingWindowInSeconds"
	case "consumerGroupId":
		return kafka + ".ConsumerGroupID"
	case "enabled":
		return "DesiredState"
	case "target", "target.http.url", "target.http.function":
		return "Target"
	case "enrichment", "enrichment.url", "enrichment.function":
		return "Enrichment"
	case "enrichment.inputTemplate":
		return "EnrichmentParameters.InputTemplate"
	case "inputTemplate":
		return "TargetParameters.InputTemplate"
	case "description":
		return "Description"
	case "target.http.headers":
		return "TargetParameters.HttpParameters.HeaderParameters"
	case "target.http.pathParameterValues":
		return "TargetParameters.HttpParameters.PathParameterValues"
	case "target.http.queryParameters":
		return "TargetParameters.HttpParameters.QueryStringParameters"
	}
	if rest, ok := strings.CutPrefix(f, "bootstrapServers["); ok {
		if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil {
			return fmt.Sprintf("%s.AdditionalBootstrapServers[%d]", kafka, i-1)
		}
	}
	if rest, ok := strings.CutPrefix(f, "filterCriteria.filters"); ok {
		return "SourceParameters.FilterCriteria.Filters" + strings.Replace(rest, ".pattern", ".Pattern", 1)
	}
	if rest, ok := strings.CutPrefix(f, "target.http.headers."); ok {
		return "TargetParameters.HttpParameters.HeaderParameters." + rest
	}
	if strings.HasPrefix(f, "target.") {
		return "Target"
	}
	return f
}

// decode reads a CreatePipe or UpdatePipe body strictly.
func (p *pipesAPI) decode(w http.ResponseWriter, r *http.Request) (pipesRequest, error) {
	var req pipesRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return req, &pipesError{status: http.StatusRequestEntityTooLarge, typ: pipesValidation,
			msg: fmt.Sprintf("The request body is larger than %d bytes; a pipe request is far smaller.", MaxBodyBytes)}
	case err != nil:
		return req, &pipesError{status: http.StatusBadRequest, typ: pipesValidation, msg: "cannot read the request body: " + err.Error()}
	}
	if err := strictjson.Unmarshal(b, &req); err != nil && !errors.Is(err, strictjson.ErrEmpty) {
		var se *strictjson.Error
		switch {
		case errors.As(err, &se) && strings.HasPrefix(se.Reason, "unknown field"):
			return req, pipesInvalid(se.Field, "not a parameter of the EventBridge Pipes API (%s).", se.Reason)
		case errors.As(err, &se):
			return req, pipesInvalid(se.Field, "%s", se.Reason)
		}
		return req, &pipesError{status: http.StatusBadRequest, typ: pipesValidation, msg: "The request body is not a valid pipe request: " + err.Error()}
	}
	return req, pipesRefuseUnsupported(req)
}

// set reports whether a raw member was sent with a value.
func rawSet(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// refuseUnsupported refuses, by name, the members of the model Sluice does
// not implement.
func pipesRefuseUnsupported(req pipesRequest) error {
	if len(req.Tags) > 0 {
		return pipesInvalid("Tags", "Sluice does not keep tags on pipes; leave them out.")
	}
	if rawSet(req.LogConfiguration) {
		return pipesInvalid("LogConfiguration", "Sluice logs to its own log and metrics (`sluice pipes describe`); leave it out.")
	}
	if rawSet(req.KmsKeyIdentifier) {
		return pipesInvalid("KmsKeyIdentifier", "Sluice has no KMS: its store is sealed with its own master key; leave it out.")
	}
	if s := req.SourceParameters; s != nil {
		for name, raw := range map[string]json.RawMessage{
			"ActiveMQBrokerParameters": s.ActiveMQBrokerParameters, "DynamoDBStreamParameters": s.DynamoDBStreamParameters,
			"KinesisStreamParameters": s.KinesisStreamParameters, "RabbitMQBrokerParameters": s.RabbitMQBrokerParameters,
			"SqsQueueParameters": s.SqsQueueParameters,
		} {
			if rawSet(raw) {
				return pipesInvalid("SourceParameters."+name, "Sluice reads Kafka only: use SelfManagedKafkaParameters (Source smk://HOST:PORT) or ManagedStreamingKafkaParameters (Source an MSK cluster ARN).")
			}
		}
		for section, k := range map[string]*pipesKafkaParams{smkParams: s.SelfManagedKafkaParameters, mskParams: s.ManagedStreamingKafkaParameters} {
			if k != nil && rawSet(k.Vpc) {
				return pipesInvalid(section+".Vpc", "Sluice connects from where it runs; place it in the cluster's network and leave Vpc out.")
			}
		}
	}
	if t := req.TargetParameters; t != nil {
		for name, raw := range map[string]json.RawMessage{
			"BatchJobParameters": t.BatchJobParameters, "CloudWatchLogsParameters": t.CloudWatchLogsParameters,
			"EcsTaskParameters": t.EcsTaskParameters, "EventBridgeEventBusParameters": t.EventBridgeEventBusParameters,
			"KinesisStreamParameters": t.KinesisStreamParameters, "RedshiftDataParameters": t.RedshiftDataParameters,
			"SageMakerPipelineParameters": t.SageMakerPipelineParameters, "SqsQueueParameters": t.SqsQueueParameters,
			"StepFunctionStateMachineParameters": t.StepFunctionStateMachineParameters, "TimestreamParameters": t.TimestreamParameters,
		} {
			if rawSet(raw) {
				return pipesInvalid("TargetParameters."+name, "Sluice delivers over HTTP: the Target is an http(s) URL, a Lambda function ARN or an API destination ARN naming a function registered in Sluice; leave it out.")
			}
		}
		if l := t.LambdaFunctionParameters; l != nil && l.InvocationType != nil && *l.InvocationType != "REQUEST_RESPONSE" {
			return pipesInvalid("TargetParameters.LambdaFunctionParameters.InvocationType", "%q: Sluice waits for the target's answer before it commits, so the only value is REQUEST_RESPONSE.", *l.InvocationType)
		}
	}
	if e := req.EnrichmentParameters; e != nil && e.HttpParameters != nil && !pipesEmptyHTTP(e.HttpParameters) {
		return pipesInvalid("EnrichmentParameters.HttpParameters", "Sluice sends the enrichment no extra headers, path or query parameters; put them in the Enrichment URL or leave them out.")
	}
	if req.DesiredState != nil && *req.DesiredState != pipesRunning && *req.DesiredState != pipesStopped {
		return pipesInvalid("DesiredState", "%q: use RUNNING or STOPPED.", *req.DesiredState)
	}
	if d := req.Description; d != nil && len(*d) > pipesMaxDesc {
		return pipesInvalid("Description", "%d characters: use at most %d.", len(*d), pipesMaxDesc)
	}
	if t := req.TargetParameters; t != nil && t.InputTemplate != nil && len(*t.InputTemplate) > pipesMaxInput {
		return pipesInvalid("TargetParameters.InputTemplate", "%d characters: use at most %d.", len(*t.InputTemplate), pipesMaxInput)
	}
	if e := req.EnrichmentParameters; e != nil && e.InputTemplate != nil && len(*e.InputTemplate) > pipesMaxInput {
		return pipesInvalid("EnrichmentParameters.InputTemplate", "%d characters: use at most %d.", len(*e.InputTemplate), pipesMaxInput)
	}
	return nil
}

func pipesEmptyHTTP(h *pipesHTTPParams) bool {
	return len(h.HeaderParameters) == 0 && len(h.PathParameterValues) == 0 && len(h.QueryStringParameters) == 0
}

// endpoint resolves a Target or Enrichment: an http(s) URL is the endpoint
// itself; a Lambda function ARN or an API destination ARN names a
// function registered in Sluice.
func (p *pipesAPI) endpoint(r *http.Request, field, s string) (u, fn string, err error) {
	if pu, err := url.Parse(s); err == nil && (pu.Scheme == "http" || pu.Scheme == "https") {
		return s, "", nil
	}
	name := ""
	if _, rest, ok := strings.Cut(s, ":function:"); ok && strings.HasPrefix(s, "arn:") {
		name, _, _ = strings.Cut(rest, ":")
	} else if _, rest, ok := strings.Cut(s, ":api-destination/"); ok && strings.HasPrefix(s, "arn:") {
		name, _, _ = strings.Cut(rest, "/")
	} else {
		return "", "", pipesInvalid(field, "%s: Sluice delivers over HTTP; use an http(s) URL, or a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME) or API destination ARN naming a function registered with `sluice functions set NAME --url URL`.", s)
	}
	if name == "" {
		return "", "", pipesInvalid(field, "%s: the ARN names no function.", s)
	}
	if p.funcs == nil {
		return "", "", pipesInvalid(field, "%s: this server has no function registry; give an http(s) URL.", s)
	}
	if _, err := p.funcs.GetFunction(r.Context(), name); err != nil {
		if errors.Is(err, pipe.ErrFunctionNotFound) {
			return "", "", pipesInvalid(field, "%s: no function %q is registered in Sluice; register it with `sluice functions set %s --url URL`, or give an http(s) URL.", s, name, name)
		}
		return "", "", err
	}
	return "", name, nil
}

// headers maps TargetParameters.HttpParameters: static headers only.
func pipesHeaders(h *pipesHTTPParams) (map[string]string, error) {
	const field = "TargetParameters.HttpParameters"
	for k, v := range h.QueryStringParameters {
		if strings.HasPrefix(k, "$") || strings.HasPrefix(v, "$.") {
			return nil, pipesInvalid(field+".QueryStringParameters."+k, "dynamic values ($.path) are not supported by Sluice; give a static value.")
		}
	}
	for i, v := range h.PathParameterValues {
		if strings.HasPrefix(v, "$.") {
			return nil, pipesInvalid(fmt.Sprintf("%s.PathParameterValues[%d]", field, i), "dynamic values ($.path) are not supported by Sluice; give a static value.")
		}
	}
	if len(h.HeaderParameters) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(h.HeaderParameters)) {
		v := h.HeaderParameters[k]
		if strings.HasPrefix(k, "$") || strings.HasPrefix(v, "$.") {
			return nil, pipesInvalid(field+".HeaderParameters."+k, "dynamic values ($.path) are not supported by Sluice; give a static header.")
		}
		out[k] = v
	}
	return out, nil
}

// sourceKind is the parameter section of a Source: smkParams for
// smk://HOST:PORT, mskParams for an ARN.
func pipesSourceKind(source string) string {
	if strings.HasPrefix(source, "arn:") {
		return mskParams
	}
	return smkParams
}

// source sets where a new pipe reads from, and returns its parameter
// section and the credentials to store with its brokers, if any.
func (p *pipesAPI) source(r *http.Request, req pipesRequest, spec *pipe.Spec) (string, *pipesKafkaParams, error) {
	src := *req.Source
	sp := req.SourceParameters
	if sp == nil {
		sp = &pipesSourceParams{}
	}
	kind := pipesSourceKind(src)
	var k *pipesKafkaParams
	switch {
	case strings.HasPrefix(src, "smk://"):
		if sp.ManagedStreamingKafkaParameters != nil {
			return kind, nil, pipesInvalid(mskParams, "goes with a Source that is an MSK cluster ARN; with smk://HOST:PORT use SelfManagedKafkaParameters.")
		}
		k = sp.SelfManagedKafkaParameters
		if k == nil {
			return kind, nil, pipesInvalid(smkParams, "required with a Source smk://HOST:PORT: give at least TopicName.")
		}
		spec.BootstrapServers = append([]string{strings.TrimPrefix(src, "smk://")}, k.AdditionalBootstrapServers...)
	case strings.HasPrefix(src, "arn:"):
		if _, _, err := cluster.ParseARN(src); err != nil {
			return kind, nil, pipesInvalid("Source", "%s: Sluice reads Kafka only; use smk://HOST:PORT, or an MSK cluster ARN (arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID) of a cluster registered in Sluice.", src)
		}
		if sp.SelfManagedKafkaParameters != nil {
			return kind, nil, pipesInvalid(smkParams, "goes with a Source smk://HOST:PORT; with an MSK cluster ARN use ManagedStreamingKafkaParameters.")
		}
		k = sp.ManagedStreamingKafkaParameters
		if k == nil {
			return kind, nil, pipesInvalid(mskParams, "required with a Source that is an MSK cluster ARN: give at least TopicName.")
		}
		if k.AdditionalBootstrapServers != nil || k.ServerRootCaCertificate != nil {
			f := "AdditionalBootstrapServers"
			if k.ServerRootCaCertificate != nil {
				f = "ServerRootCaCertificate"
			}
			return kind, nil, pipesInvalid(mskParams+"."+f, "not a parameter of ManagedStreamingKafkaParameters; the cluster registered in Sluice holds its brokers and TLS settings.")
		}
		if k.Credentials != nil {
			return kind, nil, pipesInvalid(mskParams+".Credentials", "an MSK cluster named by its ARN has its auth in Sluice; set it with `sluice clusters set NAME --msk --arn ARN --auth …` and leave Credentials out.")
		}
		c, err := p.clusterByARN(r, src)
		if err != nil {
			return kind, nil, err
		}
		spec.Cluster = c.Name
	default:
		return kind, nil, pipesInvalid("Source", "%s: use smk://HOST:PORT (self-managed Kafka), or the ARN of an MSK cluster registered in Sluice.", src)
	}
	if k.TopicName == nil || *k.TopicName == "" {
		return kind, nil, pipesInvalid(kind+".TopicName", "required: name the topic to read.")
	}
	spec.Topics = []string{*k.TopicName}
	if sp := k.StartingPosition; sp != nil {
		if *sp != string(pipe.TrimHorizon) && *sp != string(pipe.Latest) {
			return kind, nil, pipesInvalid(kind+".StartingPosition", "%q: use TRIM_HORIZON or LATEST.", *sp)
		}
		spec.StartingPosition = pipe.StartingPosition(*sp)
	}
	if k.ConsumerGroupID != nil {
		spec.ConsumerGroupID = *k.ConsumerGroupID
	}
	pipesApplyBatching(spec, k)
	if k.Credentials != nil || k.ServerRootCaCertificate != nil {
		return kind, k, nil
	}
	return kind, nil, nil
}

// applyBatching sets the batching parameters of a Kafka section; they are
// replaced as one, so one left out is back to its default.
func pipesApplyBatching(spec *pipe.Spec, k *pipesKafkaParams) {
	spec.BatchSize = 0
	if k.BatchSize != nil {
		spec.BatchSize = *k.BatchSize
	}
	spec.MaximumBatchingWindowInSeconds = nil
	if k.MaximumBatchingWindowInSeconds != nil {
		w := float64(*k.MaximumBatchingWindowInSeconds)
		spec.MaximumBatchingWindowInSeconds = &w
	}
}

// clusterByARN is the registered MSK cluster a Source ARN names: the one
// registered with that ARN, else one named as in the ARN that has none.
func (p *pipesAPI) clusterByARN(r *http.Request, arn string) (cluster.Cluster, error) {
	_, name, err := cluster.ParseARN(arn)
	if err != nil || p.clusters == nil {
		return cluster.Cluster{}, pipesInvalid("Source", "%s: this server has no cluster registry; use smk://HOST:PORT.", arn)
	}
	all, err := p.clusters.ListClusters(r.Context())
	if err != nil {
		return cluster.Cluster{}, err
	}
	var byName *cluster.Cluster
	for i, c := range all {
		if c.MSK && c.ARN == arn {
			return c, nil
		}
		if c.Name == name {
			byName = &all[i]
		}
	}
	switch {
	case byName == nil:
		return cluster.Cluster{}, pipesInvalid("Source", "%s: no MSK cluster is registered in Sluice with this ARN; register it with `sluice clusters set %s --msk --arn %s --bootstrap-servers HOST:PORT …`.", arn, name, arn)
	case !byName.MSK:
		return cluster.Cluster{}, pipesInvalid("Source", "%s: cluster %q is not marked as MSK; mark it with `sluice clusters set %s --msk --arn %s …`, or use smk://HOST:PORT.", arn, name, name, arn)
	case byName.ARN != "":
		return cluster.Cluster{}, pipesInvalid("Source", "%s: cluster %q is registered with ARN %s, and no cluster with this one; use that ARN.", arn, name, byName.ARN)
	}
	return *byName, nil
}

// putCredentials stores the cluster a self-managed source's Credentials
// and ServerRootCaCertificate describe, owned by the pipe (and deleted
// with it), as the Lambda-compatible API does for
// SourceAccessConfigurations: each value names a Sluice secret (a Secrets
// Manager ARN's secret name works too) in the reference's formats.
func (p *pipesAPI) putCredentials(r *http.Request, clusters cluster.Service, name string, brokers []string, k *pipesKafkaParams) error {
	const field = smkParams + ".Credentials"
	if err := needScope(r, ScopeAdmin, "Credentials, which register credentials,"); err != nil {
		return &pipesError{status: http.StatusForbidden, typ: lambdaAccessDenied, msg: err.Error()}
	}
	if clusters == nil {
		return pipesInvalid(field, "this server has no cluster registry.")
	}
	c := cluster.Cluster{Name: name, Owner: name, BootstrapServers: brokers, Auth: cluster.AuthTLS}
	secretOf := func(f, v string) (string, error) {
		s := secretFromURI(v)
		if s == "" {
			return "", pipesInvalid(f, "%q: name a secret created with `sluice secrets create`, or a Secrets Manager ARN whose secret name is one.", v)
		}
		return s, nil
	}
	saslField := field
	if cr := k.Credentials; cr != nil {
		n := 0
		for member, v := range map[string]*string{"BasicAuth": cr.BasicAuth, "SaslScram256Auth": cr.SaslScram256Auth,
			"SaslScram512Auth": cr.SaslScram512Auth, "ClientCertificateTlsAuth": cr.ClientCertificateTlsAuth} {
			if v == nil {
				continue
			}
			n++
			s, err := secretOf(field+"."+member, *v)
			if err != nil {
				return err
			}
			switch member {
			case "BasicAuth":
				c.Auth, c.PasswordSecret = cluster.AuthPlain, s+"/password"
			case "SaslScram256Auth":
				c.Auth, c.PasswordSecret = cluster.AuthScramSHA256, s+"/password"
			case "SaslScram512Auth":
				c.Auth, c.PasswordSecret = cluster.AuthScramSHA512, s+"/password"
			default:
				c.Auth, c.ClientCertSecret = cluster.AuthMTLS, s
			}
			saslField = field + "." + member
		}
		if n != 1 {
			return pipesInvalid(field, "give exactly one of BasicAuth, SaslScram256Auth, SaslScram512Auth and ClientCertificateTlsAuth.")
		}
	}
	if v := k.ServerRootCaCertificate; v != nil {
		s, err := secretOf(smkParams+".ServerRootCaCertificate", *v)
		if err != nil {
			return err
		}
		c.CACertSecret = s
	}
	if _, err := clusters.PutCluster(r.Context(), c); err != nil {
		var ve *fielderr.List
		if !errors.As(err, &ve) {
			return err
		}
		e := &pipesError{status: http.StatusBadRequest, typ: pipesValidation}
		var msgs []string
		for _, f := range ve.Fields {
			n := saslField
			switch f.Field {
			case "caCertSecret":
				n = smkParams + ".ServerRootCaCertificate"
			case "bootstrapServers":
				n = "Source"
			}
			pf := pipesField{Name: n, Message: f.Reason}
			if slices.Contains(e.fields, pf) {
				continue // two checks of one secret may say the same
			}
			e.fields = append(e.fields, pf)
			msgs = append(msgs, n+": "+f.Reason)
		}
		e.msg = strings.Join(msgs, "; ")
		return e
	}
	return nil
}

// ownedCluster is the cluster made for pipe p from its Credentials, if any.
func (p *pipesAPI) ownedCluster(ctx context.Context, pp pipe.Pipe) (cluster.Cluster, bool) {
	if pp.Cluster == "" || p.clusters == nil {
		return cluster.Cluster{}, false
	}
	c, err := p.clusters.GetCluster(ctx, pp.Cluster)
	return c, err == nil && c.Owner == pp.Name
}

// applyCommon sets what create and update take alike. Each member given
// replaces what the pipe has; one left out keeps it.
func (p *pipesAPI) applyCommon(r *http.Request, req pipesRequest, spec *pipe.Spec) error {
	if req.Description != nil {
		spec.Description = *req.Description
	}
	if req.DesiredState != nil {
		on := *req.DesiredState == pipesRunning
		spec.Enabled = &on
	}
	if req.Target != nil {
		u, fn, err := p.endpoint(r, "Target", *req.Target)
		if err != nil {
			return err
		}
		old := spec.Target.HTTPOrZero()
		spec.Target = pipe.Target{HTTP: &pipe.HTTPTarget{URL: u, Function: fn, TimeoutSeconds: old.TimeoutSeconds,
			Headers: old.Headers, SigningSecret: old.SigningSecret, OAuth: old.OAuth, ReportBatchItemFailures: old.ReportBatchItemFailures}}
	}
	if t := req.TargetParameters; t != nil {
		if t.InputTemplate != nil {
			spec.InputTemplate = *t.InputTemplate
		}
		if t.HttpParameters != nil {
			h, err := pipesHeaders(t.HttpParameters)
			if err != nil {
				return err
			}
			if spec.Target.HTTP != nil {
				ht := *spec.Target.HTTP
				ht.Headers = h
				ht.PathParameterValues = t.HttpParameters.PathParameterValues
				ht.QueryParameters = t.HttpParameters.QueryStringParameters
				spec.Target.HTTP = &ht
			}
		}
	}
	if req.Enrichment != nil {
		if *req.Enrichment == "" {
			spec.Enrichment = nil
		} else {
			u, fn, err := p.endpoint(r, "Enrichment", *req.Enrichment)
			if err != nil {
				return err
			}
			e := pipe.Enrichment{URL: u, Function: fn}
			if spec.Enrichment != nil {
				e.TimeoutSeconds, e.InputTemplate = spec.Enrichment.TimeoutSeconds, spec.Enrichment.InputTemplate
			}
			spec.Enrichment = &e
		}
	}
	if e := req.EnrichmentParameters; e != nil && e.InputTemplate != nil {
		if spec.Enrichment == nil {
			if *e.InputTemplate != "" {
				return pipesInvalid("EnrichmentParameters.InputTemplate", "transforms records for the enrichment; give Enrichment too.")
			}
		} else {
			en := *spec.Enrichment
			en.InputTemplate = *e.InputTemplate
			spec.Enrichment = &en
		}
	}
	if sp := req.SourceParameters; sp != nil && sp.FilterCriteria != nil {
		// No filters removes the filter stage.
		spec.FilterCriteria = nil
		if fs := sp.FilterCriteria.Filters; len(fs) > 0 {
			spec.FilterCriteria = &pipe.FilterCriteria{Filters: make([]pipe.Filter, len(fs))}
			for i, f := range fs {
				if f.Pattern != nil {
					spec.FilterCriteria.Filters[i].Pattern = *f.Pattern
				}
			}
		}
	}
	return nil
}

func (p *pipesAPI) create(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	req, err := p.decode(w, r)
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	for field, v := range map[string]*string{"RoleArn": req.RoleArn, "Source": req.Source, "Target": req.Target} {
		if v == nil || *v == "" {
			msg := "required."
			if field == "RoleArn" {
				msg = "required by the Pipes API; Sluice has no IAM and does not use it, so any role ARN will do."
			}
			p.fail(w, r, pipesInvalid(field, "%s", msg), "")
			return
		}
	}
	spec := pipe.Spec{Name: name, Format: pipe.FormatPipes}
	kind, creds, err := p.source(r, req, &spec)
	if err != nil {
		p.fail(w, r, err, kind)
		return
	}
	if err := p.applyCommon(r, req, &spec); err != nil {
		p.fail(w, r, err, kind)
		return
	}
	if creds != nil {
		// The brokers and their auth become a cluster owned by the pipe,
		// named as it is: a pipe or cluster of that name must not exist.
		if _, err := p.h.svc.GetPipe(r.Context(), name); err == nil {
			p.fail(w, r, pipe.ErrExists, kind)
			return
		}
		if p.clusters != nil {
			if _, err := p.clusters.GetCluster(r.Context(), name); err == nil {
				p.fail(w, r, pipesInvalid(smkParams+".Credentials", "Sluice stores the brokers and credentials of pipe %s as a cluster of that name, and cluster %q is already registered; name the pipe differently, or use that cluster with the native API.", name, name), kind)
				return
			}
		}
	}
	var pp pipe.Pipe
	create := func(pipes pipe.Service, clusters cluster.Service) error {
		if creds != nil {
			if err := p.putCredentials(r, clusters, name, spec.BootstrapServers, creds); err != nil {
				return err
			}
			spec.Cluster, spec.BootstrapServers = name, nil
		}
		var err error
		pp, err = pipes.CreatePipe(r.Context(), spec)
		return err
	}
	if a := p.h.obs.atomic; a != nil {
		// The cluster and the pipe commit together or not at all.
		err = a.Atomic(r.Context(), create)
	} else if err = create(p.h.svc, p.clusters); err != nil && creds != nil && spec.Cluster == name {
		_ = p.clusters.DeleteCluster(context.WithoutCancel(r.Context()), name)
	}
	if err != nil {
		p.fail(w, r, err, kind)
		return
	}
	p.h.writeJSON(w, r, http.StatusOK, pipesStateOf(pp))
}

func (p *pipesAPI) describe(w http.ResponseWriter, r *http.Request) {
	pp, err := p.h.svc.GetPipe(r.Context(), r.PathValue("name"))
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	var cl *cluster.Cluster
	if pp.Cluster != "" && p.clusters != nil {
		if c, err := p.clusters.GetCluster(r.Context(), pp.Cluster); err == nil {
			cl = &c
		}
	}
	d := pipesDescribe(pp, cl)
	if pp.Status.State == pipe.StateDeleting {
		d.DesiredState = pipesDeleted
	}
	p.h.writeJSON(w, r, http.StatusOK, d)
}

func (p *pipesAPI) update(w http.ResponseWriter, r *http.Request) {
	req, err := p.decode(w, r)
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	if req.RoleArn == nil || *req.RoleArn == "" {
		p.fail(w, r, pipesInvalid("RoleArn", "required by the Pipes API; Sluice has no IAM and does not use it, so any role ARN will do."), "")
		return
	}
	if req.Source != nil {
		p.fail(w, r, pipesInvalid("Source", "not a parameter of UpdatePipe: a pipe's source is set when it is created; delete it and create a new one to change it."), "")
		return
	}
	pp, err := p.h.svc.GetPipe(r.Context(), r.PathValue("name"))
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	if pp.Status.State == pipe.StateDeleting {
		p.fail(w, r, pipe.ErrDeleting, "")
		return
	}
	owned, isOwned := p.ownedCluster(r.Context(), pp)
	msk := pp.Cluster != "" && !isOwned && p.isMSK(r.Context(), pp.Cluster)
	kind := smkParams
	if msk {
		kind = mskParams
	}
	spec := pp.Spec
	if sp := req.SourceParameters; sp != nil {
		other := sp.ManagedStreamingKafkaParameters
		if msk {
			other = sp.SelfManagedKafkaParameters
		}
		if other != nil {
			section := mskParams
			if msk {
				section = smkParams
			}
			p.fail(w, r, pipesInvalid(section, "does not go with this pipe's source; update %s.", kind), kind)
			return
		}
		k := sp.SelfManagedKafkaParameters
		if msk {
			k = sp.ManagedStreamingKafkaParameters
		}
		if k != nil {
			for f, given := range map[string]bool{"TopicName": k.TopicName != nil, "StartingPosition": k.StartingPosition != nil,
				"ConsumerGroupID": k.ConsumerGroupID != nil, "AdditionalBootstrapServers": k.AdditionalBootstrapServers != nil} {
				if given {
					p.fail(w, r, pipesInvalid(kind+"."+f, "can be set only when the pipe is created; delete it and create a new one to change it."), kind)
					return
				}
			}
			if msk && (k.Credentials != nil || k.ServerRootCaCertificate != nil) {
				p.fail(w, r, pipesInvalid(mskParams+".Credentials", "an MSK cluster named by its ARN has its auth in Sluice; change it with `sluice clusters set`."), kind)
				return
			}
			if k.Credentials != nil || k.ServerRootCaCertificate != nil {
				if !isOwned {
					p.fail(w, r, pipesInvalid(smkParams+".Credentials", "can be changed only on a pipe created with Credentials or ServerRootCaCertificate; delete it and create a new one with them."), kind)
					return
				}
				// Left out, the other one of the two is kept.
				if k.Credentials == nil || k.ServerRootCaCertificate == nil {
					prev := pipesCredentialsOf(owned)
					if k.Credentials == nil {
						k.Credentials = prev.Credentials
					}
					if k.ServerRootCaCertificate == nil {
						k.ServerRootCaCertificate = prev.ServerRootCaCertificate
					}
				}
				if err := p.putCredentials(r, p.clusters, pp.Name, owned.BootstrapServers, k); err != nil {
					p.fail(w, r, err, kind)
					return
				}
			}
			pipesApplyBatching(&spec, k)
		}
	}
	if err := p.applyCommon(r, req, &spec); err != nil {
		p.fail(w, r, err, kind)
		return
	}
	// The revision read above makes this a compare-and-set: a concurrent
	// change answers ConflictException instead of being lost.
	up, err := p.h.svc.UpdatePipe(r.Context(), spec, pp.Revision)
	if err != nil {
		p.fail(w, r, err, kind)
		return
	}
	p.h.writeJSON(w, r, http.StatusOK, pipesStateOf(up))
}

func (p *pipesAPI) isMSK(ctx context.Context, name string) bool {
	if p.clusters == nil {
		return false
	}
	c, err := p.clusters.GetCluster(ctx, name)
	return err == nil && c.MSK
}

// setRunning is StartPipe and StopPipe.
func (p *pipesAPI) setRunning(w http.ResponseWriter, r *http.Request, on bool) {
	pp, err := p.h.svc.GetPipe(r.Context(), r.PathValue("name"))
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	if pp.Status.State == pipe.StateDeleting {
		p.fail(w, r, pipe.ErrDeleting, "")
		return
	}
	spec := pp.Spec
	spec.Enabled = &on
	up, err := p.h.svc.UpdatePipe(r.Context(), spec, pp.Revision)
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	p.h.writeJSON(w, r, http.StatusOK, pipesStateOf(up))
}

func (p *pipesAPI) delete(w http.ResponseWriter, r *http.Request) {
	pp, err := p.h.svc.GetPipe(r.Context(), r.PathValue("name"))
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	if err := p.h.svc.DeletePipe(r.Context(), pp.Name); err != nil {
		p.fail(w, r, err, "")
		return
	}
	s := pipesStateOf(pp)
	s.CurrentState, s.DesiredState = pipesDeleting, pipesDeleted
	p.h.writeJSON(w, r, http.StatusOK, s)
}

// pipeStates are the model's PipeState values, for checking ListPipes'
// CurrentState.
var pipeStates = []string{"RUNNING", "STOPPED", "CREATING", "UPDATING", "DELETING", "STARTING", "STOPPING",
	"CREATE_FAILED", "UPDATE_FAILED", "START_FAILED", "STOP_FAILED"}

func (p *pipesAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := pipesMaxListLimit
	if s := q.Get("Limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > pipesMaxListLimit {
			p.fail(w, r, pipesInvalid("Limit", "%s: use 1–%d.", s, pipesMaxListLimit), "")
			return
		}
		limit = n
	}
	if s := q.Get("DesiredState"); s != "" && s != pipesRunning && s != pipesStopped {
		p.fail(w, r, pipesInvalid("DesiredState", "%q: use RUNNING or STOPPED.", s), "")
		return
	}
	if s := q.Get("CurrentState"); s != "" && !slices.Contains(pipeStates, s) {
		p.fail(w, r, pipesInvalid("CurrentState", "%q: use one of %s.", s, strings.Join(pipeStates, ", ")), "")
		return
	}
	// The token is the last name of the page before, so paging stays
	// consistent while pipes are created and deleted.
	after := ""
	if tok := q.Get("NextToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) == 0 {
			p.fail(w, r, pipesInvalid("NextToken", "not a token ListPipes returned; leave it out to start from the first page."), "")
			return
		}
		after = string(b)
	}
	ps, err := p.h.svc.ListPipes(r.Context())
	if err != nil {
		p.fail(w, r, err, "")
		return
	}
	clusters := map[string]*cluster.Cluster{}
	if p.clusters != nil {
		all, err := p.clusters.ListClusters(r.Context())
		if err != nil {
			p.fail(w, r, err, "")
			return
		}
		for i := range all {
			clusters[all[i].Name] = &all[i]
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	out := []pipeSummary{}
	next := ""
	for _, pp := range ps {
		if pp.Name <= after || !strings.HasPrefix(pp.Name, q.Get("NamePrefix")) {
			continue
		}
		s := pipesSummary(pp, clusters[pp.Cluster])
		if (q.Get("DesiredState") != "" && s.DesiredState != q.Get("DesiredState")) ||
			(q.Get("CurrentState") != "" && s.CurrentState != q.Get("CurrentState")) ||
			!strings.HasPrefix(s.Source, q.Get("SourcePrefix")) || !strings.HasPrefix(s.Target, q.Get("TargetPrefix")) {
			continue
		}
		if len(out) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].Name))
			break
		}
		out = append(out, s)
	}
	resp := map[string]any{"Pipes": out}
	if next != "" {
		resp["NextToken"] = next
	}
	p.h.writeJSON(w, r, http.StatusOK, resp)
}

// listTags is ListTagsForResource: a pipe has no tags in Sluice.
func (p *pipesAPI) listTags(w http.ResponseWriter, r *http.Request) {
	arn := r.PathValue("arn")
	name, ok := strings.CutPrefix(arn, pipeARNPrefix)
	if !ok {
		p.fail(w, r, &pipesError{status: http.StatusNotFound, typ: pipesNotFound, msg: fmt.Sprintf("Resource %s does not exist: Sluice's pipes are %sNAME.", arn, pipeARNPrefix)}, "")
		return
	}
	if _, err := p.h.svc.GetPipe(r.Context(), name); err != nil {
		if errors.Is(err, pipe.ErrNotFound) {
			err = &pipesError{status: http.StatusNotFound, typ: pipesNotFound, msg: fmt.Sprintf("Pipe %s does not exist.", name)}
		}
		p.fail(w, r, err, "")
		return
	}
	p.h.writeJSON(w, r, http.StatusOK, map[string]any{"tags": map[string]string{}})
}

// currentState is a pipe's state as the Pipes API names it.
func pipesCurrentState(s pipe.State) string {
	switch s {
	case pipe.StateCreating:
		return "CREATING"
	case pipe.StateEnabled:
		return pipesRunning
	case pipe.StateDisabled:
		return pipesStopped
	case pipe.StateUpdating:
		return "UPDATING"
	case pipe.StateDeleting:
		return pipesDeleting
	case pipe.StateEnabling:
		return "STARTING"
	case pipe.StateDisabling:
		return "STOPPING"
	}
	return strings.ToUpper(string(s))
}

// pipesTime is a time as the model's timestamps are in rest-json: epoch
// seconds.
func pipesTime(p pipe.Pipe) float64 { return float64(p.Status.LastModified.UnixMilli()) / 1000 }

// stateOf is the answer of the writing operations. Sluice keeps no
// creation time apart from the last change, so CreationTime is
// LastModifiedTime.
func pipesStateOf(p pipe.Pipe) pipeState {
	desired := pipesStopped
	if p.IsEnabled() {
		desired = pipesRunning
	}
	return pipeState{Arn: pipeARNPrefix + p.Name, Name: p.Name, CreationTime: pipesTime(p), LastModifiedTime: pipesTime(p),
		CurrentState: pipesCurrentState(p.Status.State), DesiredState: desired}
}

// endpointARN is how a Target or Enrichment shows: its URL, or the
// registered function's ARN.
func pipesEndpointARN(u, fn string) string {
	if fn != "" {
		return functionARNPrefix + fn
	}
	return u
}

// summary is a pipe as a ListPipes entry; cl is its cluster, if it has one
// and it could be read.
func pipesSummary(p pipe.Pipe, cl *cluster.Cluster) pipeSummary {
	s := pipeSummary{pipeState: pipesStateOf(p), Target: pipesEndpointARN(p.Target.Where(), p.Target.HTTPOrZero().Function)}
	switch r := p.Status.LastProcessingResult; {
	case strings.HasPrefix(r, pipe.ProblemPrefix):
		s.StateReason = r
	default:
		s.StateReason = p.Status.StateTransitionReason
	}
	if len(s.StateReason) > pipesMaxDesc {
		s.StateReason = s.StateReason[:pipesMaxDesc]
	}
	if e := p.Enrichment; e != nil {
		s.Enrichment = pipesEndpointARN(e.URL, e.Function)
	}
	brokers := p.BootstrapServers
	switch {
	case cl != nil && cl.MSK:
		s.Source = cl.EventSourceARN()
	case cl != nil:
		brokers = cl.BootstrapServers
	}
	if s.Source == "" && len(brokers) > 0 {
		s.Source = "smk://" + brokers[0]
	}
	return s
}

// credentialsOf is the Credentials and ServerRootCaCertificate a cluster
// made by putCredentials stands for, values being the secrets' names.
func pipesCredentialsOf(c cluster.Cluster) pipesKafkaParams {
	var k pipesKafkaParams
	if s := strings.TrimSuffix(c.PasswordSecret, "/password"); c.PasswordSecret != "" {
		k.Credentials = &pipesCredentials{}
		switch c.Auth {
		case cluster.AuthPlain:
			k.Credentials.BasicAuth = &s
		case cluster.AuthScramSHA256:
			k.Credentials.SaslScram256Auth = &s
		default:
			k.Credentials.SaslScram512Auth = &s
		}
	}
	if s := c.ClientCertSecret; s != "" {
		k.Credentials = &pipesCredentials{ClientCertificateTlsAuth: &s}
	}
	if s := c.CACertSecret; s != "" {
		k.ServerRootCaCertificate = &s
	}
	return k
}

// description is a pipe as DescribePipeResponse.
func pipesDescribe(p pipe.Pipe, cl *cluster.Cluster) pipeDescription {
	d := pipeDescription{pipeSummary: pipesSummary(p, cl), Description: p.Description}
	topic := ""
	if len(p.Topics) > 0 {
		topic = p.Topics[0]
	}
	batch, window, group, start := p.BatchSize, int(math.Round(p.BatchingWindow().Seconds())), p.GroupID(), string(p.StartingPosition)
	k := &pipesKafkaParams{TopicName: &topic, BatchSize: &batch, MaximumBatchingWindowInSeconds: &window, ConsumerGroupID: &group}
	if start != "" {
		k.StartingPosition = &start
	}
	d.SourceParameters = &pipesSourceParams{}
	brokers := p.BootstrapServers
	switch {
	case cl != nil && cl.MSK:
		d.SourceParameters.ManagedStreamingKafkaParameters = k
		brokers = nil
	case cl != nil:
		brokers = cl.BootstrapServers
		if cl.Owner == p.Name {
			c := pipesCredentialsOf(*cl)
			k.Credentials, k.ServerRootCaCertificate = c.Credentials, c.ServerRootCaCertificate
		}
		fallthrough
	default:
		d.SourceParameters.SelfManagedKafkaParameters = k
	}
	if len(brokers) > 1 {
		k.AdditionalBootstrapServers = brokers[1:]
	}
	if pats := p.FilterCriteria.Patterns(); len(pats) > 0 {
		d.SourceParameters.FilterCriteria = &pipesFilterCriteria{}
		for _, pat := range pats {
			d.SourceParameters.FilterCriteria.Filters = append(d.SourceParameters.FilterCriteria.Filters, pipesFilter{Pattern: &pat})
		}
	}
	h := p.Target.HTTPOrZero()
	if p.InputTemplate != "" || len(h.Headers) > 0 {
		d.TargetParameters = &pipesTargetParams{}
		if p.InputTemplate != "" {
			t := p.InputTemplate
			d.TargetParameters.InputTemplate = &t
		}
		if len(h.Headers) > 0 || len(h.PathParameterValues) > 0 || len(h.QueryParameters) > 0 {
			d.TargetParameters.HttpParameters = &pipesHTTPParams{HeaderParameters: h.Headers,
				PathParameterValues: h.PathParameterValues, QueryStringParameters: h.QueryParameters}
		}
	}
	if e := p.Enrichment; e != nil && e.InputTemplate != "" {
		t := e.InputTemplate
		d.EnrichmentParameters = &pipesEnrichmentParams{InputTemplate: &t}
	}
	return d
}
