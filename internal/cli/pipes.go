package cli

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/pipe"
)

func (a *app) pipesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "pipes",
		Aliases: []string{"pipe"},
		Short:   "Create, inspect and delete pipes",
		// Without RunE, cobra shows help and exits 0 for a misspelt
		// subcommand, which a script would take for success.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				hint := ""
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					hint = fmt.Sprintf(" (did you mean %q?)", s[0])
				}
				return fmt.Errorf("unknown command %q for %q%s\nRun '%s --help' for usage", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(a.pipesUpdateCmd(), a.pipesEnableCmd(), a.pipesDisableCmd()) // update.go
	cmd.AddCommand(a.pipesCreateCmd(), a.pipesGetCmd(), a.pipesListCmd(), a.pipesDeleteCmd())
	cmd.AddCommand(a.pipesDescribeCmd()) // describe.go
	cmd.AddCommand(a.pipesRedriveCmd())  // redrive.go
	return cmd
}

// nameArg requires exactly one argument, the pipe's name, and says so in
// terms of the command rather than cobra's "accepts 1 arg(s)".
func nameArg(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing the pipe's NAME: %s", cmd.UseLine())
	case len(args) > 1:
		return fmt.Errorf("want one pipe NAME, got %d arguments %q: %s", len(args), args, cmd.UseLine())
	}
	return nil
}

// Flags of `pipes create`. Only flags the user gave are copied into the
// spec, so the server's defaults, not copies of them compiled into the CLI,
// apply to the rest.
const (
	flagBootstrap = "bootstrap-servers"
	flagCluster   = "cluster"
	flagTopic     = "topic"
	flagTarget    = "target"
	flagFunction  = "function"
	flagBatchSize = "batch-size"
	flagWindow    = "batching-window"
	flagPosition  = "starting-position"
	flagTimestamp = "starting-position-timestamp"
	flagGroup     = "consumer-group-id"
	flagTimeout   = "target-timeout"
	flagPayload   = "payload-limit"
	flagRetries   = "maximum-retry-attempts"
	flagRecordAge = "maximum-record-age"
	flagDisabled  = "disabled"
	flagHeader    = "header"
	flagSigning   = "signing-secret"
	flagOAuthURL  = "oauth-token-url"
	flagOAuthCli  = "oauth-client"
	flagOAuthScp  = "oauth-scope"
	flagOnFailure = "on-failure"
	flagDiscard   = "discard-on-failure"
	flagBisect    = "bisect-on-error"
	flagPartial   = "report-batch-item-failures"
	flagFilter    = "filter"
	flagFormat    = "format"
	flagEnrich    = "enrichment"
	flagTemplate  = "input-template"
	flagCommand   = "command"
	flagKey       = "key"
	flagAcks      = "acks"
	flagDelivery  = "delivery"
	flagOrdering  = "ordering"
	flagMinConc   = "min-concurrency"
	flagMaxConc   = "max-concurrency"
	flagRegion    = "region"
	flagEndpoint  = "endpoint-url"
	argName       = "NAME"
)

