package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/pipe"
)

func (a *app) functionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "Register functions (HTTP endpoints, or Lambda handlers Sluice runs) that pipes target by name",
		Long: `A function is a named HTTP endpoint (--url), or a Lambda handler Sluice runs
itself (--handler): a program built for the reference's runtime, such as a Go
binary calling aws-lambda-go's lambda.Start, run unchanged as a pool of child
processes that poll Sluice's Lambda Runtime API. A pipe targets either by name
(pipes create --function NAME), the Lambda-compatible API resolves FunctionName
(a name or a function ARN) to it, and POST /2015-03-31/functions/NAME/invocations
(aws lambda invoke --endpoint-url) invokes it. Changing a function moves every
pipe that targets it to the new URL or handler.`,
	}
	cmd.AddCommand(a.functionsSetCmd(), a.functionsGetCmd(), a.functionsListCmd(), a.functionsDeleteCmd())
	return cmd
}

func (a *app) functionsSetCmd() *cobra.Command {
	var (
		u, handler  string
		env         []string
		concurrency int
		timeout     time.Duration
		memory      int
	)
	cmd := &cobra.Command{
		Use:   "set NAME (--url URL | --handler PATH [--env K=V]... [--concurrency N] [--timeout D] [--memory MB])",
		Short: "Create or change a function",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := pipe.Function{Name: args[0], URL: u}
			switch {
			case u != "" && handler != "":
				return fmt.Errorf("give either --url (an HTTP endpoint) or --handler (a program Sluice runs), not both")
			case u == "" && handler == "":
				return fmt.Errorf("--url or --handler is required: the http:// or https:// URL that receives the batches, or the path of a Lambda handler for Sluice to run")
			case handler == "":
				for _, name := range []string{"env", "concurrency", "timeout", "memory"} {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("--%s goes with --handler: an HTTP function runs elsewhere", name)
					}
				}
			default:
				// The server runs it: a path relative to here means
				// nothing there.
				abs, err := filepath.Abs(handler)
				if err != nil {
					return fmt.Errorf("--handler %s: %w", handler, err)
				}
				h := &pipe.Handler{Path: abs, Concurrency: concurrency, TimeoutSeconds: timeout.Seconds(), MemoryMB: memory}
				for _, kv := range env {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("--env %q: use NAME=VALUE", kv)
					}
					if h.Env == nil {
						h.Env = map[string]string{}
					}
					h.Env[k] = v
				}
				f.Handler = h
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			f, err = c.PutFunction(cmd.Context(), f)
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, f)
			}
			if f.Handler != nil {
				fmt.Fprintf(a.env.Stdout, "Function %q runs %s (up to %d processes, timeout %s).\n", f.Name, f.Handler.Path,
					f.Handler.Normalized().Concurrency, f.Handler.Timeout())
				return nil
			}
			fmt.Fprintf(a.env.Stdout, "Function %q posts to %s.\n", f.Name, f.URL)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&u, "url", "", "the endpoint's http:// or https:// URL")
	fl.StringVar(&handler, "handler", "", "a Lambda handler for Sluice to run: an executable that polls the Lambda Runtime API (aws-lambda-go's lambda.Start, a custom runtime's bootstrap)")
	fl.StringArrayVar(&env, "env", nil, "NAME=VALUE added to the handler's environment (repeatable)")
	fl.IntVar(&concurrency, "concurrency", 0, fmt.Sprintf("processes that may run at once, each one invocation at a time (default %d)", pipe.DefaultHandlerConcurrency))
	fl.DurationVar(&timeout, "timeout", 0, fmt.Sprintf("bound of one invocation; a handler past it is killed and restarted (default %s)", pipe.DefaultHandlerTimeout))
	fl.IntVar(&memory, "memory", 0, fmt.Sprintf("MB told to the handler as AWS_LAMBDA_FUNCTION_MEMORY_SIZE; not enforced (default %d)", pipe.DefaultHandlerMemoryMB))
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
			writeFunction(a.env.Stdout, f)
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
			fmt.Fprintln(w, "NAME\tKIND\tURL OR HANDLER\tPROCESSES\tLAST MODIFIED")
			for _, f := range fs {
				where, procs := f.URL, "-"
				if h := f.Handler; h != nil {
					where = h.Path
					if st := f.Status; st != nil {
						procs = fmt.Sprintf("%d/%d", st.Processes, h.Normalized().Concurrency)
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind(), where, procs, formatTime(f.LastModified))
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

// writeFunction prints a function for `functions get`.
func writeFunction(out io.Writer, f pipe.Function) {
	fmt.Fprintf(out, "Name:           %s\nKind:           %s\n", f.Name, f.Kind())
	if f.Handler == nil {
		fmt.Fprintf(out, "URL:            %s\nLast modified:  %s\n", f.URL, formatTime(f.LastModified))
		return
	}
	h := f.Handler.Normalized()
	fmt.Fprintf(out, "Handler:        %s\nConcurrency:    %d\nTimeout:        %s\nMemory:         %d MB\n",
		h.Path, h.Concurrency, h.Timeout(), h.MemoryMB)
	if len(h.Env) > 0 {
		// Names only: a value may be a credential.
		fmt.Fprintf(out, "Env:            %s\n", strings.Join(slices.Sorted(maps.Keys(h.Env)), ", "))
	}
	fmt.Fprintf(out, "Last modified:  %s\n", formatTime(f.LastModified))
	if st := f.Status; st != nil {
		fmt.Fprintf(out, "Processes:      %d running, %d busy\nInvocations:    %d (%d errors)\nCold starts:    %d (%d restarts)\n",
			st.Processes, st.Busy, st.Invocations, st.Errors, st.ColdStarts, st.Restarts)
		if st.LastError != "" {
			fmt.Fprintf(out, "Last error:     %s\n", st.LastError)
		}
	}
}

// hostedFunction reports whether the named function is a hosted handler;
// a function not found is not (the server says so when the pipe names
// it).
func (a *app) hostedFunction(cmd *cobra.Command, name string) (bool, error) {
	c, err := a.client(cmd)
	if err != nil {
		return false, err
	}
	f, err := c.GetFunction(cmd.Context(), name)
	if errors.Is(err, pipe.ErrFunctionNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return f.Kind() == pipe.FunctionHosted, nil
}
