package api

// The Lambda-compatible event source mapping API, so the AWS CLI and SDKs
// manage pipes unchanged (`aws lambda … --endpoint-url`). Shapes follow the
// lambda 2015-03-31 API model (service-2.json); a field of the model that
// Sluice does not implement is refused with an error naming it, never
// accepted and ignored.
//
//	POST   /2015-03-31/event-source-mappings/        CreateEventSourceMapping, 202
//	GET    /2015-03-31/event-source-mappings/        ListEventSourceMappings, 200
//	GET    /2015-03-31/event-source-mappings/{UUID}  GetEventSourceMapping, 200
//	PUT    /2015-03-31/event-source-mappings/{UUID}  UpdateEventSourceMapping, 202
//	DELETE /2015-03-31/event-source-mappings/{UUID}  DeleteEventSourceMapping, 202

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/strictjson"
)

const lambdaPath = "/2015-03-31/event-source-mappings"

// Lambda error types, as the SDKs read them from x-amzn-errortype.
const (
	lambdaInvalidParameter = "InvalidParameterValueException"
	lambdaNotFound         = "ResourceNotFoundException"
	lambdaConflict         = "ResourceConflictException"
	lambdaInUse            = "ResourceInUseException"
	lambdaService          = "ServiceException"
	lambdaTooLarge         = "RequestTooLargeException"

	// maxUnixSeconds is 9999-12-31T23:59:59Z.
	maxUnixSeconds = 253402300799
)

// functionARNPrefix is how a registered function appears as FunctionArn;
// Sluice has no account or region, so they are fixed.
const functionARNPrefix = "arn:aws:lambda:sluice:000000000000:function:"

type selfManagedSource struct {
	Endpoints map[string][]string `json:"Endpoints"`
}

// sourceAccess is a SourceAccessConfiguration: how to authenticate to the
// brokers of a SelfManagedEventSource, with a secret named by URI.
type sourceAccess struct {
	Type string `json:"Type"`
	URI  string `json:"URI"`
}

type kafkaSourceConfig struct {
	ConsumerGroupId string `json:"ConsumerGroupId,omitempty"`
}

// esmRequest is CreateEventSourceMappingRequest and
// UpdateEventSourceMappingRequest. Fields Sluice does not implement are
// raw, only to notice that they were sent.
type esmRequest struct {
	FunctionName                        *string            `json:"FunctionName"`
	EventSourceArn                      *string            `json:"EventSourceArn"`
	Enabled                             *bool              `json:"Enabled"`
	BatchSize                           *int               `json:"BatchSize"`
	MaximumBatchingWindowInSeconds      *int               `json:"MaximumBatchingWindowInSeconds"`
	StartingPosition                    *string            `json:"StartingPosition"`
	StartingPositionTimestamp           *float64           `json:"StartingPositionTimestamp"`
	Topics                              []string           `json:"Topics"`
	SelfManagedEventSource              *selfManagedSource `json:"SelfManagedEventSource"`
	SelfManagedKafkaEventSourceConfig   *kafkaSourceConfig `json:"SelfManagedKafkaEventSourceConfig"`
	AmazonManagedKafkaEventSourceConfig *kafkaSourceConfig `json:"AmazonManagedKafkaEventSourceConfig"`
	MaximumRetryAttempts                *int               `json:"MaximumRetryAttempts"`
	MaximumRecordAgeInSeconds           *int               `json:"MaximumRecordAgeInSeconds"`
	BisectBatchOnFunctionError          *bool              `json:"BisectBatchOnFunctionError"`
	ProvisionedPollerConfig             *pollerConfig      `json:"ProvisionedPollerConfig"`

	DestinationConfig     *destinationConfig `json:"DestinationConfig"`
	FunctionResponseTypes *[]string          `json:"FunctionResponseTypes"`

	FilterCriteria             *filterCriteria `json:"FilterCriteria"`
	SourceAccessConfigurations []sourceAccess  `json:"SourceAccessConfigurations"`
	ParallelizationFactor      json.RawMessage `json:"ParallelizationFactor"`
	TumblingWindowInSeconds    json.RawMessage `json:"TumblingWindowInSeconds"`
	Queues                     json.RawMessage `json:"Queues"`
	ScalingConfig              json.RawMessage `json:"ScalingConfig"`
}

// esmConfiguration is EventSourceMappingConfiguration.
type esmConfiguration struct {
	UUID                                string             `json:"UUID"`
	StartingPosition                    string             `json:"StartingPosition,omitempty"`
	StartingPositionTimestamp           *float64           `json:"StartingPositionTimestamp,omitempty"`
	BatchSize                           int                `json:"BatchSize"`
	MaximumBatchingWindowInSeconds      int                `json:"MaximumBatchingWindowInSeconds"`
	FunctionArn                         string             `json:"FunctionArn"`
	LastModified                        float64            `json:"LastModified"`
	LastProcessingResult                string             `json:"LastProcessingResult"`
	State                               string             `json:"State"`
	StateTransitionReason               string             `json:"StateTransitionReason"`
	Topics                              []string           `json:"Topics"`
	SelfManagedEventSource              *selfManagedSource `json:"SelfManagedEventSource,omitempty"`
	SelfManagedKafkaEventSourceConfig   *kafkaSourceConfig `json:"SelfManagedKafkaEventSourceConfig,omitempty"`
	EventSourceArn                      string             `json:"EventSourceArn,omitempty"`
	AmazonManagedKafkaEventSourceConfig *kafkaSourceConfig `json:"AmazonManagedKafkaEventSourceConfig,omitempty"`
	SourceAccessConfigurations          []sourceAccess     `json:"SourceAccessConfigurations,omitempty"`
	MaximumRetryAttempts                int                `json:"MaximumRetryAttempts"`
	MaximumRecordAgeInSeconds           int                `json:"MaximumRecordAgeInSeconds"`
	BisectBatchOnFunctionError          bool               `json:"BisectBatchOnFunctionError"`
	DestinationConfig                   *destinationConfig `json:"DestinationConfig,omitempty"`
	FunctionResponseTypes               []string           `json:"FunctionResponseTypes,omitempty"`
	FilterCriteria                      *filterCriteria    `json:"FilterCriteria,omitempty"`
	ProvisionedPollerConfig             *pollerConfig      `json:"ProvisionedPollerConfig,omitempty"`
}

