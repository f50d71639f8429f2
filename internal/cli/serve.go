package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/member"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

const defaultServeDataDir = ".sluice"

// serveConfig is the file `sluice serve --config` reads. YAML, with the
// JSON field names.
type serveConfig struct {
	// APIAddr is the host:port the API listens on.
	APIAddr string `json:"apiAddr"`
	// DataDir holds the store, DataDir/sluice.db, unless Store names
	// another; and the member name and master key files.
	DataDir string `json:"dataDir"`
	// Store, when set, is the postgres:// URL of a PostgreSQL database
	// that several processes share (the password from the URL or
	// PGPASSWORD); empty keeps the store in dataDir/sluice.db.
	Store string `json:"store"`
	// LogFormat is text or json; the --log-format flag overrides it.
	LogFormat string `json:"logFormat"`
	// GroupSessionTimeout is the pipes' consumer group session timeout, a
	// Go duration (default 45s, Kafka's): how long a crashed process's
	// partitions wait before another member takes them over.
	GroupSessionTimeout string `json:"groupSessionTimeout"`
	// SleepAfter is how long a pipe may see no record before it sleeps
	// (leaves its group; one shared fetch per cluster watches for its
	// next record), a Go duration or "never" (default 1m).
	SleepAfter string `json:"sleepAfter"`
	// MemberName is this process's name in every pipe's consumer group
	// (static membership): each pipe's group instance id is the name and
	// the pipe's UUID. Default: SLUICE_MEMBER_NAME, else an id kept in
	// dataDir (see package member). Every process needs its own.
	MemberName string `json:"memberName"`
	// TLSCertFile and TLSKeyFile, both or neither, are the PEM
	// certificate (chain) and private key the API serves HTTPS with.
	TLSCertFile string `json:"tlsCertFile"`
	TLSKeyFile  string `json:"tlsKeyFile"`
	// AWSLambda lets the Lambda API take an AWS function ARN as
	// FunctionName: the mapping's target is that function, invoked in
	// AWS with this process's AWS credentials (--aws-lambda).
	AWSLambda bool `json:"awsLambda"`

	sessionTimeout time.Duration
	sleepAfter     time.Duration
}

var serveConfigFields = "apiAddr, dataDir, logFormat, groupSessionTimeout, sleepAfter, memberName, tlsCertFile, tlsKeyFile, awsLambda, store"

// sharedStoreSessionTimeout is the group session timeout of a server on a
// shared store when the config gives none.
const sharedStoreSessionTimeout = 10 * time.Second

// awsLambdaHelp is the --aws-lambda flag's help, for serve and dev.
const awsLambdaHelp = "let the Lambda API take an AWS function ARN as FunctionName, invoked in AWS with this process's AWS credentials (the standard chain)"

