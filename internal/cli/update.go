package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/pipe"
)

const flagEnabled = "enabled"

// updateFlags are the flags of `pipes update`, in the order its error
// messages list them. They set the fields a pipe may change after create.
var updateFlags = []string{flagTarget, flagFunction, flagCommand, flagKey, flagAcks, flagDelivery, flagBatchSize, flagWindow, flagTimeout, flagPayload, flagOrdering, flagMinConc, flagMaxConc, flagRetries, flagRecordAge, flagEnabled, flagHeader, flagSigning, flagOAuthURL, flagOAuthCli, flagOAuthScp,
	flagOnFailure, flagDiscard, flagBisect, flagPartial, flagFilter, flagFormat, flagEnrich, flagTemplate, flagRegion, flagEndpoint}

// createOnlyFlags set fields that can be set only on create. `pipes
// update` accepts them (hidden) only to refuse them with the reason and the
// fix, rather than with pflag's bare "unknown flag".
var createOnlyFlags = map[string]string{
	flagBootstrap: "the consumer group's offsets belong to that cluster",
	flagCluster:   "the consumer group's offsets belong to that cluster",
	flagTopic:     "the consumer group's offsets belong to that topic",
	flagPosition:  "it applied when the consumer group first read each partition",
	flagTimestamp: "it applied when the consumer group first read each partition",
	flagGroup:     "the committed offsets are the group's",
}

