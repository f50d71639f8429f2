package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// writeJSON writes v as indented JSON, the same document the API returns.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writePipeTable writes one pipe as "Key: value" lines, in the order a
// person checks them: is it running, what does it read, how does it batch,
// where does it deliver.
func writePipeTable(w io.Writer, p pipe.Pipe) error {
	s := p.Spec
	rows := [][2]string{
		{"Name", s.Name},
		{"UUID", s.UUID},
		{"State", string(p.Status.State)},
		{"State reason", orDash(p.Status.StateTransitionReason)},
		{"Last processing result", orDash(p.Status.LastProcessingResult)},
		{"Last modified", formatTime(p.Status.LastModified)},
		{"Enabled", strconv.FormatBool(s.IsEnabled())},
		source(s),
		{"Topic", strings.Join(s.Topics, ",")},
		{"Consumer group", orDash(s.GroupID())},
		{"Starting position", startingPosition(s)},
		{"Batch size", strconv.Itoa(s.BatchSize)},
		{"Batching window", s.BatchingWindow().String()},
		{"Payload limit", formatBytes(s.PayloadLimitBytes)},
		{"Ordering", s.Normalize().Ordering},
		{"Concurrency", concurrencyRange(s)},
		{"Target", targetText(s.Target)},
		{"Target timeout", s.TargetTimeout().String()},
		{"Target headers", targetHeaders(s.Target)},
		{"Signing secret", orDash(s.Target.HTTPOrZero().SigningSecret)},
		{"OAuth", oauthText(s.Target.HTTPOrZero().OAuth)},
		{"Partial responses", yesNo(s.Target.HTTPOrZero().ReportBatchItemFailures || (s.Target.Lambda != nil && s.Target.Lambda.ReportBatchItemFailures))},
		{"Bisect on error", yesNo(s.Retry.BisectBatchOnError)},
		{"On failure", onFailureText(s.OnFailure)},
		{"Filter", filterText(s.FilterCriteria)},
		{"Event format", orDash(s.Format)},
		{"Maximum retry attempts", limit(s.Retry.MaximumRetryAttempts, "")},
		{"Maximum record age", limit(s.Retry.MaximumRecordAgeInSeconds, "s")},
		{"Revision", strconv.FormatInt(p.Revision, 10)},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], clean(r[1]))
	}
	return tw.Flush()
}

// targetHeaders names the target's headers and where each value comes
// from, never a value: one given in clear may still be a credential.
func targetHeaders(tg pipe.Target) string {
	t := tg.HTTPOrZero()
	if len(t.Headers) == 0 {
		return "-"
	}
	names := slices.Sorted(maps.Keys(t.Headers))
	for i, n := range names {
		if ref, ok := strings.CutPrefix(t.Headers[n], pipe.SecretValuePrefix); ok {
			names[i] = n + " (from secret " + ref + ")"
		} else {
			names[i] = n + " (value given)"
		}
	}
	return strings.Join(names, ", ")
}

func oauthText(o *pipe.OAuth) string {
	if o == nil {
		return "-"
	}
	s := "client credentials from " + o.TokenURL + " (client in secret " + o.ClientSecret + ")"
	if len(o.Scopes) > 0 {
		s += ", scopes " + strings.Join(o.Scopes, " ")
	}
	return s
}

// writePipeList writes one row per pipe.
func writePipeList(w io.Writer, ps []pipe.Pipe) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tTOPICS\tTARGET\tBATCH\tLAST RESULT")
	for _, p := range ps {
		batch := fmt.Sprintf("%d/%s", p.BatchSize, p.BatchingWindow())
		cols := []string{p.Name, string(p.Status.State), strings.Join(p.Topics, ","), targetText(p.Target), batch, orDash(p.Status.LastProcessingResult)}
		for i, c := range cols {
			cols[i] = clean(c)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

func startingPosition(s pipe.Spec) string {
	if s.StartingPositionTimestamp != nil {
		return string(s.StartingPosition) + " " + s.StartingPositionTimestamp.Format(time.RFC3339)
	}
	return orDash(string(s.StartingPosition))
}

// limit shows a retry limit; nil (never stored, as the server normalizes)
// and -1 both mean unlimited.
func limit(v *int, unit string) string {
	if v == nil || *v == pipe.Unlimited {
		return "unlimited"
	}
	return strconv.Itoa(*v) + unit
}

// concurrencyRange is the bounds of the batches a pipe has in flight, as
// "1–200"; the limit between them is describe's.
func concurrencyRange(s pipe.Spec) string {
	n := s.Normalize()
	return fmt.Sprintf("%d–%d", n.MinimumConcurrency, n.MaximumConcurrency)
}

func formatBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clean makes a server-supplied string safe for one table cell: a reason
// or processing result may quote a target's error text, whose newlines
// would break the table and whose escape sequences would reach the
// terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// targetText shows a URL target as the URL, a function target by name, a
// Kafka target as kafka://[CLUSTER/]TOPIC with its quality of service, a
// command as its command line, and an AWS Lambda function as
// lambda:FUNCTION with where it is invoked.
func targetText(t pipe.Target) string {
	if l := t.Lambda; l != nil {
		region := l.KnownRegion()
		if region == "" {
			region = "from the server's AWS configuration"
		}
		where := []string{"region " + region}
		if l.Qualifier != "" {
			where = append([]string{"qualifier " + l.Qualifier}, where...)
		}
		if l.EndpointURL != "" {
			where = append(where, "endpoint "+l.EndpointURL)
		}
		return t.Where() + " (" + strings.Join(where, ", ") + ")"
	}
	if k := t.Kafka; k != nil {
		return fmt.Sprintf("%s (%s, acks %s, idempotent %s, key %s, partitioner %s)", t.Where(),
			orDash(k.Delivery), orDash(k.Acks), yesNo(k.IsIdempotent()), orDash(k.Key), orDash(k.Partitioner))
	}
	if e := t.Exec; e != nil {
		return "exec " + strings.Join(e.Command, " ")
	}
	if f := t.Function; f != nil {
		return "hosted function " + f.Name
	}
	h := t.HTTPOrZero()
	if h.Function != "" {
		return "function " + h.Function
	}
	return h.URL
}

// source is the table row saying where a pipe reads from.
func source(s pipe.Spec) [2]string {
	if s.Cluster != "" {
		return [2]string{"Cluster", s.Cluster}
	}
	return [2]string{"Bootstrap servers", strings.Join(s.BootstrapServers, ",")}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// onFailureText says where records whose limits ran out go.
func onFailureText(f pipe.OnFailure) string {
	switch {
	case f.Destination != "":
		return f.Destination
	case f.Discard:
		return "discard"
	}
	return "retried until delivered"
}

// filterText shows the patterns, ORed.
func filterText(f *pipe.FilterCriteria) string {
	pats := f.Patterns()
	if len(pats) == 0 {
		return "-"
	}
	return strings.Join(pats, " OR ")
}