func (a *app) serveCmd() *cobra.Command {
	var configPath string
	var awsLambda bool
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the API and the pipes against an external Kafka",
		Long: `Run the API and the pipes, with the store in dataDir. Kafka is whatever
cluster each pipe names. The config file is YAML:

  apiAddr: 127.0.0.1:8080   # host:port of the API (default 127.0.0.1:8080)
  dataDir: /var/lib/sluice  # the store is dataDir/sluice.db (default ./.sluice)
  store: postgres://sluice@db:5432/sluice?sslmode=require
                            # or a PostgreSQL database that several processes share
                            # (password in the URL or PGPASSWORD; default: dataDir/sluice.db)
  logFormat: json           # text or json (default text; --log-format wins)
  groupSessionTimeout: 45s  # consumer group session timeout, 1s–30m (default 45s, 10s with store;
                            # brokers refuse below group.min.session.timeout.ms, 6s by default)
  sleepAfter: 1m            # a pipe that sees no record this long sleeps: it leaves its group and one
                            # shared fetch per cluster watches for its next record (default 1m; never)
  memberName: worker-0      # this process's name in the pipes' consumer groups (default:
                            # SLUICE_MEMBER_NAME, else an id kept in dataDir); unique per process
  awsLambda: true           # the Lambda API takes AWS function ARNs as FunctionName and invokes
                            # them in AWS with this process's credentials (default false; --aws-lambda)

Each process is a static member of every pipe's consumer group (Kafka's
group.instance.id, KIP-345), named memberName plus the pipe's UUID: a
restarted process takes its old place and partitions back at once, without
a rebalance, and a process that stops (even cleanly) keeps its partitions
for groupSessionTimeout, waiting for its restart, before Kafka hands them to
the other members. Two processes with the same memberName fence each other:
each pipe shows a PROBLEM naming the setting, and retries with backoff.
  tlsCertFile: /etc/sluice/tls.crt  # PEM certificate (chain) and key: with both,
  tlsKeyFile: /etc/sluice/tls.key   # the API serves HTTPS only (TLS 1.2 or later)

Every API request but GET /healthz and /readyz needs a token, created on
this machine with 'sluice tokens create NAME' (same --data-dir or
--config). Until one exists, serve starts but refuses every request.
Clients send 'Authorization: Bearer <token>'; the CLI sends --token or
SLUICE_TOKEN. The AWS CLI and SDKs cannot send a bearer token: on the
Lambda-compatible routes they send the token as their access key id
(AWS_ACCESS_KEY_ID=<token>, any AWS_SECRET_ACCESS_KEY). Sluice checks only
the access key id, not the SigV4 signature, which it cannot verify (it
keeps only the token's hash). A deleted token stops working within ` + api.DefaultTokenCacheTTL.String() + `.

Tokens are sent in clear text over http://: beyond this machine, set
tlsCertFile and tlsKeyFile (clients trust a private CA with --api-ca-cert
or SLUICE_API_CA_CERT), or put a TLS-terminating proxy in front.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(configPath)
			if err != nil {
				return err
			}
			if cfg.LogFormat != "" && !cmd.Flags().Changed("log-format") {
				if a.log, err = newLogger(a.env.Stderr, cfg.LogFormat, a.logLevel); err != nil {
					return err
				}
			}
			if awsLambda {
				cfg.AWSLambda = true
			}
			return a.runServe(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (without one, the defaults apply)")
	cmd.Flags().BoolVar(&awsLambda, "aws-lambda", false, awsLambdaHelp)
	return cmd
}

// loadServeConfig reads path (none: defaults only), strictly: a misspelt
// field is an error, not a silently ignored setting.
func loadServeConfig(path string) (serveConfig, error) {
	var cfg serveConfig
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %s", path, yamlMessage(err))
		}
		// UnmarshalStrict refuses unknown names but, like encoding/json,
		// matches known ones in any case: logformat would set logFormat.
		var keys map[string]any
		if err := yaml.Unmarshal(b, &keys); err == nil {
			for k := range keys {
				if !slices.Contains(strings.Split(serveConfigFields, ", "), k) {
					return cfg, fmt.Errorf("config %s: unknown field %q: names are case-sensitive; the fields are %s", path, k, serveConfigFields)
				}
			}
		}
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = defaultAPIAddr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultServeDataDir
	}
	if cfg.LogFormat == "" {
		cfg.LogFormat = "text"
	}
	var errs []error
	if _, err := checkHostPort("apiAddr:", cfg.APIAddr, defaultAPIAddr); err != nil {
		errs = append(errs, err)
	}
	if cfg.GroupSessionTimeout != "" {
		d, err := time.ParseDuration(cfg.GroupSessionTimeout)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("groupSessionTimeout: %q: use a duration such as 45s", cfg.GroupSessionTimeout))
		case d < time.Second || d > 30*time.Minute:
			// Brokers refuse sessions below their
			// group.min.session.timeout.ms, 6 s by default, and above
			// group.max.session.timeout.ms, 30 min by default. Below 6 s
			// is for clusters configured for it (and tests): a second is
			// the least that leaves a heartbeat every third of it room.
			errs = append(errs, fmt.Errorf("groupSessionTimeout: %s: use 1s–30m (Kafka brokers accept 6s–30m by default, set by group.min/max.session.timeout.ms)", d))
		default:
			cfg.sessionTimeout = d
		}
	}
	switch d, err := time.ParseDuration(cfg.SleepAfter); {
	case cfg.SleepAfter == "":
	case cfg.SleepAfter == "never":
		cfg.sleepAfter = -1
	case err != nil || d < time.Second:
		errs = append(errs, fmt.Errorf("sleepAfter: %q: use a duration of at least 1s, such as 1m, or never", cfg.SleepAfter))
	default:
		cfg.sleepAfter = d
	}
	if cfg.Store != "" && !isPostgres(cfg.Store) {
		errs = append(errs, fmt.Errorf("store: %q: use a postgres:// URL of a PostgreSQL database, or leave it out for dataDir/sluice.db", cfg.Store))
	}
	if cfg.Store != "" && cfg.GroupSessionTimeout == "" {
		// Several processes: a killed one's partitions should move to the
		// others within seconds, not after Kafka's 45 s.
		cfg.sessionTimeout = sharedStoreSessionTimeout
	}
	if cfg.MemberName != "" {
		if err := member.Validate(cfg.MemberName); err != nil {
			errs = append(errs, fmt.Errorf("memberName: %w", err))
		}
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("logFormat: %q: use text or json", cfg.LogFormat))
	}
	switch {
	case cfg.TLSCertFile != "" && cfg.TLSKeyFile == "":
		errs = append(errs, errors.New("tlsCertFile is set but tlsKeyFile is not: give both (HTTPS) or neither (HTTP)"))
	case cfg.TLSCertFile == "" && cfg.TLSKeyFile != "":
		errs = append(errs, errors.New("tlsKeyFile is set but tlsCertFile is not: give both (HTTPS) or neither (HTTP)"))
	}
	if len(errs) > 0 {
		where := "config"
		if path != "" {
			where = "config " + path
		}
		return cfg, fmt.Errorf("%s: %w", where, errors.Join(errs...))
	}
	return cfg, nil
}

var (
	yamlPrefixes = []string{"error unmarshaling JSON: ", "while decoding JSON: ", "error converting YAML to JSON: ", "json: "}
	typeErrRE    = regexp.MustCompile(`cannot unmarshal (\w+) into Go struct field \w+\.(\w+) of type (\w+)`)
)

// yamlMessage rewrites the YAML library's error, which speaks of JSON and
// Go types, in terms of the config file.
func yamlMessage(err error) string {
	msg := err.Error()
	for _, p := range yamlPrefixes {
		msg = strings.ReplaceAll(msg, p, "")
	}
	if strings.HasPrefix(msg, "unknown field ") {
		return msg + ": the fields are " + serveConfigFields
	}
	if m := typeErrRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s: got a YAML %s, want a %s", m[2], m[1], m[3])
	}
	if strings.Contains(msg, "cannot unmarshal") {
		return "the file must be a YAML mapping of " + serveConfigFields
	}
	return msg
}

func (a *app) runServe(ctx context.Context, cfg serveConfig) (err error) {
	if a.env.NewEngine == nil {
		return errors.New("this build of sluice has no engine to run pipes with")
	}
	ctx, stop := signalContext(ctx)
	defer stop()

	// The key pair first: a wrong path should fail before anything binds.
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("tlsCertFile %s, tlsKeyFile %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("dataDir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("apiAddr %s: %w%s", cfg.APIAddr, err, addrInUseHint(err, "apiAddr in the config"))
	}
	defer ln.Close() // after a failed start; runServer closes it otherwise
	if host, _, _ := net.SplitHostPort(cfg.APIAddr); !isLoopback(host) && tlsConfig == nil {
		a.log.Warn("the API listens beyond this machine over plain HTTP, so tokens cross the network readable; set tlsCertFile and tlsKeyFile, or put a TLS-terminating proxy in front", "addr", ln.Addr().String())
	}

	eng, st, closeStore, err := a.openEngine(ctx, cfg.DataDir, cfg.Store, EngineOptions{SessionTimeout: cfg.sessionTimeout, SleepAfter: cfg.sleepAfter},
		memberSetting{name: cfg.MemberName, setting: "memberName in the serve config"})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeStore(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	// Token lookups get an SQLite store handle of their own: the
	// engine's has a single connection, and authenticating a request
	// should not queue behind the engine's status writes. It closes after
	// runServer returned, when the API no longer serves. A PostgreSQL
	// store is a pool, shared.
	var tokens store.Tokens = st
	if st.sqlitePath != "" {
		db, err := sqlite.Open(ctx, st.sqlitePath)
		if err != nil {
			return fmt.Errorf("open the store for API tokens: %w", err)
		}
		defer func() {
			if cerr := db.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
		tokens = db
	}
	if all, err := tokens.ListTokens(ctx); err != nil {
		return err
	} else if len(all) == 0 {
		a.log.Warn("no API tokens exist, so every API request is refused: create one with 'sluice tokens create NAME' (with this --config or dataDir)", "dataDir", cfg.DataDir)
	}

	scheme := "http://"
	if tlsConfig != nil {
		scheme = "https://"
	}
	apiURL := scheme + ln.Addr().String()
	a.log.Info("serving the Sluice API", "url", apiURL, "store", st.where)
	fmt.Fprintf(a.env.Stdout, "Serving the Sluice API at %s (store %s).\n", apiURL, st.where)
	apiOpts := []api.Option{api.WithAuth(tokens, api.DefaultTokenCacheTTL)}
	if cfg.AWSLambda {
		apiOpts = append(apiOpts, api.WithAWSLambda())
	}
	return runServer(ctx, a.log, eng, ln, withTLS(tlsConfig), withAPIOptions(apiOpts...))
}