func (a *app) pipesUpdateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update NAME [flags]",
		Short: "Change some settings of a pipe",
		Long: `Change the settings of a pipe that are given as flags; the others keep their
current values. The pipe restarts with the new settings after its in-flight
batches finish, so nothing is lost or delivered twice by the change.

The cluster, topic, starting position and consumer group can be set only
when a pipe is created: to change them, delete the pipe and create it again.

The update is based on the pipe as this command read it: if someone else
changes the pipe in between, nothing is updated and the command says so;
run it again.`,
		Example: `  sluice pipes update orders --batch-size 500 --batching-window 2s
  sluice pipes update orders --target https://hooks.example.com/v2/orders --target-timeout 1m
  sluice pipes update orders --maximum-retry-attempts -1
  sluice pipes update orders --ordering KEY --max-concurrency 50`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var refused []string
			for _, name := range []string{flagBootstrap, flagCluster, flagTopic, flagPosition, flagTimestamp, flagGroup} {
				if f.Changed(name) {
					refused = append(refused, fmt.Sprintf("--%s can be set only when the pipe is created (%s): delete the pipe and create it again to change it", name, createOnlyFlags[name]))
				}
			}
			if len(refused) > 0 {
				return errors.New(strings.Join(refused, "\n"))
			}
			given := false
			for _, name := range updateFlags {
				given = given || f.Changed(name)
			}
			if !given {
				return fmt.Errorf("nothing to update: give at least one of --%s (see 'sluice pipes update --help')", strings.Join(updateFlags, ", --"))
			}
			// specFromFlags reads only the flags given and refuses values
			// the server would misread (--batch-size 0 meaning "default").
			patch, err := specFromFlags(args[0], f)
			if err != nil {
				return err
			}
			var hosted bool
			if f.Changed(flagFunction) {
				if hosted, err = a.hostedFunction(cmd, patch.Target.HTTP.Function); err != nil {
					return err
				}
			}
			return a.patchPipe(cmd, args[0], func(s *pipe.Spec) {
				// The section is a pointer shared with the pipe as read:
				// changing a copy keeps the diff shown below honest.
				patchSecs := patch.TargetTimeout().Seconds()
				patchKind(s, patch, f)
				if patch.Target.HTTP == nil {
					patch.Target.HTTP = &pipe.HTTPTarget{}
				}
				h := s.Target.HTTPOrZero()
				s.Target.HTTP = &h
				// Only an http pipe keeps the http section the flags below
				// fill; another kind drops it again if it stayed empty.
				defer func() {
					if s.Target.Kind() == "" && reflect.ValueOf(*s.Target.HTTP).IsZero() {
						s.Target.HTTP = nil
					}
				}()
				if f.Changed(flagEnrich) {
					s.Enrichment = patch.Enrichment
					if s.Enrichment.URL == "" {
						s.Enrichment = nil
					}
				}
				if f.Changed(flagTemplate) {
					s.InputTemplate = patch.InputTemplate
				}
				if f.Changed(flagFormat) {
					s.Format = patch.Format
				}
				if f.Changed(flagFilter) {
					s.FilterCriteria = patch.FilterCriteria
					if len(s.FilterCriteria.Filters) == 0 {
						s.FilterCriteria = nil // --filter "" removes the filter
					}
				}
				if f.Changed(flagPartial) {
					on := patch.Target.HTTP.ReportBatchItemFailures
					switch {
					case s.Target.Lambda != nil, s.Target.Function != nil:
						// Not the scratch http section's.
						scratch := s.Target.HTTP
						s.Target.HTTP = nil
						s.Target = s.Target.WithPartialResponses(on)
						s.Target.HTTP = scratch
					default:
						s.Target.HTTP.ReportBatchItemFailures = on
					}
				}
				if f.Changed(flagBisect) {
					s.Retry.BisectBatchOnError = patch.Retry.BisectBatchOnError
				}
				if f.Changed(flagOnFailure) {
					s.OnFailure.Destination = patch.OnFailure.Destination
					if patch.OnFailure.Destination != "" {
						s.OnFailure.Discard = false // one or the other
					}
				}
				if f.Changed(flagDiscard) {
					s.OnFailure.Discard = patch.OnFailure.Discard
					if patch.OnFailure.Discard {
						s.OnFailure.Destination = ""
					}
				}
				// A target is a URL or a function: giving one replaces
				// the other.
				if f.Changed(flagTarget) && patch.Target.HTTP.URL != "" {
					s.Target.HTTP.URL, s.Target.HTTP.Function = patch.Target.HTTP.URL, ""
					s.Target.Kafka, s.Target.Exec, s.Target.Lambda, s.Target.Function = nil, nil, nil, nil
				}
				if f.Changed(flagFunction) {
					partial := s.Target.PartialResponses()
					s.Target.Kafka, s.Target.Exec, s.Target.Lambda, s.Target.Function = nil, nil, nil, nil
					s.Target.HTTP.URL, s.Target.HTTP.Function = "", patch.Target.HTTP.Function
					if hosted {
						// A hosted function is the function section's.
						s.Target.HTTP = &pipe.HTTPTarget{}
						s.Target.Function = &pipe.FunctionTarget{Name: patch.Target.HTTP.Function, ReportBatchItemFailures: partial}
					}
				}
				if f.Changed(flagBatchSize) {
					s.BatchSize = patch.BatchSize
				}
				if f.Changed(flagWindow) {
					s.MaximumBatchingWindowInSeconds = patch.MaximumBatchingWindowInSeconds
				}
				if f.Changed(flagTimeout) {
					// The scratch http section only when it is the kind.
					scratch := s.Target.HTTP
					if s.Target.Kind() == "" {
						s.Target.HTTP = nil
					}
					s.Target = s.Target.WithTimeoutSeconds(patchSecs)
					if s.Target.HTTP == nil {
						s.Target.HTTP = scratch
					}
				}
				if f.Changed(flagHeader) {
					// The headers given replace all of the pipe's.
					s.Target.HTTP.Headers = patch.Target.HTTP.Headers
				}
				if f.Changed(flagSigning) {
					s.Target.HTTP.SigningSecret = patch.Target.HTTP.SigningSecret
				}
				if patch.Target.HTTP.OAuth != nil {
					// Given together: the grant replaces the pipe's.
					s.Target.HTTP.OAuth = patch.Target.HTTP.OAuth
				}
				if f.Changed(flagPayload) {
					s.PayloadLimitBytes = patch.PayloadLimitBytes
				}
				if f.Changed(flagOrdering) {
					s.Ordering = patch.Ordering
				}
				if f.Changed(flagMinConc) {
					s.MinimumConcurrency = patch.MinimumConcurrency
				}
				if f.Changed(flagMaxConc) {
					s.MaximumConcurrency = patch.MaximumConcurrency
				}
				if f.Changed(flagRetries) {
					s.Retry.MaximumRetryAttempts = patch.Retry.MaximumRetryAttempts
				}
				if f.Changed(flagRecordAge) {
					s.Retry.MaximumRecordAgeInSeconds = patch.Retry.MaximumRecordAgeInSeconds
				}
				if f.Changed(flagEnabled) {
					e, _ := f.GetBool(flagEnabled)
					s.Enabled = &e
				}
			}, a.printUpdated)
		},
	}
	f := cmd.Flags()
	// The same names and value syntax as `pipes create`; no defaults are
	// shown, as a flag left out keeps the pipe's current value.
	f.String(flagTarget, "", "new target: an http:// or https:// URL, kafka://[CLUSTER/]TOPIC, exec:COMMAND or lambda:FUNCTION")
	f.String(flagFunction, "", "target a function registered with 'sluice functions set' (an HTTP endpoint or a hosted handler) instead of a URL")
	lambdaFlags(f)
	f.Int(flagBatchSize, 0, fmt.Sprintf("most records per delivery, %d–%d", pipe.MinBatchSize, pipe.MaxBatchSize))
	f.String(flagWindow, "", "longest a batch waits for more records after its first, a duration such as 500ms or 2s, at most 5m")
	f.String(flagTimeout, "", "timeout of one delivery attempt, a duration such as 10s, at most 14m")
	f.Int(flagPayload, 0, fmt.Sprintf("largest body of one delivery in bytes, %d–%d", pipe.MinPayloadLimitBytes, pipe.MaxPayloadLimitBytes))
	f.String(flagOrdering, "", "what stays in order: PARTITION, KEY (per key) or NONE")
	f.Int(flagMinConc, 0, fmt.Sprintf("lowest limit of batches in flight across the pipe's partitions, 1–%d", pipe.MaxConcurrency))
	f.Int(flagMaxConc, 0, fmt.Sprintf("highest limit of batches in flight across the pipe's partitions, 1–%d", pipe.MaxConcurrency))
	f.Int(flagRetries, 0, fmt.Sprintf("retries of a failed batch before giving up on it: -1 (unlimited) or 0–%d", pipe.MaxRetryAttempts))
	f.Int(flagRecordAge, 0, fmt.Sprintf("age in seconds after which a failing record is given up: -1 (unlimited) or %d–%d", pipe.MinRecordAgeSeconds, pipe.MaxRecordAgeSeconds))
	f.Bool(flagEnabled, false, "--enabled=false stops the pipe, --enabled starts it (as 'pipes disable' and 'pipes enable' do)")
	targetAuthFlags(f)
	failureFlags(f)
	f.StringSlice(flagBootstrap, nil, "")
	for _, name := range []string{flagCluster, flagTopic, flagPosition, flagTimestamp, flagGroup} {
		f.String(name, "", "")
	}
	for name := range createOnlyFlags {
		_ = f.MarkHidden(name) // cannot fail: the flag was just defined
	}
	return cmd
}