// specFlags maps the spec's field paths, as a pipe.ValidationError names
// them, to the flag that sets the field.
var specFlags = map[string]string{
	"name":                                argName,
	"bootstrapServers":                    "--" + flagBootstrap,
	"cluster":                             "--" + flagCluster,
	"topics":                              "--" + flagTopic,
	"target":                              "--" + flagTarget,
	"target.http.url":                     "--" + flagTarget,
	"target.http.function":                "--" + flagFunction,
	"batchSize":                           "--" + flagBatchSize,
	"maximumBatchingWindowInSeconds":      "--" + flagWindow,
	"startingPosition":                    "--" + flagPosition,
	"startingPositionTimestamp":           "--" + flagTimestamp,
	"consumerGroupId":                     "--" + flagGroup,
	"target.http.timeoutSeconds":          "--" + flagTimeout,
	"payloadLimitBytes":                   "--" + flagPayload,
	"retry.maximumRetryAttempts":          "--" + flagRetries,
	"retry.maximumRecordAgeInSeconds":     "--" + flagRecordAge,
	"target.http.headers":                 "--" + flagHeader,
	"target.http.signingSecret":           "--" + flagSigning,
	"target.http.oauth.tokenUrl":          "--" + flagOAuthURL,
	"target.http.oauth.clientSecret":      "--" + flagOAuthCli,
	"target.http.oauth.scopes":            "--" + flagOAuthScp,
	"target.http.reportBatchItemFailures": "--" + flagPartial,
	"retry.bisectBatchOnError":            "--" + flagBisect,
	"onFailure.destination":               "--" + flagOnFailure,
	"onFailure.discard":                   "--" + flagDiscard,
	"target.kafka.topic":                  "--" + flagTarget,
	"target.kafka.cluster":                "--" + flagTarget,
	"target.kafka.key":                    "--" + flagKey,
	"target.kafka.acks":                   "--" + flagAcks,
	"target.kafka.delivery":               "--" + flagDelivery,
	"target.kafka.deliveryTimeoutSeconds": "--" + flagTimeout,
	"target.exec.command":                 "--" + flagCommand,
	"target.exec.timeoutSeconds":          "--" + flagTimeout,
	"target.lambda.functionName":          "--" + flagTarget,
	"target.lambda.qualifier":             "--" + flagTarget,
	"target.lambda.region":                "--" + flagRegion,
	"target.lambda.endpointUrl":           "--" + flagEndpoint,
	"target.lambda.timeoutSeconds":        "--" + flagTimeout,
	"ordering":                            "--" + flagOrdering,
	"minimumConcurrency":                  "--" + flagMinConc,
	"maximumConcurrency":                  "--" + flagMaxConc,
}

