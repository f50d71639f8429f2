package cli

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
)

// storeFlags says where the server's store is. The tokens and rotate-key commands work
// on the store file directly, not through the API: creating the first
// token cannot require a token. SQLite's WAL mode lets them run while
// `sluice serve` has the same store open.
type storeFlags struct {
	dataDir string
	config  string
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (a *app) tokensCmd() *cobra.Command {
	var o storeFlags
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and delete the API tokens of 'sluice serve'",
		Long: fmt.Sprintf(`Manage the tokens 'sluice serve' requires on every API request (all but
GET /healthz and /readyz). Run these on the server: they open its store
directly (--data-dir, or the dataDir of --config), so they work before any
token exists, and while serve runs.

A token is shown once, when created; the store keeps only its SHA-256.
Clients send it as 'Authorization: Bearer <token>'; the CLI sends the one
in --token or SLUICE_TOKEN. The AWS CLI and SDKs send it as their access
key id (AWS_ACCESS_KEY_ID=<token>, any secret key) on the Lambda-compatible
routes; Sluice does not verify SigV4 signatures, only the access key id.

A running server trusts a token it has seen for up to %[1]s without asking
the store again, so a deleted token stops working within %[1]s.`, api.DefaultTokenCacheTTL),
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.dataDir, "data-dir", defaultServeDataDir, "the server's data directory (dataDir), which holds sluice.db")
	pf.StringVar(&o.config, "config", "", "the server's config file, to use its dataDir")
	cmd.AddCommand(a.tokensCreateCmd(&o), a.tokensListCmd(&o), a.tokensDeleteCmd(&o))
	return cmd
}

func tokenNameArg(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing the token's NAME: %s", cmd.UseLine())
	case len(args) > 1:
		return fmt.Errorf("want one token NAME, got %d arguments %q: %s", len(args), args, cmd.UseLine())
	}
	return nil
}

func (a *app) tokensCreateCmd(o *storeFlags) *cobra.Command {
	var scope string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "create NAME [--scope read|operate|admin]",
		Short: "Create a token and print it, this once",
		Long: `Create a token named NAME (who or what uses it, e.g. ci or alice) and print
it. It is shown only this once: Sluice keeps only its hash.

--scope says what the token may do, each scope including the ones before:
  read     read everything the API shows (pipes, describe, metrics,
           functions, clusters, secrets' metadata)
  operate  also create, change and delete pipes, functions and event
           source mappings
  admin    also clusters and secrets, and event source mappings that
           bring their own credentials (SourceAccessConfigurations)
The first token defaults to admin, later ones to operate.`,
		Args: tokenNameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !tokenNameRE.MatchString(name) {
				return fmt.Errorf("token name %q: use 1–64 letters, digits and . _ @ -, starting with a letter or digit", name)
			}
			if scope != "" && !slices.Contains(api.Scopes, scope) {
				return fmt.Errorf("--scope %q: use one of %s", scope, strings.Join(api.Scopes, ", "))
			}
			st, err := a.openTokenStore(cmd, o, true)
			if err != nil {
				return err
			}
			defer st.Close()
			if scope == "" {
				all, err := st.ListTokens(cmd.Context())
				if err != nil {
					return err
				}
				scope = api.ScopeOperate
				if len(all) == 0 {
					scope = api.ScopeAdmin // the first token sets everything else up
				}
			}
			token := api.NewToken()
			t, err := st.CreateToken(cmd.Context(), store.Token{Name: name, Hash: api.HashToken(token), Scope: scope})
			if errors.Is(err, pipe.ErrExists) {
				return fmt.Errorf("token %q already exists: choose another name, or delete it first with 'sluice tokens delete %s'", name, name)
			}
			if err != nil {
				return err
			}
			if quiet {
				// For scripts: export SLUICE_TOKEN=$(sluice tokens create … --quiet)
				_, err := fmt.Fprintln(a.env.Stdout, token)
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, struct {
					Name    string    `json:"name"`
					Token   string    `json:"token"`
					Scope   string    `json:"scope"`
					Created time.Time `json:"created"`
				}{t.Name, token, t.Scope, t.Created})
			}
			// The token appears once, in a line ready to paste.
			fmt.Fprintf(a.env.Stdout, `Created token %q with scope %s. Keep it now: it is shown only this once, and Sluice stores only its hash.

  export SLUICE_TOKEN=%s

The CLI sends SLUICE_TOKEN (or --token) to the API. For the AWS CLI or SDKs,
set AWS_ACCESS_KEY_ID to the token and AWS_SECRET_ACCESS_KEY to any value.
Revoke it with 'sluice tokens delete %s'.
`, name, t.Scope, token, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "", "read, operate or admin (default: admin for the first token, operate after)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the token, for export SLUICE_TOKEN=$(sluice tokens create NAME -q)")
	return cmd
}

func (a *app) tokensListCmd(o *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tokens (names and creation times; the tokens themselves are not stored)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openTokenStore(cmd, o, false)
			if err != nil {
				return err
			}
			defer st.Close()
			all, err := st.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			type tokenJSON struct {
				Name    string    `json:"name"`
				Scope   string    `json:"scope"`
				Created time.Time `json:"created"`
			}
			if a.output == outputJSON {
				out := make([]tokenJSON, 0, len(all))
				for _, t := range all {
					out = append(out, tokenJSON{t.Name, t.Scope, t.Created})
				}
				return writeJSON(a.env.Stdout, struct {
					Tokens []tokenJSON `json:"tokens"`
				}{out})
			}
			if len(all) == 0 {
				fmt.Fprintln(a.env.Stdout, "No tokens: 'sluice serve' refuses every API request until you create one with 'sluice tokens create NAME'.")
				return nil
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSCOPE\tCREATED")
			for _, t := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\n", clean(t.Name), t.Scope, formatTime(t.Created))
			}
			return w.Flush()
		},
	}
}

func (a *app) tokensDeleteCmd(o *storeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: fmt.Sprintf("Delete a token: running servers refuse it within %s", api.DefaultTokenCacheTTL),
		Args:  tokenNameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openTokenStore(cmd, o, false)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.DeleteToken(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrTokenNotFound) {
					return fmt.Errorf("token %q not found: 'sluice tokens list' shows the names", args[0])
				}
				return err
			}
			return a.printDeleted("token", args[0], fmt.Sprintf(" A running server refuses it within %s (it trusts a token it has seen that long).", api.DefaultTokenCacheTTL))
		},
	}
}

// openTokenStore opens the server's store: its PostgreSQL database, or the
// SQLite file of its data directory. Only create makes an SQLite store if
// missing: listing or deleting in a directory without a store is a wrong
// --data-dir, not an empty store.
func (a *app) openTokenStore(cmd *cobra.Command, o *storeFlags, create bool) (store.Store, error) {
	dataDir, dsn := o.dataDir, ""
	if o.config != "" {
		if cmd.Flags().Changed("data-dir") {
			return nil, errors.New("--config and --data-dir both name the data directory: give one")
		}
		cfg, err := loadServeConfig(o.config)
		if err != nil {
			return nil, err
		}
		dataDir, dsn = cfg.DataDir, cfg.Store
	}
	st, err := a.openServerStore(cmd.Context(), dsn, dataDir, create)
	if err != nil {
		return nil, err
	}
	return st.Store, nil
}
