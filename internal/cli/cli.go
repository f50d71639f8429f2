// Package cli is the `sluice` command: pipe management as a client of the
// REST API, and the `dev` and `serve` commands that run the server. Nothing
// imports it but cmd/sluice.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// DefaultAPIURL is where the CLI looks for the API when neither --api nor
// SLUICE_API says otherwise: where `sluice dev` serves it.
const DefaultAPIURL = "http://127.0.0.1:8080"

// Engine is what `dev` and `serve` run: the pipe.Service the API exposes,
// and the loop that runs the pipes. Run blocks until ctx is done, then stops
// every pipe cleanly (in-flight batches finished and committed) and
// returns. *engine.Engine is one.
type Engine interface {
	pipe.Service
	Run(ctx context.Context) error
	// API lists what the server's API serves besides pipes (functions,
	// clusters, metrics, describe, redrive): declared by whoever builds
	// the engine, so no route depends on a type assertion.
	API() []api.Option
}

// EngineFunc builds the Engine over a store. cmd/sluice passes one that
// calls engine.New; tests pass a stand-in, so this package builds and
// tests without the data plane.
type EngineFunc func(st store.Store, log *slog.Logger, o EngineOptions) (Engine, error)

// EngineOptions are the knobs `dev` and `serve` set differently.
type EngineOptions struct {
	// SessionTimeout is the consumer groups' session timeout; 0 keeps the
	// engine's default. `dev` shortens it so that after a crash
	// (SIGKILL) the restarted process gets its partitions back in seconds
	// rather than after Kafka's 45 s default.
	SessionTimeout time.Duration
	// SleepAfter is how long a pipe may see no record before it sleeps
	// (engine.Tuning.SleepAfter): 0 keeps the engine's default, negative
	// never sleeps.
	SleepAfter time.Duration
	// Keyring seals and opens secrets, under the master key from
	// SLUICE_MASTER_KEY or the data directory's master.key.
	Keyring *secret.Keyring
	// Member is this process's member name in the pipes' consumer groups
	// (static membership, see package member), and MemberSetting says
	// where it came from, so a collision can name what to change.
	Member        string
	MemberSetting string
	// Changes hears of other processes' writes to a shared store; nil
	// for one process's store.
	Changes store.Notifier
}

// Env is the outside world of one run of the command.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin is what `apply -f -` and `produce` read; nil means os.Stdin.
	Stdin     io.Reader
	Getenv    func(string) string
	NewEngine EngineFunc
}

// Main runs the command with the process's streams and environment and
// returns the exit code.
func Main(args []string, newEngine EngineFunc) int {
	return Run(context.Background(), args, Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, NewEngine: newEngine})
}

// Run runs the command with args (without the program name) and returns the
// exit code: 0, or 1 after printing "Error: …" to env.Stderr. Canceling ctx
// stops `dev` and `serve` as a signal does.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	a := &app{env: env}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if env.Stdin != nil {
		root.SetIn(env.Stdin)
	}
	if err := root.ExecuteContext(ctx); err != nil {
		if a.output == outputJSON {
			// The same stream and shape as results, so a script reading
			// -o json always gets JSON; the exit code says which.
			printJSONError(env.Stdout, err)
		} else {
			printError(env.Stderr, err)
		}
		return 1
	}
	return 0
}

// printDeleted says a delete worked: a sentence, or with -o json
// {"deleted": {"kind", "name"}}; more is added to the sentence.
func (a *app) printDeleted(kind, name, more string) error {
	if a.output == outputJSON {
		return writeJSON(a.env.Stdout, map[string]any{"deleted": map[string]string{"kind": kind, "name": name}})
	}
	_, err := fmt.Fprintf(a.env.Stdout, "Deleted %s %q.%s\n", kind, name, more)
	return err
}

// printJSONError writes {"error": {"message", "fields"}}: fields for a
// rejected spec, one per bad field.
func printJSONError(w io.Writer, err error) {
	type field struct {
		Field  string `json:"field"`
		Value  string `json:"value,omitempty"`
		Reason string `json:"reason"`
	}
	body := struct {
		Message string  `json:"message"`
		Fields  []field `json:"fields,omitempty"`
	}{Message: strings.TrimSpace(err.Error())}
	var ve *pipe.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			body.Fields = append(body.Fields, field{f.Field, f.Value, f.Reason})
		}
	}
	_ = writeJSON(w, map[string]any{"error": body})
}

// app holds the global flags and what the commands share.
type app struct {
	env Env

	apiURL    string
	token     string // --token; SLUICE_TOKEN when not given
	apiCACert string // --api-ca-cert; SLUICE_API_CA_CERT when not given
	output    string
	logFormat string
	logLevel  string
	// secretBrokers is secrets create's --brokers, shared by its
	// subcommands.
	secretBrokers []string
	// devMode is set by `sluice dev`: a throwaway store on one machine.
	devMode bool

	log *slog.Logger
}