// targetAuthFlags defines --header and --signing-secret; usage for create
// and update.
func targetAuthFlags(f *pflag.FlagSet) {
	f.StringArray(flagHeader, nil, "NAME=VALUE sent with every delivery; VALUE secret:SECRET/KEY reads a stored secret (API keys, Authorization); repeat for more")
	f.String(flagSigning, "", "SECRET/KEY whose value signs every body: X-Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">")
	f.String(flagOAuthURL, "", "OAuth 2.0 token endpoint: every delivery carries a bearer token of the client credentials grant (with --oauth-client)")
	f.String(flagOAuthCli, "", "secret:SECRET holding the keys clientId and clientSecret, for --oauth-token-url")
	f.StringArray(flagOAuthScp, nil, "a scope to ask the token for; repeat for more")
}

func (a *app) pipesCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create NAME --bootstrap-servers HOST:PORT[,...] --topic TOPIC --target URL",
		Short: "Create a pipe from a Kafka topic to an HTTP target",
		Long: `Create a pipe that reads TOPIC from the Kafka cluster at the bootstrap servers
and POSTs batches of its records to the target URL. Flags not given take
the server's defaults, shown by 'sluice pipes get NAME'.`,
		Example: `  sluice pipes create demo --bootstrap-servers 127.0.0.1:9092 --topic demo --target http://127.0.0.1:9000/
  sluice pipes create orders --cluster msk --topic orders --function billing
  sluice pipes create orders --bootstrap-servers b-1:9092,b-2:9092 --topic orders \
    --target https://hooks.example.com/orders --batch-size 500 --batching-window 2s`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := specFromFlags(args[0], cmd.Flags())
			if err != nil {
				return err
			}
			if h := spec.Target.HTTP; h != nil && h.Function != "" {
				// --function works for every kind of function: a hosted
				// one is the function section's.
				hosted, err := a.hostedFunction(cmd, h.Function)
				if err != nil {
					return err
				}
				if hosted {
					spec.Target = pipe.Target{Function: &pipe.FunctionTarget{Name: h.Function, TimeoutSeconds: h.TimeoutSeconds, ReportBatchItemFailures: h.ReportBatchItemFailures}}
				}
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			p, err := c.CreatePipe(cmd.Context(), spec)
			if err != nil {
				return asFlagErrors(err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, p)
			}
			fmt.Fprintf(a.env.Stdout, "Created pipe %q.\n\n", p.Name)
			return writePipeTable(a.env.Stdout, p)
		},
	}
	f := cmd.Flags()
	f.StringSlice(flagBootstrap, nil, "Kafka brokers to start from, as host:port, comma-separated, for a plaintext cluster (this or --cluster is required)")
	f.String(flagCluster, "", "a cluster registered with 'sluice clusters set' (brokers, auth, credentials) instead of --bootstrap-servers")
	f.String(flagTopic, "", "topic to read (required)")
	f.String(flagTarget, "", "where batches go (this, --function or --command is required): an http:// or https:// URL that receives each batch as a POST, kafka://TOPIC or kafka://CLUSTER/TOPIC to produce each record to a topic, exec:COMMAND, "+
		"or lambda:FUNCTION to invoke an AWS Lambda function (a name, NAME:QUALIFIER or an ARN) with the server's AWS credentials")
	f.String(flagFunction, "", "a function registered with 'sluice functions set' to target instead of --target: an HTTP endpoint (the pipe follows its URL) or a handler Sluice hosts")
	f.Int(flagBatchSize, 0, fmt.Sprintf("most records per delivery, %d–%d (default %d)", pipe.MinBatchSize, pipe.MaxBatchSize, pipe.DefaultBatchSize))
	f.String(flagWindow, "", "longest a batch waits for more records after its first, a duration such as 500ms or 2s, at most 5m (default 500ms)")
	f.String(flagPosition, "", "where to start in partitions the consumer group has no offset for: TRIM_HORIZON, LATEST or AT_TIMESTAMP (default TRIM_HORIZON)")
	f.String(flagTimestamp, "", "with AT_TIMESTAMP, the time to start at, RFC 3339 such as 2026-01-02T15:04:05Z; implies --starting-position AT_TIMESTAMP")
	f.String(flagGroup, "", "Kafka consumer group to read in (default: the pipe's UUID); cannot be changed later")
	f.String(flagTimeout, "", "timeout of one delivery attempt, a duration such as 10s, at most 14m (default 30s)")
	f.Int(flagPayload, 0, fmt.Sprintf("largest body of one delivery in bytes, %d–%d (default %d)", pipe.MinPayloadLimitBytes, pipe.MaxPayloadLimitBytes, pipe.DefaultPayloadLimitBytes))
	f.Int(flagRetries, 0, fmt.Sprintf("retries of a failed batch before giving up on it: -1 (unlimited) or 0–%d (default unlimited)", pipe.MaxRetryAttempts))
	f.Int(flagRecordAge, 0, fmt.Sprintf("age in seconds after which a failing record is given up: -1 (unlimited) or %d–%d (default unlimited)", pipe.MinRecordAgeSeconds, pipe.MaxRecordAgeSeconds))
	f.Bool(flagDisabled, false, "create the pipe without starting it")
	f.String(flagOrdering, "", "what stays in order: PARTITION (one batch of a partition in flight at a time), KEY (each key's records in offset order; batches of disjoint keys in flight together) or NONE (default PARTITION)")
	f.Int(flagMinConc, 0, fmt.Sprintf("lowest the limit of batches in flight across the pipe's partitions goes when the target throttles, 1–%d (default %d)", pipe.MaxConcurrency, pipe.DefaultMinimumConcurrency))
	f.Int(flagMaxConc, 0, fmt.Sprintf("highest the limit of batches in flight across the pipe's partitions goes, 1–%d (default %d)", pipe.MaxConcurrency, pipe.DefaultMaximumConcurrency))
	lambdaFlags(f)
	targetAuthFlags(f)
	failureFlags(f)
	return cmd
}

