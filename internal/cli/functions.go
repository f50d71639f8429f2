package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/pipe"
)

func (a *app) functionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "Register named HTTP endpoints that pipes and event source mappings target by name",
		Long: `A function is a named HTTP endpoint. A pipe can target it by name
(target.http.function), and the Lambda-compatible API resolves FunctionName
(a name or a function ARN) to it. Changing a function's URL moves every pipe
that targets it to the new URL.`,
	}
	cmd.AddCommand(a.functionsSetCmd(), a.functionsGetCmd(), a.functionsListCmd(), a.functionsDeleteCmd())
	return cmd
}

func (a *app) functionsSetCmd() *cobra.Command {
	var u string
	cmd := &cobra.Command{
		Use:   "set NAME --url URL",
		Short: "Create or change a function",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if u == "" {
				return fmt.Errorf("--url is required: the http:// or https:// URL that receives the batches")
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			f, err := c.PutFunction(cmd.Context(), pipe.Function{Name: args[0], URL: u})
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, f)
			}
			fmt.Fprintf(a.env.Stdout, "Function %q posts to %s.\n", f.Name, f.URL)
			return nil
		},
	}
	cmd.Flags().StringVar(&u, "url", "", "the endpoint's http:// or https:// URL")
	return cmd
}

func (a *app) functionsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a function",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			f, err := c.GetFunction(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, f)
			}
			fmt.Fprintf(a.env.Stdout, "Name:           %s\nURL:            %s\nLast modified:  %s\n", f.Name, f.URL, formatTime(f.LastModified))
			return nil
		},
	}
}

func (a *app) functionsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List functions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			fs, err := c.ListFunctions(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, struct {
					Functions []pipe.Function `json:"functions"`
				}{fs})
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tURL\tLAST MODIFIED")
			for _, f := range fs {
				fmt.Fprintf(w, "%s\t%s\t%s\n", f.Name, f.URL, formatTime(f.LastModified))
			}
			return w.Flush()
		},
	}
}

func (a *app) functionsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a function no pipe targets",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteFunction(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.printDeleted("function", args[0], "")
		},
	}
}