const (
	outputTable = "table"
	outputJSON  = "json"
)

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Sluice turns Kafka topics into batched calls to your HTTP endpoints",
		Long: `Sluice consumes Kafka topics and delivers their records in batches to HTTP
targets ("pipes"), at least once and in order per partition, committing
offsets only after the target succeeded.

Start with 'sluice dev': an embedded broker, the API and a store in one
process, nothing else to install.`,
		SilenceErrors:     true, // Run prints errors in one format
		SilenceUsage:      true, // a failed API call is not a usage mistake
		PersistentPreRunE: a.setup,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w%s\nRun '%s --help' for usage", flagError(err), flagSuggestion(cmd, err), cmd.CommandPath())
	})

	apiDefault := DefaultAPIURL
	if v := a.env.Getenv("SLUICE_API"); v != "" {
		apiDefault = v
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.apiURL, "api", apiDefault, "URL of the Sluice API (env SLUICE_API)")
	// Their env values are read in client(), not shown as flag defaults:
	// --help must not print a token.
	pf.StringVar(&a.token, "token", "", "API token from 'sluice tokens create' (env SLUICE_TOKEN)")
	pf.StringVar(&a.apiCACert, "api-ca-cert", "", "PEM file of the CA to trust for an https:// API URL, instead of the system's CAs (env SLUICE_API_CA_CERT)")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table, json or yaml (yaml: 'pipes get' and 'pipes list' print the file 'apply' reads)")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(a.pipesCmd(), a.functionsCmd(), a.clustersCmd(), a.secretsCmd(), a.tokensCmd(), a.devCmd(), a.serveCmd(), a.sinkCmd(), a.produceCmd(), a.benchCmd(), a.versionCmd())
	root.AddCommand(a.applyCmd()) // apply.go
	return root
}

// flagSuggestion is "; did you mean --x?" for an unknown flag that is one
// or two edits from a flag of the command, as cobra does for commands.
func flagSuggestion(cmd *cobra.Command, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	best, bestDist := "", 3
	visit := func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if d := editDistance(name, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if best == "" {
		return ""
	}
	return "; did you mean --" + best + "?"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// flagError rephrases pflag's "strconv.ParseInt: parsing …: invalid
// syntax" as what the flag wants.
func flagError(err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err
	}
	want := "a valid " + iv.GetFlag().Value.Type()
	switch iv.GetFlag().Value.Type() {
	case "int":
		want = "a whole number"
	case "bool":
		want = "true or false"
	}
	return fmt.Errorf("--%s %q: want %s", iv.GetFlag().Name, iv.GetValue(), want)
}

// setup validates the global flags once for every command.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	switch a.output {
	case outputTable, outputJSON:
	case outputYAML:
		if !yamlOutput[cmd.CommandPath()] {
			return fmt.Errorf("--output yaml: only 'sluice pipes get' and 'sluice pipes list' print YAML (the file 'sluice apply' reads): use table or json with '%s'", cmd.CommandPath())
		}
	default:
		return fmt.Errorf("--output %q: use table, json or yaml", a.output)
	}
	log, err := newLogger(a.env.Stderr, a.logFormat, a.logLevel)
	if err != nil {
		return err
	}
	a.log = log
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
}

// client returns the API client, after checking the URL so that a typo
// gets a precise message instead of a dial error. It sends the token of
// --token or SLUICE_TOKEN, and trusts the CA of --api-ca-cert or
// SLUICE_API_CA_CERT for an https:// URL.
func (a *app) client(cmd *cobra.Command) (*api.Client, error) {
	source := "--api"
	if !cmd.Flags().Changed("api") && a.env.Getenv("SLUICE_API") != "" {
		source = "SLUICE_API"
	}
	u, err := url.Parse(a.apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: use an http:// or https:// URL, e.g. %s", source, a.apiURL, DefaultAPIURL)
	}
	hc := &http.Client{Timeout: apiTimeout}
	if u.Scheme == "http" && cmd.Flags().Changed("api-ca-cert") {
		return nil, fmt.Errorf("--api-ca-cert: the API URL %s is http://, which uses no certificates: use its https:// URL", a.apiURL)
	}
	if u.Scheme == "https" {
		tr, err := a.apiTransport(cmd)
		if err != nil {
			return nil, err
		}
		hc.Transport = tr
	}
	token := a.token
	if !cmd.Flags().Changed("token") {
		token = a.env.Getenv("SLUICE_TOKEN")
	}
	token = strings.TrimSpace(token) // a pasted token often brings a newline
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) {
		// Not printed: it is a credential, and likely a mangled one.
		return nil, errors.New("--token or SLUICE_TOKEN: the token contains spaces or non-ASCII characters; copy it again from 'sluice tokens create'")
	}
	return api.NewClient(a.apiURL, hc).WithToken(token), nil
}

// apiTimeout bounds one API request, as api.NewClient's default does.
const apiTimeout = 30 * time.Second

// apiTransport is the transport for an https:// API: the system's CAs, or
// only the CA of --api-ca-cert (as curl's --cacert), for a server whose
// certificate a private CA signed.
func (a *app) apiTransport(cmd *cobra.Command) (http.RoundTripper, error) {
	path, source := a.apiCACert, "--api-ca-cert"
	if !cmd.Flags().Changed("api-ca-cert") {
		path, source = a.env.Getenv("SLUICE_API_CA_CERT"), "SLUICE_API_CA_CERT"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if path == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in the file: give the CA's certificate (-----BEGIN CERTIFICATE-----)", source, path)
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}

// printError prints err as "Error: <message>". A rejected spec gets one
// line per field, so all of them can be fixed in one go.
func printError(w io.Writer, err error) {
	var ve *pipe.ValidationError
	if errors.As(err, &ve) && len(ve.Fields) > 0 {
		fmt.Fprintln(w, "Error: invalid pipe:")
		for _, f := range ve.Fields {
			fmt.Fprintln(w, "  "+f.Error())
		}
		return
	}
	// Joined errors and hints come on further lines; indenting them keeps
	// them visibly part of this one error.
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "\n  ")
	fmt.Fprintln(w, "Error: "+msg)
}