// specFromFlags builds the spec from the flags that were given. Values the
// server would misread are refused here, naming the flag and the fix;
// everything else is left to the server's validation, which reports every
// problem at once.
func specFromFlags(name string, f *pflag.FlagSet) (pipe.Spec, error) {
	// The http section is filled as its flags are read, and dropped when
	// none was given, so an update that names none leaves it alone.
	s := pipe.Spec{Name: name, Target: pipe.Target{HTTP: &pipe.HTTPTarget{}}}
	var errs []error
	changed := f.Changed

	if changed(flagBootstrap) {
		servers, _ := f.GetStringSlice(flagBootstrap)
		for _, hp := range servers {
			if hp = strings.TrimSpace(hp); hp != "" {
				s.BootstrapServers = append(s.BootstrapServers, hp)
			}
		}
	}
	if changed(flagCluster) {
		s.Cluster, _ = f.GetString(flagCluster)
	}
	if changed(flagTopic) {
		t, _ := f.GetString(flagTopic)
		s.Topics = []string{t}
	}
	if changed(flagFunction) {
		s.Target.HTTP.Function, _ = f.GetString(flagFunction)
	}
	if changed(flagTarget) {
		s.Target.HTTP.URL, _ = f.GetString(flagTarget)
	}
	if changed(flagHeader) {
		hs, _ := f.GetStringArray(flagHeader)
		s.Target.HTTP.Headers = map[string]string{}
		for _, h := range hs {
			k, v, ok := strings.Cut(h, "=")
			switch {
			case !ok || strings.TrimSpace(k) == "":
				// Not quoted back: the value may be a credential.
				errs = append(errs, fmt.Errorf("--%s: use NAME=VALUE or NAME=secret:SECRET/KEY", flagHeader))
			case s.Target.HTTP.Headers[strings.TrimSpace(k)] != "":
				errs = append(errs, fmt.Errorf("--%s %s given twice: give each header once", flagHeader, strings.TrimSpace(k)))
			default:
				s.Target.HTTP.Headers[strings.TrimSpace(k)] = v
			}
		}
	}
	if changed(flagSigning) {
		s.Target.HTTP.SigningSecret, _ = f.GetString(flagSigning)
	}
	if changed(flagOAuthURL) || changed(flagOAuthCli) || changed(flagOAuthScp) {
		o := &pipe.OAuth{}
		o.TokenURL, _ = f.GetString(flagOAuthURL)
		c, _ := f.GetString(flagOAuthCli)
		o.ClientSecret = strings.TrimPrefix(c, pipe.SecretValuePrefix)
		o.Scopes, _ = f.GetStringArray(flagOAuthScp)
		s.Target.HTTP.OAuth = o
	}
	if changed(flagBatchSize) {
		// 0 on the wire means "default", which is not what someone
		// typing --batch-size 0 asked for.
		n, _ := f.GetInt(flagBatchSize)
		if n == 0 {
			errs = append(errs, fmt.Errorf("--%s 0: use %d–%d", flagBatchSize, pipe.MinBatchSize, pipe.MaxBatchSize))
		}
		s.BatchSize = n
	}
	if changed(flagWindow) {
		d, err := durationFlag(f, flagWindow, "500ms or 2s")
		if err != nil {
			errs = append(errs, err)
		} else {
			w := d.Seconds()
			s.MaximumBatchingWindowInSeconds = &w
		}
	}
	if changed(flagPosition) {
		p, _ := f.GetString(flagPosition)
		s.StartingPosition = pipe.StartingPosition(strings.ToUpper(strings.TrimSpace(p)))
	}
	if changed(flagTimestamp) {
		v, _ := f.GetString(flagTimestamp)
		ts, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s %q: not an RFC 3339 time: use e.g. 2026-01-02T15:04:05Z or 2026-01-02T16:04:05+01:00", flagTimestamp, v))
		} else {
			s.StartingPositionTimestamp = &ts
		}
		if !changed(flagPosition) {
			s.StartingPosition = pipe.AtTimestamp
		}
	}
	if changed(flagGroup) {
		s.ConsumerGroupID, _ = f.GetString(flagGroup)
	}
	if changed(flagTimeout) {
		d, err := durationFlag(f, flagTimeout, "10s or 1m")
		switch {
		case err != nil:
			errs = append(errs, err)
		case d == 0:
			errs = append(errs, fmt.Errorf("--%s 0: give a positive duration such as 10s (at most %s)", flagTimeout, pipe.MaxTargetTimeout))
		default:
			s.Target.HTTP.TimeoutSeconds = d.Seconds()
		}
	}
	if changed(flagPayload) {
		n, _ := f.GetInt(flagPayload)
		if n == 0 {
			errs = append(errs, fmt.Errorf("--%s 0: use %d–%d bytes", flagPayload, pipe.MinPayloadLimitBytes, pipe.MaxPayloadLimitBytes))
		}
		s.PayloadLimitBytes = n
	}
	if changed(flagOrdering) {
		o, _ := f.GetString(flagOrdering)
		s.Ordering = strings.ToUpper(strings.TrimSpace(o))
		if s.Ordering == "" {
			// "" on the wire means "default", not a choice.
			errs = append(errs, fmt.Errorf("--%s \"\": use %s, %s or %s", flagOrdering, pipe.OrderingPartition, pipe.OrderingKey, pipe.OrderingNone))
		}
	}
	for _, c := range []struct {
		flag string
		to   *int
	}{{flagMinConc, &s.MinimumConcurrency}, {flagMaxConc, &s.MaximumConcurrency}} {
		if changed(c.flag) {
			n, _ := f.GetInt(c.flag)
			if n == 0 {
				errs = append(errs, fmt.Errorf("--%s 0: use 1–%d", c.flag, pipe.MaxConcurrency))
			}
			*c.to = n
		}
	}
	if changed(flagRetries) {
		n, _ := f.GetInt(flagRetries)
		s.Retry.MaximumRetryAttempts = &n
	}
	if changed(flagRecordAge) {
		n, _ := f.GetInt(flagRecordAge)
		s.Retry.MaximumRecordAgeInSeconds = &n
	}
	if changed(flagDisabled) {
		d, _ := f.GetBool(flagDisabled)
		enabled := !d
		s.Enabled = &enabled
	}
	if changed(flagBisect) {
		s.Retry.BisectBatchOnError, _ = f.GetBool(flagBisect)
	}
	if changed(flagPartial) {
		s.Target.HTTP.ReportBatchItemFailures, _ = f.GetBool(flagPartial)
	}
	if changed(flagOnFailure) {
		s.OnFailure.Destination, _ = f.GetString(flagOnFailure)
	}
	if changed(flagDiscard) {
		s.OnFailure.Discard, _ = f.GetBool(flagDiscard)
	}
	if changed(flagEnrich) {
		u, _ := f.GetString(flagEnrich)
		if u != "" {
			s.Enrichment = &pipe.Enrichment{URL: u}
		} else {
			s.Enrichment = &pipe.Enrichment{} // on update: removes it
		}
	}
	if changed(flagFormat) {
		s.Format, _ = f.GetString(flagFormat)
	}
	if changed(flagTemplate) {
		s.InputTemplate, _ = f.GetString(flagTemplate)
	}
	if changed(flagFilter) {
		pats, _ := f.GetStringArray(flagFilter)
		s.FilterCriteria = &pipe.FilterCriteria{Filters: []pipe.Filter{}}
		for _, p := range pats {
			if strings.TrimSpace(p) != "" {
				s.FilterCriteria.Filters = append(s.FilterCriteria.Filters, pipe.Filter{Pattern: p})
			}
		}
	}
	errs = append(errs, kindFromFlags(&s, f)...)
	if reflect.ValueOf(*s.Target.HTTP).IsZero() {
		s.Target.HTTP = nil
	}
	if len(errs) > 0 {
		return pipe.Spec{}, errors.Join(errs...)
	}
	return s, nil
}