// pollerConfig is ProvisionedPollerConfig. A Sluice pipe's pollers are its
// batches in flight, so MinimumPollers and MaximumPollers are the spec's
// minimumConcurrency and maximumConcurrency, between which the concurrency
// controller moves the limit. PollerGroupName (EPU capacity shared between
// mappings) has no counterpart and is refused.
type pollerConfig struct {
	MinimumPollers  *int    `json:"MinimumPollers,omitempty"`
	MaximumPollers  *int    `json:"MaximumPollers,omitempty"`
	PollerGroupName *string `json:"PollerGroupName,omitempty"`
}

// Poller limits of the lambda model for Kafka; Sluice's maximum is lower.
const (
	lambdaMaxMinimumPollers = 200
	lambdaMaxMaximumPollers = 2000
)

// check refuses what the model refuses, and a maximum above
// Sluice's, naming the field.
func (c *pollerConfig) check() error {
	if c == nil {
		return nil
	}
	if g := c.PollerGroupName; g != nil && *g != "" {
		return invalid("ProvisionedPollerConfig.PollerGroupName %q: Sluice has no poller groups, each mapping has its own concurrency; remove it.", *g)
	}
	if v := c.MinimumPollers; v != nil && (*v < 1 || *v > lambdaMaxMinimumPollers) {
		return invalid("ProvisionedPollerConfig.MinimumPollers %d: use 1–%d.", *v, lambdaMaxMinimumPollers)
	}
	if v := c.MaximumPollers; v != nil {
		switch {
		case *v < 1 || *v > lambdaMaxMaximumPollers:
			return invalid("ProvisionedPollerConfig.MaximumPollers %d: use 1–%d.", *v, pipe.MaxConcurrency)
		case *v > pipe.MaxConcurrency:
			return invalid("ProvisionedPollerConfig.MaximumPollers %d: Sluice runs at most %d batches of one mapping at once (Lambda allows %d pollers); use 1–%d.",
				*v, pipe.MaxConcurrency, lambdaMaxMaximumPollers, pipe.MaxConcurrency)
		}
	}
	return nil
}

// filterCriteria is FilterCriteria.
type filterCriteria struct {
	Filters []struct {
		Pattern *string `json:"Pattern"`
	} `json:"Filters"`
}

// destinationConfig is DestinationConfig: OnSuccess is not supported on
// event source mappings, as in the reference.
type destinationConfig struct {
	OnFailure *onFailureConfig `json:"OnFailure"`
	OnSuccess json.RawMessage  `json:"OnSuccess,omitempty"`
}

type onFailureConfig struct {
	Destination *string `json:"Destination"`
}

// reportBatchItemFailures is the one FunctionResponseTypes value.
const reportBatchItemFailures = "ReportBatchItemFailures"

type lambdaError struct {
	status int
	typ    string
	msg    string
}

func (e *lambdaError) Error() string { return e.typ + ": " + e.msg }

func invalid(format string, args ...any) *lambdaError {
	return &lambdaError{http.StatusBadRequest, lambdaInvalidParameter, fmt.Sprintf(format, args...)}
}

// lambdaHandler serves the Lambda-compatible routes over the same services
// as the native API.
type lambdaHandler struct {
	h        *handler
	funcs    pipe.FunctionService // nil: FunctionName must be a URL
	clusters cluster.Service      // nil: EventSourceArn is refused
	// aws: an AWS function ARN as FunctionName is a lambda target, invoked
	// in AWS (awslambda.go); false: it names a Sluice function.
	aws bool
}