func (a *app) pipesEnableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "enable NAME",
		Short: "Start a disabled pipe",
		Long: `Enable a pipe: it moves to Enabling and starts consuming in a moment, from
its consumer group's committed offsets, so it resumes where it stopped.`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setEnabled(cmd, args[0], true)
		},
	}
}

func (a *app) pipesDisableCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "disable NAME",
		Short: "Stop a pipe, keeping its settings and offsets",
		Long: `Disable a pipe: it moves to Disabling, finishes and commits its in-flight
batches, and stops consuming in a moment. Its settings stay, and its consumer
group keeps its committed offsets in Kafka, so 'sluice pipes enable NAME'
resumes where it stopped. Records produced meanwhile wait in the topic
(within the topic's retention).`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setEnabled(cmd, args[0], false)
		},
	}
}

func (a *app) setEnabled(cmd *cobra.Command, name string, enabled bool) error {
	return a.patchPipe(cmd, name, func(s *pipe.Spec) { s.Enabled = &enabled }, func(w io.Writer, before, after pipe.Pipe) error {
		word := map[bool]string{true: "enabled", false: "disabled"}[enabled]
		if after.Revision == before.Revision {
			_, err := fmt.Fprintf(w, "Pipe %q is already %s (state %s).\n", name, word, after.Status.State)
			return err
		}
		_, err := fmt.Fprintf(w, "Pipe %q is %s: %s\n", name, after.Status.State, settleNote(after.Status.State, name))
		return err
	})
}

// patchPipe reads the pipe, applies edit to its spec and writes it back,
// conditional on the revision it read: sending the whole spec unconditioned
// would silently undo a change someone made in between.
func (a *app) patchPipe(cmd *cobra.Command, name string, edit func(*pipe.Spec), show func(w io.Writer, before, after pipe.Pipe) error) error {
	c, err := a.client(cmd)
	if err != nil {
		return err
	}
	cur, err := c.GetPipe(cmd.Context(), name)
	if err != nil {
		return err
	}
	next := cur.Spec
	edit(&next)
	p, err := updateIfRevision(cmd.Context(), c, next, cur.Revision)
	if err != nil {
		return asFlagErrors(err)
	}
	if a.output == outputJSON {
		return writeJSON(a.env.Stdout, p)
	}
	return show(a.env.Stdout, cur, p)
}