// failureFlags defines the flags of what happens to failing records, and
// the filter; for create and update.
func failureFlags(f *pflag.FlagSet) {
	f.String(flagTemplate, "", `the Pipes input transformer for the target, e.g. '{"order": <$.value.id>, "pipe": "<aws.pipes.pipe-name>"}': the target gets a JSON array of each record rendered`)
	f.String(flagEnrich, "", "http(s) URL of an enrichment endpoint: it gets each filtered batch as the Pipes event and answers what the target gets (an empty answer delivers nothing); on update, \"\" removes it")
	f.String(flagFormat, "", "the body the target gets: lambda (the Lambda Kafka event, the default), pipes (the EventBridge Pipes event: a flat array of records) or cloudevents (CloudEvents 1.0 structured batch, application/cloudevents-batch+json)")
	f.StringArray(flagFilter, nil, `an event pattern records must match to be delivered, e.g. '{"value":{"status":["shipped"]}}'; repeat for up to 5 (ORed); on update, the patterns given replace the pipe's ('--filter ""' removes them)`)
	f.String(flagOnFailure, "", "where records go whose retry limits ran out: kafka://TOPIC (on the pipe's cluster), kafka://CLUSTER/TOPIC, an http(s):// URL or file:///PATH.jsonl")
	f.Bool(flagDiscard, false, "drop records whose retry limits ran out, counted and logged with their offsets (instead of --on-failure)")
	f.Bool(flagBisect, false, "split a failed batch in halves and retry each, so one bad record is set apart; splits do not count as retries")
	f.Bool(flagPartial, false, "read the target's answer as a partial batch response: {\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"topic-0\",\"offset\":N}}]}")
	f.String(flagCommand, "", "a command to run per batch with the event on stdin, e.g. './handle.sh --verbose' (split on spaces, run without a shell); the same as --target 'exec:./handle.sh --verbose'")
	f.String(flagKey, "", "with a kafka:// target, what produced records are keyed by: key (the source record's, the default), none, header:NAME (e.g. header:ce-subject) or a JSON path into the value such as $.order.id")
	f.String(flagAcks, "", "with a kafka:// target, the acknowledgements a produce waits for: all (the default), 1 or 0")
	f.String(flagDelivery, "", "with a kafka:// target, the guarantee: AT_LEAST_ONCE (the default), AT_MOST_ONCE or EXACTLY_ONCE (transactions; same cluster only)")
}

