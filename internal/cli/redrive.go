package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/redrive"
)

func (a *app) pipesRedriveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redrive NAME [--dry-run]",
		Short: "Deliver what a pipe's failure destination holds to its target again",
		Long: `Replay the records a pipe handed to its kafka:// or file:// failure destination
into its target, in their original order per source partition, showing
progress as it goes. A redrive remembers how far it got (a consumer group
"sluice-redrive-<pipe UUID>" on the destination topic, or a cursor file beside
the destination file), so a second redrive continues where the first stopped
instead of repeating it. A record the target refuses again stops the redrive
there; fix the target and run it again.

--dry-run reads what a redrive would deliver and shows it per source
partition, without delivering or recording anything.

The pipe keeps running meanwhile: redriven records reach the target beside
its new ones.`,
		Example: `  sluice pipes redrive orders --dry-run
  sluice pipes redrive orders`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			dry, _ := cmd.Flags().GetBool("dry-run")
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			progress := func(p redrive.Progress) {
				if a.output == outputJSON || p.Done || p.Error != "" {
					return
				}
				verb := "delivered"
				if p.DryRun {
					verb = "found"
				}
				n := p.Delivered
				if p.DryRun {
					n = p.Read
				}
				fmt.Fprintf(a.env.Stderr, "redrive %s: %d records read, %d %s\n", p.From, p.Read, n, verb)
			}
			last, err := c.Redrive(cmd.Context(), args[0], dry, progress)
			if a.output == outputJSON {
				if werr := writeJSON(a.env.Stdout, last); werr != nil {
					return werr
				}
			} else if last.From != "" {
				writeRedrive(a.env.Stdout, last)
			}
			return err
		},
	}
	cmd.Flags().Bool("dry-run", false, "show what would be redriven, per source partition, without delivering it")
	return cmd
}

func writeRedrive(w io.Writer, p redrive.Progress) {
	switch {
	case p.DryRun && p.Read == 0:
		fmt.Fprintf(w, "Nothing to redrive in %s.\n", p.From)
	case p.DryRun:
		fmt.Fprintf(w, "A redrive would deliver %d records from %s:\n", p.Read-p.Duplicates, p.From)
	case p.Error != "":
		fmt.Fprintf(w, "Redrive from %s stopped after %d of %d records read.\n", p.From, p.Delivered, p.Read)
	case p.Read == 0:
		fmt.Fprintf(w, "Nothing to redrive in %s: everything it holds was redriven before.\n", p.From)
	default:
		fmt.Fprintf(w, "Redrove %d records from %s:\n", p.Delivered, p.From)
	}
	for _, pp := range p.Partitions {
		fmt.Fprintf(w, "  %s: %d records, offsets %d–%d\n", pp.Partition, pp.Records, pp.FirstOffset, pp.LastOffset)
	}
	if p.Duplicates > 0 {
		fmt.Fprintf(w, "  (%d records were in the destination more than once; each was delivered once)\n", p.Duplicates)
	}

}