func (l *lambdaHandler) register(mux *http.ServeMux) {
	for _, p := range []string{lambdaPath, lambdaPath + "/{$}"} {
		mux.HandleFunc("POST "+p, l.create)
		mux.HandleFunc("GET "+p, l.list)
	}
	mux.HandleFunc("GET "+lambdaPath+"/{uuid}", l.get)
	mux.HandleFunc("PUT "+lambdaPath+"/{uuid}", l.update)
	mux.HandleFunc("DELETE "+lambdaPath+"/{uuid}", l.delete)
	mux.HandleFunc(lambdaPath+"/", func(w http.ResponseWriter, r *http.Request) {
		l.fail(w, r, &lambdaError{http.StatusMethodNotAllowed, lambdaInvalidParameter,
			fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
	})
}

// clusterByARN is the registered MSK cluster an EventSourceArn names: the
// one registered with that ARN (`clusters set --arn`), else one named as
// in the ARN that has none. Its error answers the request.
func (l *lambdaHandler) clusterByARN(r *http.Request, arn string) (cluster.Cluster, error) {
	_, name, err := cluster.ParseARN(arn)
	if err != nil || l.clusters == nil {
		return cluster.Cluster{}, invalid("EventSourceArn %s: not a registered MSK cluster.", arn)
	}
	all, err := l.clusters.ListClusters(r.Context())
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
		return cluster.Cluster{}, invalid("EventSourceArn %s: no MSK cluster is registered in Sluice with this ARN; register it with `sluice clusters set %s --msk --arn %s --bootstrap-servers HOST:PORT …`.", arn, name, arn)
	case !byName.MSK:
		return cluster.Cluster{}, invalid("EventSourceArn %s: cluster %q is not marked as MSK; mark it with `sluice clusters set %s --msk --arn %s …`, or use SelfManagedEventSource.", arn, name, name, arn)
	case byName.ARN != "":
		return cluster.Cluster{}, invalid("EventSourceArn %s: cluster %q is registered with ARN %s, and no cluster with this one; use that ARN.", arn, name, byName.ARN)
	}
	return *byName, nil
}

// accessScope refuses SourceAccessConfigurations to a token without admin
// scope: they register a cluster with credentials, as PUT /v1/clusters does.
func (l *lambdaHandler) accessScope(r *http.Request, req esmRequest) error {
	if len(req.SourceAccessConfigurations) == 0 {
		return nil
	}
	if err := needScope(r, ScopeAdmin, "SourceAccessConfigurations, which register credentials,"); err != nil {
		return &lambdaError{http.StatusForbidden, lambdaAccessDenied, err.Error()}
	}
	return nil
}

func (l *lambdaHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var le *lambdaError
	var ve *pipe.ValidationError
	switch {
	case errors.As(err, &le):
	case errors.As(err, &ve):
		le = invalid("%s", lambdaFieldErrors(ve))
	case errors.Is(err, pipe.ErrNotFound):
		le = &lambdaError{http.StatusNotFound, lambdaNotFound, "The resource you requested does not exist."}
	case errors.Is(err, pipe.ErrFunctionNotFound):
		le = &lambdaError{http.StatusNotFound, lambdaNotFound, err.Error()}
	case errors.Is(err, pipe.ErrDeleting):
		le = &lambdaError{http.StatusBadRequest, lambdaInUse, "The event source mapping is being deleted."}
	case errors.Is(err, pipe.ErrConflict), errors.Is(err, pipe.ErrExists):
		le = &lambdaError{http.StatusConflict, lambdaConflict, "Another operation changed the event source mapping at the same time; retry."}
	case r.Context().Err() != nil:
		return
	default:
		id := requestID()
		l.h.log.ErrorContext(r.Context(), "lambda api request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		le = &lambdaError{http.StatusInternalServerError, lambdaService, "internal error (request id " + id + "); the server log has the details"}
	}
	b, _ := json.Marshal(map[string]string{"Type": "User", "message": le.msg})
	if le.status >= 500 {
		b, _ = json.Marshal(map[string]string{"Type": "Service", "message": le.msg})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-errortype", le.typ)
	w.WriteHeader(le.status)
	_, _ = w.Write(b)
}

// lambdaFieldErrors names Sluice's spec fields as the Lambda API calls them.
func lambdaFieldErrors(ve *pipe.ValidationError) string {
	names := map[string]string{
		"batchSize": "BatchSize", "maximumBatchingWindowInSeconds": "MaximumBatchingWindowInSeconds",
		"topics": "Topics", "startingPosition": "StartingPosition", "startingPositionTimestamp": "StartingPositionTimestamp",
		"consumerGroupId": "ConsumerGroupId", "bootstrapServers": "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS",
		"target.http.url": "FunctionName", "target.http.function": "FunctionName", "target.lambda.functionName": "FunctionName", "enabled": "Enabled",
		"retry.maximumRetryAttempts": "MaximumRetryAttempts", "retry.maximumRecordAgeInSeconds": "MaximumRecordAgeInSeconds",
		"onFailure.destination": "DestinationConfig.OnFailure.Destination", "retry.bisectBatchOnError": "BisectBatchOnFunctionError",
		"minimumConcurrency": "ProvisionedPollerConfig.MinimumPollers", "maximumConcurrency": "ProvisionedPollerConfig.MaximumPollers",
	}
	msgs := make([]string, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		if f.Field == "minimumConcurrency" {
			// "use at most maximumConcurrency (N)" names the other member.
			f.Reason = strings.ReplaceAll(f.Reason, "maximumConcurrency", names["maximumConcurrency"])
		}
		if n, ok := names[f.Field]; ok {
			f.Field = n
		} else if rest, ok := strings.CutPrefix(f.Field, "filterCriteria.filters"); ok {
			f.Field = "FilterCriteria.Filters" + strings.Replace(rest, ".pattern", ".Pattern", 1)
		}
		msgs = append(msgs, f.Error())
	}
	return strings.Join(msgs, "; ")
}

func (l *lambdaHandler) decode(w http.ResponseWriter, r *http.Request) (esmRequest, error) {
	var req esmRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return req, &lambdaError{http.StatusRequestEntityTooLarge, lambdaTooLarge,
			fmt.Sprintf("The request body is larger than %d bytes; an event source mapping request is far smaller.", MaxBodyBytes)}
	case err != nil:
		return req, invalid("cannot read the request body: %v", err)
	}
	if err := strictjson.Unmarshal(b, &req); err != nil {
		var se *strictjson.Error
		switch {
		case errors.Is(err, strictjson.ErrEmpty):
			return req, nil
		case errors.As(err, &se) && strings.HasPrefix(se.Reason, "unknown field"):
			return req, invalid("Unknown parameter %q: it is not a parameter of the event source mapping API (%s).", se.Field, se.Reason)
		case errors.As(err, &se):
			return req, invalid("The request body is not a valid event source mapping request: %s", se.Error())
		}
		return req, invalid("The request body is not a valid event source mapping request: %v", err)
	}
	for name, raw := range map[string]json.RawMessage{
		"ParallelizationFactor": req.ParallelizationFactor, "TumblingWindowInSeconds": req.TumblingWindowInSeconds,
		"Queues": req.Queues, "ScalingConfig": req.ScalingConfig,
	} {
		if len(raw) > 0 && string(raw) != "null" {
			return req, invalid("%s is not supported by Sluice yet; remove it from the request.", name)
		}
	}
	if d := req.DestinationConfig; d != nil {
		if len(d.OnSuccess) > 0 && string(d.OnSuccess) != "null" {
			return req, invalid("DestinationConfig.OnSuccess is not supported for Kafka event source mappings; give DestinationConfig.OnFailure only.")
		}
		if f := d.OnFailure; f != nil && f.Destination != nil && strings.HasPrefix(*f.Destination, "arn:") {
			return req, invalid("DestinationConfig.OnFailure.Destination %s: Sluice has no SQS, SNS or S3; use kafka://TOPIC, kafka://CLUSTER/TOPIC, an http(s):// URL or file:///PATH.", *f.Destination)
		}
	}
	if err := req.ProvisionedPollerConfig.check(); err != nil {
		return req, err
	}
	if t := req.FunctionResponseTypes; t != nil {
		if len(*t) > 1 || (len(*t) == 1 && (*t)[0] != reportBatchItemFailures) {
			return req, invalid("FunctionResponseTypes %v: the only value is [%q] (or [] for none).", *t, reportBatchItemFailures)
		}
	}
	return req, nil
}

// target resolves FunctionName: an http(s) URL is the target itself; an
// AWS function ARN is a lambda target when the server invokes AWS Lambda
// (awslambda.go); any other function ARN or name must be a function
// registered in Sluice.
func (l *lambdaHandler) target(r *http.Request, name string) (pipe.Target, error) {
	if u, err := url.Parse(name); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return pipe.Target{HTTP: &pipe.HTTPTarget{URL: name}}, nil
	}
	awsTarget, isAWS := awsFunction(name)
	if isAWS && l.aws {
		return awsTarget, nil
	}
	fn, ok := functionName(name)
	if !ok {
		return pipe.Target{}, invalid("FunctionName %s: use a function name, a function ARN, or an http(s) URL.", name)
	}
	if l.funcs == nil && isAWS {
		return pipe.Target{}, awsNotEnabled(name, fn)
	}
	if l.funcs == nil {
		return pipe.Target{}, invalid("FunctionName %s: this server has no function registry; give an http(s) URL.", name)
	}
	f, err := l.funcs.GetFunction(r.Context(), fn)
	if err != nil {
		if errors.Is(err, pipe.ErrFunctionNotFound) && isAWS {
			return pipe.Target{}, awsNotEnabled(name, fn)
		}
		if errors.Is(err, pipe.ErrFunctionNotFound) {
			return pipe.Target{}, &lambdaError{http.StatusNotFound, lambdaNotFound,
				fmt.Sprintf("Function not found: %s. Register it with `sluice functions set %s --url URL` (or --handler PATH), or give an http(s) URL as FunctionName.", name, fn)}
		}
		return pipe.Target{}, err
	}
	if f.Kind() == pipe.FunctionHosted {
		return pipe.Target{Function: &pipe.FunctionTarget{Name: fn}}, nil
	}
	return pipe.Target{HTTP: &pipe.HTTPTarget{Function: fn}}, nil
}

// functionName is the function a FunctionName names: the name itself, or
// the name in a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME,
// with an optional :QUALIFIER). ok is false for an ARN of anything else.
func functionName(s string) (name string, ok bool) {
	if !strings.HasPrefix(s, "arn:") {
		return s, true
	}
	_, rest, found := strings.Cut(s, ":function:")
	if !found {
		return "", false
	}
	name, _, _ = strings.Cut(rest, ":")
	return name, true
}

func (l *lambdaHandler) create(w http.ResponseWriter, r *http.Request) {
	req, err := l.decode(w, r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if err := l.accessScope(r, req); err != nil {
		l.fail(w, r, err)
		return
	}
	if req.FunctionName == nil || *req.FunctionName == "" {
		l.fail(w, r, invalid("FunctionName is required."))
		return
	}
	tgt, err := l.target(r, *req.FunctionName)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	spec := pipe.Spec{Name: "esm-" + shortID(), Topics: req.Topics, Target: tgt, Enabled: req.Enabled}
	if err := l.source(r, req, &spec); err != nil {
		l.fail(w, r, err)
		return
	}
	if req.StartingPosition != nil {
		spec.StartingPosition = pipe.StartingPosition(*req.StartingPosition)
	}
	if req.StartingPositionTimestamp != nil {
		// Unix seconds; outside 0 to the end of year 9999 a float does
		// not convert to a time at all.
		if v := *req.StartingPositionTimestamp; v < 0 || v > maxUnixSeconds {
			l.fail(w, r, invalid("StartingPositionTimestamp %g: give Unix seconds between 0 and %d (the end of the year 9999).", v, int64(maxUnixSeconds)))
			return
		}
		sec, frac := math.Modf(*req.StartingPositionTimestamp)
		ts := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		spec.StartingPositionTimestamp = &ts
	}
	applyUpdatable(&spec, req)
	var p pipe.Pipe
	create := func(pipes pipe.Service, clusters cluster.Service) error {
		if len(req.SourceAccessConfigurations) > 0 {
			// The brokers and their auth become a cluster owned by the
			// mapping, deleted with it.
			if err := l.putAccessCluster(r, clusters, spec.Name, spec.BootstrapServers, req.SourceAccessConfigurations); err != nil {
				return err
			}
			spec.Cluster, spec.BootstrapServers = spec.Name, nil
		}
		var err error
		p, err = pipes.CreatePipe(r.Context(), spec)
		return err
	}
	if a := l.h.obs.atomic; a != nil {
		// The cluster and the mapping commit together or not at all.
		err = a.Atomic(r.Context(), create)
	} else if err = create(l.h.svc, l.clusters); err != nil && spec.Cluster == spec.Name {
		_ = l.clusters.DeleteCluster(context.WithoutCancel(r.Context()), spec.Name)
	}
	if err != nil {
		l.fail(w, r, err)
		return
	}
	l.h.writeJSON(w, r, http.StatusAccepted, l.configuration(r.Context(), p))
}

// Source access types, as Lambda names them.
const (
	accessBasic     = "BASIC_AUTH"
	accessScram256  = "SASL_SCRAM_256_AUTH"
	accessScram512  = "SASL_SCRAM_512_AUTH"
	accessClientTLS = "CLIENT_CERTIFICATE_TLS_AUTH"
	accessRootCA    = "SERVER_ROOT_CA_CERTIFICATE"
)

// putAccessCluster stores the cluster a mapping's SourceAccessConfigurations
// describe: each URI names a Sluice secret (a Secrets Manager ARN's secret
// name works too), in the reference's secret formats: {"username",
// "password"} for SASL, {"certificate", "privateKey", "privateKeyPassword"}
// for the client certificate, {"certificate"} for the root CA. With a client
// certificate and a SASL secret, mTLS wins, as on Lambda.
func (l *lambdaHandler) putAccessCluster(r *http.Request, clusters cluster.Service, name string, brokers []string, access []sourceAccess) error {
	if clusters == nil {
		return invalid("SourceAccessConfigurations: this server has no cluster registry.")
	}
	c := cluster.Cluster{Name: name, Owner: name, BootstrapServers: brokers}
	sasl := ""
	for i, a := range access {
		field := fmt.Sprintf("SourceAccessConfigurations[%d]", i)
		secretName := secretFromURI(a.URI)
		if secretName == "" {
			return invalid("%s.URI %q: name a secret created with `sluice secrets create`, or a Secrets Manager ARN whose secret name is one.", field, a.URI)
		}
		switch a.Type {
		case accessBasic, accessScram256, accessScram512:
			if sasl != "" {
				return invalid("%s: give one of BASIC_AUTH, SASL_SCRAM_256_AUTH and SASL_SCRAM_512_AUTH.", field)
			}
			sasl = a.Type
			c.PasswordSecret = secretName + "/password"
		case accessClientTLS:
			c.ClientCertSecret = secretName
		case accessRootCA:
			c.CACertSecret = secretName
		case "VPC_SUBNET", "VPC_SECURITY_GROUP":
			return invalid("%s.Type %s: Sluice connects from where it runs; place it in the cluster's network and leave VPC settings out.", field, a.Type)
		default:
			return invalid("%s.Type %q: use BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, CLIENT_CERTIFICATE_TLS_AUTH or SERVER_ROOT_CA_CERTIFICATE.", field, a.Type)
		}
	}
	switch {
	case c.ClientCertSecret != "":
		c.Auth = cluster.AuthMTLS
	case sasl == accessBasic:
		c.Auth = cluster.AuthPlain
	case sasl == accessScram256:
		c.Auth = cluster.AuthScramSHA256
	case sasl == accessScram512:
		c.Auth = cluster.AuthScramSHA512
	default:
		c.Auth = cluster.AuthTLS
	}
	if _, err := clusters.PutCluster(r.Context(), c); err != nil {
		var ve *cluster.ValidationError
		if errors.As(err, &ve) {
			return invalid("SourceAccessConfigurations: %s", ve.Error())
		}
		return err
	}
	return nil
}

// updateAccess replaces the auth of a mapping created with
// SourceAccessConfigurations; its pipe reconnects with the new one.
func (l *lambdaHandler) updateAccess(r *http.Request, p pipe.Pipe, access []sourceAccess) error {
	var owned *cluster.Cluster
	if p.Cluster != "" && l.clusters != nil {
		if c, err := l.clusters.GetCluster(r.Context(), p.Cluster); err == nil && c.Owner == p.Name {
			owned = &c
		}
	}
	if owned == nil {
		return invalid("SourceAccessConfigurations can be changed only on a mapping created with them; for a cluster named by EventSourceArn, change its auth with `sluice clusters set`.")
	}
	if len(access) == 0 {
		return invalid("SourceAccessConfigurations: give at least one; to connect without auth, create a mapping without them.")
	}
	return l.putAccessCluster(r, l.clusters, p.Name, owned.BootstrapServers, access)
}

// secretFromURI is the Sluice secret a URI names: the name itself, or the
// secret name of an arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME ARN.
func secretFromURI(uri string) string {
	if !strings.HasPrefix(uri, "arn:") {
		return uri
	}
	_, name, ok := strings.Cut(uri, ":secret:")
	if !ok {
		return ""
	}
	return name
}

// sourceAccessOf is the SourceAccessConfigurations a cluster made by
// putAccessCluster stands for; URIs are the secrets' names.
func sourceAccessOf(c cluster.Cluster) []sourceAccess {
	var out []sourceAccess
	if c.PasswordSecret != "" {
		typ := map[string]string{cluster.AuthPlain: accessBasic, cluster.AuthScramSHA256: accessScram256}[c.Auth]
		if typ == "" {
			typ = accessScram512
		}
		out = append(out, sourceAccess{Type: typ, URI: strings.TrimSuffix(c.PasswordSecret, "/password")})
	}
	if c.ClientCertSecret != "" {
		out = append(out, sourceAccess{Type: accessClientTLS, URI: c.ClientCertSecret})
	}
	if c.CACertSecret != "" {
		out = append(out, sourceAccess{Type: accessRootCA, URI: c.CACertSecret})
	}
	return out
}

// source sets where a new mapping reads from: an MSK cluster registered in
// Sluice, named by EventSourceArn, or brokers given inline with
// SelfManagedEventSource. Each goes with its own kafka config, as on Lambda.
func (l *lambdaHandler) source(r *http.Request, req esmRequest, spec *pipe.Spec) error {
	switch {
	case req.EventSourceArn != nil && req.SelfManagedEventSource != nil:
		return invalid("Give either EventSourceArn (an MSK cluster) or SelfManagedEventSource (brokers), not both.")
	case req.EventSourceArn != nil:
		if req.SelfManagedKafkaEventSourceConfig != nil {
			return invalid("SelfManagedKafkaEventSourceConfig goes with SelfManagedEventSource; with EventSourceArn use AmazonManagedKafkaEventSourceConfig.")
		}
		if len(req.SourceAccessConfigurations) > 0 {
			return invalid("SourceAccessConfigurations: a cluster named by EventSourceArn has its auth in Sluice (`sluice clusters set`); leave them out.")
		}
		arn := *req.EventSourceArn
		if _, _, err := cluster.ParseARN(arn); err != nil {
			return invalid("EventSourceArn %s: Sluice reads Kafka only; expected an MSK cluster ARN, arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID.", arn)
		}
		if l.clusters == nil {
			return invalid("EventSourceArn %s: this server has no cluster registry; give the brokers with SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS.", arn)
		}
		c, err := l.clusterByARN(r, arn)
		if err != nil {
			return err
		}
		spec.Cluster = c.Name
		if k := req.AmazonManagedKafkaEventSourceConfig; k != nil {
			spec.ConsumerGroupID = k.ConsumerGroupId
		}
	case req.SelfManagedEventSource != nil:
		if req.AmazonManagedKafkaEventSourceConfig != nil {
			return invalid("AmazonManagedKafkaEventSourceConfig goes with EventSourceArn; with SelfManagedEventSource use SelfManagedKafkaEventSourceConfig.")
		}
		for k, v := range req.SelfManagedEventSource.Endpoints {
			if k != "KAFKA_BOOTSTRAP_SERVERS" {
				return invalid("SelfManagedEventSource.Endpoints.%s: the only endpoint type is KAFKA_BOOTSTRAP_SERVERS.", k)
			}
			spec.BootstrapServers = v
		}
		if k := req.SelfManagedKafkaEventSourceConfig; k != nil {
			spec.ConsumerGroupID = k.ConsumerGroupId
		}
	default:
		return invalid("Give EventSourceArn (an MSK cluster registered in Sluice) or SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS (brokers).")
	}
	return nil
}

// applyUpdatable sets the fields both create and update take.
func applyUpdatable(spec *pipe.Spec, req esmRequest) {
	if req.Enabled != nil {
		spec.Enabled = req.Enabled
	}
	if req.BatchSize != nil {
		spec.BatchSize = *req.BatchSize
	}
	if req.MaximumBatchingWindowInSeconds != nil {
		w := float64(*req.MaximumBatchingWindowInSeconds)
		spec.MaximumBatchingWindowInSeconds = &w
	}
	if req.MaximumRetryAttempts != nil {
		spec.Retry.MaximumRetryAttempts = req.MaximumRetryAttempts
	}
	if req.MaximumRecordAgeInSeconds != nil {
		spec.Retry.MaximumRecordAgeInSeconds = req.MaximumRecordAgeInSeconds
	}
	if req.BisectBatchOnFunctionError != nil {
		spec.Retry.BisectBatchOnError = *req.BisectBatchOnFunctionError
	}
	if c := req.ProvisionedPollerConfig; c != nil {
		// The config is replaced as a whole, as DestinationConfig is: a
		// member left out takes its default (0 here, filled in by the
		// spec's defaults: 1, and 200 or the minimum if higher).
		spec.MinimumConcurrency, spec.MaximumConcurrency = 0, 0
		if c.MinimumPollers != nil {
			spec.MinimumConcurrency = *c.MinimumPollers
		}
		if c.MaximumPollers != nil {
			spec.MaximumConcurrency = *c.MaximumPollers
		}
	}
	if f := req.FilterCriteria; f != nil {
		// An empty list removes the filter, as an update in the reference.
		spec.FilterCriteria = nil
		if len(f.Filters) > 0 {
			spec.FilterCriteria = &pipe.FilterCriteria{Filters: make([]pipe.Filter, len(f.Filters))}
			for i, x := range f.Filters {
				if x.Pattern != nil {
					spec.FilterCriteria.Filters[i].Pattern = *x.Pattern
				}
			}
		}
	}
	if t := req.FunctionResponseTypes; t != nil {
		spec.Target = spec.Target.WithPartialResponses(len(*t) == 1)
	}
	if d := req.DestinationConfig; d != nil {
		spec.OnFailure.Destination = ""
		if d.OnFailure != nil && d.OnFailure.Destination != nil {
			spec.OnFailure.Destination = *d.OnFailure.Destination
		}
	}
	// The reference drops records whose limits ran out when no
	// destination is set: in Sluice that is the explicit discard, chosen
	// here because a Lambda API user asked for limits without one.
	limited := (spec.Retry.MaximumRetryAttempts != nil && *spec.Retry.MaximumRetryAttempts != pipe.Unlimited) ||
		(spec.Retry.MaximumRecordAgeInSeconds != nil && *spec.Retry.MaximumRecordAgeInSeconds != pipe.Unlimited)
	spec.OnFailure.Discard = spec.OnFailure.Destination == "" && limited
}

func (l *lambdaHandler) byUUID(r *http.Request) (pipe.Pipe, error) {
	id := r.PathValue("uuid")
	ps, err := l.h.svc.ListPipes(r.Context())
	if err != nil {
		return pipe.Pipe{}, err
	}
	for _, p := range ps {
		if p.UUID == id {
			return p, nil
		}
	}
	return pipe.Pipe{}, pipe.ErrNotFound
}

func (l *lambdaHandler) get(w http.ResponseWriter, r *http.Request) {
	p, err := l.byUUID(r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	l.h.writeJSON(w, r, http.StatusOK, l.configuration(r.Context(), p))
}

func (l *lambdaHandler) update(w http.ResponseWriter, r *http.Request) {
	req, err := l.decode(w, r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if err := l.accessScope(r, req); err != nil {
		l.fail(w, r, err)
		return
	}
	for name, set := range map[string]bool{
		"Topics": req.Topics != nil, "StartingPosition": req.StartingPosition != nil,
		"StartingPositionTimestamp": req.StartingPositionTimestamp != nil, "SelfManagedEventSource": req.SelfManagedEventSource != nil,
		"SelfManagedKafkaEventSourceConfig":   req.SelfManagedKafkaEventSourceConfig != nil,
		"EventSourceArn":                      req.EventSourceArn != nil,
		"AmazonManagedKafkaEventSourceConfig": req.AmazonManagedKafkaEventSourceConfig != nil,
	} {
		if set {
			l.fail(w, r, invalid("%s can be set only when the event source mapping is created; delete it and create a new one to change it.", name))
			return
		}
	}
	p, err := l.byUUID(r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if req.SourceAccessConfigurations != nil {
		if err := l.updateAccess(r, p, req.SourceAccessConfigurations); err != nil {
			l.fail(w, r, err)
			return
		}
	}
	spec := p.Spec
	if req.FunctionName != nil {
		if spec.Target, err = l.target(r, *req.FunctionName); err != nil {
			l.fail(w, r, err)
			return
		}
		spec.Target = carryTarget(p.Target, spec.Target)
	}
	applyUpdatable(&spec, req)
	// The revision read above makes this a compare-and-set: a concurrent
	// change answers ResourceConflictException instead of being lost.
	up, err := l.h.svc.UpdatePipe(r.Context(), spec, p.Revision)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	l.h.writeJSON(w, r, http.StatusAccepted, l.configuration(r.Context(), up))
}

func (l *lambdaHandler) delete(w http.ResponseWriter, r *http.Request) {
	p, err := l.byUUID(r)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	if err := l.h.svc.DeletePipe(r.Context(), p.Name); err != nil {
		l.fail(w, r, err)
		return
	}
	p.Status.State = pipe.StateDeleting
	p.Status.StateTransitionReason = "USER_INITIATED"
	l.h.writeJSON(w, r, http.StatusAccepted, l.configuration(r.Context(), p))
}

// maxListPage is the most mappings one list response holds, as on Lambda.
const maxListPage = 100

func (l *lambdaHandler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	max := maxListPage
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			l.fail(w, r, invalid("MaxItems %s: use 1–10000.", s))
			return
		}
		max = min(n, maxListPage)
	}
	arnCluster := ""
	if arn := q.Get("EventSourceArn"); arn != "" {
		c, err := l.clusterByARN(r, arn)
		if err != nil {
			// No mapping reads a cluster Sluice does not know.
			l.h.writeJSON(w, r, http.StatusOK, map[string]any{"EventSourceMappings": []esmConfiguration{}})
			return
		}
		arnCluster = c.Name
	}
	ps, err := l.h.svc.ListPipes(r.Context())
	if err != nil {
		l.fail(w, r, err)
		return
	}
	fn := q.Get("FunctionName")
	arn := fn // an AWS function's mappings are found by the ARN they were made with
	if name, ok := functionName(fn); ok {
		fn = name
	}
	// One read of the clusters for the page, not one per mapping.
	clusters := map[string]cluster.Cluster{}
	if l.clusters != nil {
		all, err := l.clusters.ListClusters(r.Context())
		if err != nil {
			l.fail(w, r, err)
			return
		}
		for _, c := range all {
			clusters[c.Name] = c
		}
	}
	// Pages are in UUID order and the marker is the last UUID returned, so
	// paging stays consistent while mappings are created and deleted.
	sort.Slice(ps, func(i, j int) bool { return ps[i].UUID < ps[j].UUID })
	marker := q.Get("Marker")
	out := []esmConfiguration{}
	next := ""
	for _, p := range ps {
		if p.UUID <= marker || (fn != "" && !targets(p.Target, fn, arn)) || (arnCluster != "" && p.Cluster != arnCluster) {
			continue
		}
		if len(out) == max {
			next = out[len(out)-1].UUID
			break
		}
		c := configuration(p)
		if p.Cluster != "" {
			cl, ok := clusters[p.Cluster]
			var err error
			if !ok {
				err = cluster.ErrNotFound
			}
			c = withCluster(c, p, cl, err)
		}
		out = append(out, c)
	}
	resp := map[string]any{"EventSourceMappings": out}
	if next != "" {
		resp["NextMarker"] = next
	}
	l.h.writeJSON(w, r, http.StatusOK, resp)
}

// configuration is a pipe as EventSourceMappingConfiguration. A pipe on an
// MSK cluster shows the cluster's ARN, as a mapping with EventSourceArn
// does; a pipe on another registered cluster shows its brokers.
func (l *lambdaHandler) configuration(ctx context.Context, p pipe.Pipe) esmConfiguration {
	if p.Cluster == "" || l.clusters == nil {
		return configuration(p)
	}
	cl, err := l.clusters.GetCluster(ctx, p.Cluster)
	return withCluster(configuration(p), p, cl, err)
}

// withCluster completes c, the configuration of pipe p, with its cluster
// cl (err if it could not be read).
func withCluster(c esmConfiguration, p pipe.Pipe, cl cluster.Cluster, err error) esmConfiguration {
	if err != nil {
		// Deleting a cluster in use is refused; show what is known.
		c.SelfManagedEventSource = nil
		return c
	}
	if cl.MSK {
		c.EventSourceArn = cl.EventSourceARN()
		c.SelfManagedEventSource, c.SelfManagedKafkaEventSourceConfig = nil, nil
		c.AmazonManagedKafkaEventSourceConfig = &kafkaSourceConfig{ConsumerGroupId: p.GroupID()}
		return c
	}
	c.SelfManagedEventSource = &selfManagedSource{Endpoints: map[string][]string{"KAFKA_BOOTSTRAP_SERVERS": cl.BootstrapServers}}
	if cl.Owner == p.Name {
		c.SourceAccessConfigurations = sourceAccessOf(cl)
	}
	return c
}

// configuration is a pipe as EventSourceMappingConfiguration, from the
// pipe alone.
func configuration(p pipe.Pipe) esmConfiguration {
	c := esmConfiguration{
		UUID:                              p.UUID,
		StartingPosition:                  string(p.StartingPosition),
		BatchSize:                         p.BatchSize,
		MaximumBatchingWindowInSeconds:    int(math.Round(p.BatchingWindow().Seconds())),
		FunctionArn:                       functionArnOf(p.Target),
		LastModified:                      float64(p.Status.LastModified.UnixMilli()) / 1000,
		LastProcessingResult:              p.Status.LastProcessingResult,
		State:                             string(p.Status.State),
		StateTransitionReason:             p.Status.StateTransitionReason,
		Topics:                            p.Topics,
		SelfManagedEventSource:            &selfManagedSource{Endpoints: map[string][]string{"KAFKA_BOOTSTRAP_SERVERS": p.BootstrapServers}},
		SelfManagedKafkaEventSourceConfig: &kafkaSourceConfig{ConsumerGroupId: p.GroupID()},
		MaximumRetryAttempts:              -1,
		MaximumRecordAgeInSeconds:         -1,
	}
	if t := p.StartingPositionTimestamp; t != nil {
		v := float64(t.UnixMilli()) / 1000
		c.StartingPositionTimestamp = &v
	}
	if v := p.Retry.MaximumRetryAttempts; v != nil {
		c.MaximumRetryAttempts = *v
	}
	if v := p.Retry.MaximumRecordAgeInSeconds; v != nil {
		c.MaximumRecordAgeInSeconds = *v
	}
	c.BisectBatchOnFunctionError = p.Retry.BisectBatchOnError
	// Always shown: every pipe runs between its bounds, defaults or not.
	n := p.Spec.Normalize()
	c.ProvisionedPollerConfig = &pollerConfig{MinimumPollers: &n.MinimumConcurrency, MaximumPollers: &n.MaximumConcurrency}
	if d := p.OnFailure.Destination; d != "" {
		c.DestinationConfig = &destinationConfig{OnFailure: &onFailureConfig{Destination: &d}}
	}
	if p.Target.PartialResponses() {
		c.FunctionResponseTypes = []string{reportBatchItemFailures}
	}
	if pats := p.FilterCriteria.Patterns(); len(pats) > 0 {
		c.FilterCriteria = &filterCriteria{}
		for _, pat := range pats {
			c.FilterCriteria.Filters = append(c.FilterCriteria.Filters, struct {
				Pattern *string `json:"Pattern"`
			}{&pat})
		}
	}
	return c
}

// shortID names a pipe created through the Lambda API, which has no names.
func shortID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