// lambdaFlags defines the flags of a lambda: target besides its function.
func lambdaFlags(f *pflag.FlagSet) {
	f.String(flagRegion, "", "with a lambda: target, the function's AWS region (default: the ARN's, else the server's AWS configuration, AWS_REGION)")
	f.String(flagEndpoint, "", "with a lambda: target, the Lambda endpoint to call instead of AWS's, e.g. another Sluice's API at http://HOST:PORT")
}

// kindFromFlags moves what the --target flag named into its kind's
// section: kafka://[CLUSTER/]TOPIC is a Kafka target, exec:COMMAND (or
// --command) a command, lambda:FUNCTION an AWS Lambda function; anything
// else stays the http section's URL. The timeout (and for lambda the
// partial batch responses) follows the target to its section.
func kindFromFlags(s *pipe.Spec, f *pflag.FlagSet) []error {
	var errs []error
	h := s.Target.HTTP
	cmdline := ""
	switch {
	case strings.HasPrefix(h.URL, "lambda:"):
		s.Target.Lambda = &pipe.LambdaTarget{FunctionName: strings.TrimPrefix(h.URL, "lambda:"),
			TimeoutSeconds: h.TimeoutSeconds, ReportBatchItemFailures: h.ReportBatchItemFailures}
		if s.Target.Lambda.FunctionName == "" {
			errs = append(errs, fmt.Errorf("--%s lambda:: give the function's name or ARN, e.g. lambda:orders or lambda:arn:aws:lambda:us-east-1:123456789012:function:orders", flagTarget))
		}
		h.URL, h.TimeoutSeconds, h.ReportBatchItemFailures = "", 0, false
	case strings.HasPrefix(h.URL, "kafka://"):
		d, err := pipe.ParseDestination(h.URL)
		if err != nil {
			return []error{fmt.Errorf("--%s %q: %v", flagTarget, h.URL, err)}
		}
		s.Target.Kafka = &pipe.KafkaTarget{Cluster: d.Cluster, Topic: d.Topic, DeliveryTimeoutSeconds: h.TimeoutSeconds}
		h.URL, h.TimeoutSeconds = "", 0
	case strings.HasPrefix(h.URL, "exec:"):
		cmdline = strings.TrimPrefix(h.URL, "exec:")
		h.URL = ""
	}
	if f.Changed(flagCommand) {
		if cmdline != "" {
			errs = append(errs, fmt.Errorf("--%s and --%s exec:…: give the command once", flagCommand, flagTarget))
		}
		cmdline, _ = f.GetString(flagCommand)
		if strings.TrimSpace(cmdline) == "" {
			errs = append(errs, fmt.Errorf("--%s \"\": give the program to run, e.g. --%s ./handle.sh", flagCommand, flagCommand))
		}
	}
	if cmdline != "" {
		s.Target.Exec = &pipe.ExecTarget{Command: strings.Fields(cmdline), TimeoutSeconds: h.TimeoutSeconds}
		h.TimeoutSeconds = 0
	}
	if f.Changed(flagRegion) || f.Changed(flagEndpoint) {
		if s.Target.Lambda == nil {
			s.Target.Lambda = &pipe.LambdaTarget{} // an update's patch of the pipe's lambda section
		}
		s.Target.Lambda.Region, _ = f.GetString(flagRegion)
		s.Target.Lambda.EndpointURL, _ = f.GetString(flagEndpoint)
	}
	if f.Changed(flagKey) || f.Changed(flagAcks) || f.Changed(flagDelivery) {
		if s.Target.Kafka == nil {
			s.Target.Kafka = &pipe.KafkaTarget{} // an update's patch of the pipe's kafka section
		}
		s.Target.Kafka.Key, _ = f.GetString(flagKey)
		s.Target.Kafka.Acks, _ = f.GetString(flagAcks)
		d, _ := f.GetString(flagDelivery)
		s.Target.Kafka.Delivery = strings.ToUpper(strings.TrimSpace(d))
	}
	return errs
}

