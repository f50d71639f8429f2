package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/observe"
)

func (a *app) pipesDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a pipe's state, last error, per-partition lag and throughput",
		Long: `Show what the server knows about a running pipe beyond 'pipes get': whether
this server runs it, the latest problem it saw, the consumer group's committed
offset, the end offset and the lag of each partition (measured periodically,
also for disabled pipes), and the records delivered per second over the last
minute. A pipe this server runs also shows its concurrency: the limit of
batches in flight the controller set within the pipe's minimum and maximum,
the batches in flight now, and the last change of the limit with its reason.`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			d, err := c.Describe(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, d)
			}
			return writeDescription(a.env.Stdout, d, time.Now())
		},
	}
}

// plural is "1 record", "2 records".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// formatHeld lists partitions as "orders 0,1,2; audit 0", or "none".
func formatHeld(held map[string][]int32) string {
	if len(held) == 0 {
		return "none"
	}
	topics := make([]string, 0, len(held))
	for t := range held {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	parts := make([]string, len(topics))
	for i, t := range topics {
		ps := slices.Clone(held[t])
		slices.Sort(ps)
		nums := make([]string, len(ps))
		for j, p := range ps {
			nums[j] = strconv.Itoa(int(p))
		}
		parts[i] = t + " " + strings.Join(nums, ",")
	}
	return strings.Join(parts, "; ")
}

// concurrencyText is the controller's limit within its bounds, the batches
// in flight and the ordering: "limit 8 of 1–200, 3 in flight, ordering KEY".
func concurrencyText(c *observe.Concurrency) string {
	return fmt.Sprintf("limit %d of %d–%d, %d in flight, ordering %s", c.Current, c.Minimum, c.Maximum, c.InFlight, orDash(c.Ordering))
}

// concurrencyChange is the limit's last move and its reason, as "raised
// 4→8 (backlog) 3s ago" or "halved 40→20 (throttled) 1m05s ago"; "none
// yet" before the first.
func concurrencyChange(ch *observe.ConcurrencyChange, now time.Time) string {
	if ch == nil {
		return "none yet"
	}
	verb := "raised"
	switch {
	case ch.To < ch.From && ch.To == ch.From/2:
		verb = "halved"
	case ch.To < ch.From:
		verb = "lowered"
	}
	s := fmt.Sprintf("%s %d→%d (%s)", verb, ch.From, ch.To, orDash(ch.Reason))
	if !ch.At.IsZero() {
		s += " " + ago(now.Sub(ch.At))
	}
	return s
}

// ago is how long ago something happened, to the second: "3s ago",
// "2m05s ago", "1h20m ago"; a time ahead of this clock (the server's may
// differ a little) is "just now".
func ago(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", d/time.Minute, d%time.Minute/time.Second)
	default:
		return fmt.Sprintf("%dh%02dm ago", d/time.Hour, d%time.Hour/time.Minute)
	}
}

// writeDescription writes the summary as "Key: value" lines, then one row
// per partition. now is what the last concurrency change's age is told
// from.
func writeDescription(w io.Writer, d observe.Description, now time.Time) error {
	running := "no"
	if d.Running {
		running = "yes"
	}
	lastErr := "-"
	if d.LastError != nil {
		lastErr = d.LastError.Message + " (at " + formatTime(d.LastError.At) + ")"
	}
	tp := d.Throughput
	rows := [][2]string{
		{"Name", d.Name},
		{"UUID", d.UUID},
		{"Consumer group", orDash(d.ConsumerGroupID)},
		{"Topic", strings.Join(d.Topics, ",")},
		{"State", d.State},
		{"State reason", orDash(d.StateTransitionReason)},
		{"Running on this server", running},
	}
	if d.Running {
		group := "not described yet"
		if g := d.Group; g != nil {
			members := "members"
			if g.Members == 1 {
				members = "member"
			}
			group = fmt.Sprintf("%s, %d %s (at %s)", g.State, g.Members, members, formatTime(g.CheckedAt))
		}
		if a := d.Asleep; a != nil {
			group = fmt.Sprintf("left while asleep (since %s, after %s without records); the next record wakes it", formatTime(a.Since), a.IdleFor)
		}
		rows = append(rows, [2]string{"Group state", group},
			[2]string{"Group instance id", orDash(d.GroupInstanceID)},
			[2]string{"Partitions held here", formatHeld(d.HeldPartitions)})
	}
	if c := d.Concurrency; c != nil {
		rows = append(rows, [2]string{"Concurrency", concurrencyText(c)},
			[2]string{"Concurrency change", concurrencyChange(c.LastChange, now)})
	}
	rows = append(rows, [][2]string{
		{"Last processing result", orDash(d.LastProcessingResult)},
		{"Last error", lastErr},
		{"Throughput", fmt.Sprintf("%.1f records/s over the last %ds (%s)", tp.RecordsPerSecond, tp.WindowSeconds, plural(int(tp.Records), "record"))},
	}...)
	failed := fmt.Sprintf("%s to the failure destination, %s discarded", plural(int(d.Failed.DeadLettered), "record"), plural(int(d.Failed.Discarded), "record"))
	if l := d.Failed.Last; l != nil {
		failed += fmt.Sprintf("; last %s-%d offsets %d–%d (%s) to %s at %s", l.Topic, l.Partition, l.FirstOffset, l.LastOffset, l.Condition, l.To, formatTime(l.At))
	}
	rows = append(rows, [2]string{"Failed records", failed}, [2]string{"Filtered out", plural(int(d.FilteredOut), "record")})
	for _, rt := range d.Retrying {
		rows = append(rows, [2]string{"Retrying", fmt.Sprintf("%s-%d from offset %d: attempt %d at %s (failing since %s): %s",
			rt.Topic, rt.Partition, rt.FirstOffset, rt.NextAttempt, formatTime(rt.NextAttemptAt), formatTime(rt.FailingSince), rt.Problem)})
	}
	for _, m := range d.Members {
		name := m.Name
		if m.This {
			name += " (this server)"
		}
		rows = append(rows, [2]string{"Member", fmt.Sprintf("%s holds %s; %s (at %s)", name, formatHeld(m.Partitions), orDash(m.LastProcessingResult), formatTime(m.Updated))})
	}
	switch {
	case d.Lag == nil && d.LagMeasuredBy != "":
		rows = append(rows, [2]string{"Lag", "measured by member " + d.LagMeasuredBy + " (describe there, or read sluice_offset_lag from its /metrics)"})
	case d.Lag == nil:
		rows = append(rows, [2]string{"Lag", "not measured yet"})
	default:
		rows = append(rows, [2]string{"Lag", fmt.Sprintf("%d total, %d max", d.Lag.Total, d.Lag.Max)},
			[2]string{"Lag measured", formatTime(d.Lag.MeasuredAt)})
		if d.Lag.Error != "" {
			rows = append(rows, [2]string{"Lag error", d.Lag.Error + " (the figures are from the time above)"})
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], clean(r[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d.Lag == nil || len(d.Lag.Partitions) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, p := range d.Lag.Partitions {
		committed := "-"
		if p.CommittedOffset != nil {
			committed = strconv.FormatInt(*p.CommittedOffset, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\n", clean(p.Topic), p.Partition, committed, p.EndOffset, p.Lag)
	}
	return tw.Flush()
}