// updateIfRevision updates with If-Match and turns a lost race into what
// the user should do about it.
func updateIfRevision(ctx context.Context, svc pipe.Service, spec pipe.Spec, rev int64) (pipe.Pipe, error) {
	p, err := svc.UpdatePipe(ctx, spec, rev)
	switch {
	case errors.Is(err, pipe.ErrConflict):
		return p, fmt.Errorf("pipe %q was changed by someone else after it was read (at revision %d), so nothing was updated: run the command again to apply the change to the current pipe", spec.Name, rev)
	case errors.Is(err, pipe.ErrDeleting):
		return p, fmt.Errorf("pipe %q is being deleted, so it cannot be changed: wait until it is gone and create it again", spec.Name)
	}
	return p, err
}

func (a *app) printUpdated(w io.Writer, before, after pipe.Pipe) error {
	if after.Revision == before.Revision {
		fmt.Fprintf(w, "Pipe %q unchanged: it already has these settings.\n", after.Name)
		return nil
	}
	fmt.Fprintf(w, "Updated pipe %q (%s).\n", after.Name, formatChanges(specDiff(before.Spec, after.Spec)))
	fmt.Fprintf(w, "It is %s: %s\n\n", after.Status.State, settleNote(after.Status.State, after.Name))
	return writePipeTable(w, after)
}

// settleNote says what a state reached by a write means and that it is not
// final yet: the engine acts on the write at its next reconcile.
func settleNote(s pipe.State, name string) string {
	var what string
	switch s {
	case pipe.StateEnabling:
		what = "it starts consuming in a moment, from its consumer group's committed offsets."
	case pipe.StateDisabling:
		what = "it stops consuming in a moment, after its in-flight batches; its consumer group keeps its committed offsets."
	case pipe.StateUpdating:
		what = "it restarts with the new settings in a moment, after its in-flight batches."
	case pipe.StateDisabled:
		return "it stays disabled; the new settings apply once it is enabled."
	default:
		what = "the change takes effect in a moment."
	}
	return what + " Check with 'sluice pipes get " + name + "'."
}

// patchKind applies an update's kafka and exec flags: a --target or
// --command of another kind replaces the pipe's target (keeping only what
// the flags say), and --key, --acks and --delivery change the pipe's kafka
// section.
func patchKind(s *pipe.Spec, patch pipe.Spec, f *pflag.FlagSet) {
	kindGiven := f.Changed(flagCommand) || (f.Changed(flagTarget) && patch.Target.HTTPOrZero().URL == "")
	switch {
	case kindGiven && patch.Target.Kafka != nil:
		k := *patch.Target.Kafka
		s.Target = pipe.Target{Kafka: &k}
	case kindGiven && patch.Target.Exec != nil:
		e := *patch.Target.Exec
		s.Target = pipe.Target{Exec: &e}
	case kindGiven && patch.Target.Lambda != nil:
		l := *patch.Target.Lambda
		s.Target = pipe.Target{Lambda: &l}
	case patch.Target.Lambda != nil && s.Target.Lambda != nil:
		// --region or --endpoint-url alone.
		l := *s.Target.Lambda
		if f.Changed(flagRegion) {
			l.Region = patch.Target.Lambda.Region
		}
		if f.Changed(flagEndpoint) {
			l.EndpointURL = patch.Target.Lambda.EndpointURL
		}
		s.Target.Lambda = &l
	case patch.Target.Kafka != nil && s.Target.Kafka != nil:
		k := *s.Target.Kafka
		if f.Changed(flagKey) {
			k.Key = patch.Target.Kafka.Key
		}
		if f.Changed(flagAcks) {
			k.Acks = patch.Target.Kafka.Acks
			k.Idempotence = nil // follows acks again, as on create
			k.MaxInFlightRequests = 0
		}
		if f.Changed(flagDelivery) {
			k.Delivery = patch.Target.Kafka.Delivery
		}
		s.Target.Kafka = &k
	case patch.Target.Kafka != nil:
		// --key, --acks or --delivery on a pipe of another kind: the
		// kafka section with them makes validation say what is missing.
		k := *patch.Target.Kafka
		s.Target.Kafka = &k
	}
}