// durationFlag parses a Go duration flag. pflag's own duration flag would
// answer "5" with "time: missing unit in duration", which does not say
// which flag or what to write.
func durationFlag(f *pflag.FlagSet, name, example string) (time.Duration, error) {
	v, _ := f.GetString(name)
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(v), 64); nerr == nil {
			return 0, fmt.Errorf("--%s %q: give a unit, e.g. %s", name, v, example)
		}
		return 0, fmt.Errorf("--%s %q: not a duration: use e.g. %s", name, v, example)
	}
	return d, nil
}

// asFlagErrors renames the fields of a rejected spec to the flags that set
// them, and shows seconds as the durations the flags take.
func asFlagErrors(err error) error {
	var ve *pipe.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &pipe.ValidationError{Kind: ve.Kind}
	for _, f := range ve.Fields {
		path := f.Field
		if i := strings.IndexByte(path, '['); i >= 0 {
			path = path[:i] // bootstrapServers[2] is still --bootstrap-servers, filterCriteria.filters[1] --filter
		}
		flag, ok := specFlags[path]
		if !ok {
			out.Fields = append(out.Fields, f)
			continue
		}
		if path == "maximumBatchingWindowInSeconds" || strings.HasSuffix(path, "imeoutSeconds") {
			if secs, err := strconv.ParseFloat(f.Value, 64); err == nil {
				f.Value = (time.Duration(secs * float64(time.Second))).String()
			}
		}
		if path == "minimumConcurrency" {
			// "use at most maximumConcurrency (N)" names the other flag.
			f.Reason = strings.ReplaceAll(f.Reason, "maximumConcurrency", "--"+flagMaxConc)
		}
		f.Field = flag
		out.Fields = append(out.Fields, f)
	}
	return out
}

func (a *app) pipesGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a pipe's settings and status",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			p, err := c.GetPipe(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == outputYAML {
				return writeSpecYAML(a.env.Stdout, p)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, p)
			}
			return writePipeTable(a.env.Stdout, p)
		},
	}
}

func (a *app) pipesListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List pipes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ps, err := c.ListPipes(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == outputYAML {
				return writeSpecsYAML(a.env.Stdout, ps)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, struct {
					Pipes []pipe.Pipe `json:"pipes"`
				}{ps})
			}
			if len(ps) == 0 {
				// stderr, so that stdout stays an (empty) table for scripts.
				fmt.Fprintln(a.env.Stderr, "No pipes yet. Create one with: sluice pipes create NAME --bootstrap-servers HOST:PORT --topic TOPIC --target URL")
				return nil
			}
			return writePipeList(a.env.Stdout, ps)
		},
	}
}

func (a *app) pipesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a pipe",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeletePipe(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.printDeleted("pipe", args[0], "")
		},
	}
}
