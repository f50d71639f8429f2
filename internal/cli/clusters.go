package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/secret"
)

func (a *app) clustersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clusters",
		Short: "Register the Kafka clusters pipes read from, with their auth",
		Long: `A cluster is a named Kafka connection: bootstrap servers, auth mode, and the
secrets holding its credentials. Pipes name it with --cluster, so credentials
are rotated in one place. Changing a cluster or a secret it uses reconnects
every pipe on it.

Auth modes: none (plaintext), tls, plain (SASL/PLAIN), scram-sha-256,
scram-sha-512, iam (AWS MSK IAM, with the standard AWS credential chain) and
mtls. With --auth auto (the default) the strongest mode the credentials allow
is used, in the order mtls, scram-sha-512, iam (MSK only), tls, none; a failing
mode is never replaced by a weaker one.`,
	}
	cmd.AddCommand(a.clustersSetCmd(), a.clustersGetCmd(), a.clustersListCmd(), a.clustersDeleteCmd())
	return cmd
}

func (a *app) clustersSetCmd() *cobra.Command {
	var c cluster.Cluster
	var useTLS bool
	cmd := &cobra.Command{
		Use:   "set NAME --bootstrap-servers HOST:PORT[,...] [--auth MODE] [credentials]",
		Short: "Create or replace a cluster",
		Example: `  sluice clusters set local --bootstrap-servers 127.0.0.1:9092
  sluice secrets create generic msk-creds --literal password=…
  sluice clusters set msk --msk --bootstrap-servers b-1.example.kafka.us-east-1.amazonaws.com:9096 \
    --auth scram-sha-512 --user alice --password-secret msk-creds/password
  sluice clusters set msk-iam --msk --region us-east-1 --bootstrap-servers b-1.example:9098 --auth iam
  sluice clusters set onprem --bootstrap-servers kafka-1:9093 --auth mtls \
    --client-cert-secret kafka-client --ca-cert-secret kafka-ca`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Name = args[0]
			if cmd.Flags().Changed("tls") {
				c.TLS = &useTLS
			}
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			out, err := cl.PutCluster(cmd.Context(), c)
			if err != nil {
				return clusterFlagErrors(err)
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, out)
			}
			fmt.Fprintf(a.env.Stdout, "Cluster %q connects to %s with %s (%s).\n", out.Name, strings.Join(out.BootstrapServers, ","), out.EffectiveAuth(), out.AuthReason())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&c.BootstrapServers, "bootstrap-servers", nil, "brokers to start from, as host:port, comma-separated (required)")
	f.StringVar(&c.Auth, "auth", "", "auto (default), none, tls, plain, scram-sha-256, scram-sha-512, iam or mtls")
	f.BoolVar(&useTLS, "tls", true, "--tls=false runs SASL (plain, SCRAM) without TLS, for self-managed SASL_PLAINTEXT listeners")
	f.StringVar(&c.User, "user", "", "SASL user name (plain, SCRAM)")
	f.StringVar(&c.PasswordSecret, "password-secret", "", "SASL password as SECRET/KEY: a secret made with 'sluice secrets create' and its key")
	f.StringVar(&c.CACertSecret, "ca-cert-secret", "", "a tls-ca secret whose certificate verifies the brokers (default: the system roots)")
	f.StringVar(&c.ClientCertSecret, "client-cert-secret", "", "a tls-client secret with the client certificate chain and key, for mtls")
	f.BoolVar(&c.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "do not verify the brokers' certificates (tests only)")
	f.BoolVar(&c.AllowPlaintextCredentials, "allow-plaintext-credentials", false, "allow SASL/PLAIN with --tls=false, which sends the password in clear text (trusted networks only)")
	f.BoolVar(&c.MSK, "msk", false, "an Amazon MSK cluster: events say eventSource aws:kafka, and auto auth without secrets is iam")
	f.StringVar(&c.ARN, "arn", "", "the MSK cluster's ARN, arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID, as EventSourceArn names it")
	f.StringVar(&c.Region, "region", "", "AWS region for iam (default: from --arn, else the AWS configuration)")
	return cmd
}

// clusterFlags maps the cluster's JSON fields to the flags that set them.
var clusterFlags = map[string]string{
	"name": argName, "bootstrapServers": "--bootstrap-servers", "auth": "--auth", "tls": "--tls",
	"user": "--user", "passwordSecret": "--password-secret", "caCertSecret": "--ca-cert-secret",
	"clientCertSecret": "--client-cert-secret", "insecureSkipTLSVerify": "--insecure-skip-tls-verify",
	"msk": "--msk", "arn": "--arn", "region": "--region",
}

// clusterFlagErrors rewrites a cluster validation error in flag names.
func clusterFlagErrors(err error) error {
	var ve *cluster.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	lines := []string{"invalid cluster:"}
	for _, f := range ve.Fields {
		name := f.Field
		if fl, ok := clusterFlags[name]; ok {
			name = fl
		}
		lines = append(lines, "  "+name+": "+f.Reason)
	}
	return errors.New(strings.Join(lines, "\n"))
}

func (a *app) clustersGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a cluster (secret names only, never their values)",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			c, err := cl.GetCluster(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, c)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
			row("Name", c.Name)
			row("Bootstrap servers", strings.Join(c.BootstrapServers, ","))
			row("Auth", fmt.Sprintf("%s (%s)", c.EffectiveAuth(), c.AuthReason()))
			row("TLS", fmt.Sprint(c.UsesTLS()))
			row("User", orDash(c.User))
			row("Password secret", orDash(c.PasswordSecret))
			row("CA certificate secret", orDash(c.CACertSecret))
			row("Client certificate secret", orDash(c.ClientCertSecret))
			if c.InsecureSkipTLSVerify {
				row("TLS verification", "OFF (--insecure-skip-tls-verify)")
			}
			if c.MSK {
				row("MSK ARN", c.EventSourceARN())
				row("Region", orDash(c.Region))
			}
			row("Last modified", formatTime(c.LastModified))
			return w.Flush()
		},
	}
}

func (a *app) clustersListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List clusters",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			all, err := cl.ListClusters(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, struct {
					Clusters []cluster.Cluster `json:"clusters"`
				}{all})
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tAUTH\tMSK\tBOOTSTRAP SERVERS")
			for _, c := range all {
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", c.Name, c.EffectiveAuth(), c.MSK, strings.Join(c.BootstrapServers, ","))
			}
			return w.Flush()
		},
	}
}

func (a *app) clustersDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a cluster no pipe uses",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteCluster(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.printDeleted("cluster", args[0], "")
		},
	}
}

func (a *app) secretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Store credentials, encrypted at rest, for clusters to use",
		Long: `A secret is a named set of keys and values, sealed with AES-256-GCM under the
server's master key before it is stored. Its values are never shown again:
get and list print only names, types and key names.

Types: generic (any keys, e.g. a SASL password), tls-ca (key certificate: CA
PEM) and tls-client (keys certificate, privateKey and optional
privateKeyPassword: the client chain, client first and root last, and a PKCS#8
key, plain or encrypted with PBES1 or PBES2).`,
	}
	create := &cobra.Command{Use: "create", Short: "Create or replace a secret",
		Long: `Create or replace a secret. A generic or tls-client secret is sent only to
the brokers it is bound to: --brokers (host:port, host, or *.domain[:port],
comma-separated), or else where the clusters using it already send it, or
else the first cluster that uses it. A cluster on other brokers is refused
until the secret's value is given again with them in --brokers.`}
	create.PersistentFlags().StringSliceVar(&a.secretBrokers, "brokers", nil, "where the secret may be sent: host:port, host or *.domain[:port], comma-separated")
	create.AddCommand(a.secretsCreateGenericCmd(), a.secretsCreateTLSCACmd(), a.secretsCreateTLSClientCmd())
	cmd.AddCommand(create, a.secretsGetCmd(), a.secretsListCmd(), a.secretsDeleteCmd(), a.secretsRotateKeyCmd())
	return cmd
}

func (a *app) secretsCreateGenericCmd() *cobra.Command {
	var literals, files []string
	var fromJSON string
	cmd := &cobra.Command{
		Use:   "generic NAME (--literal KEY=VALUE | --from-file KEY=PATH | --from-json FILE)...",
		Short: "Create a secret of any keys",
		Example: `  sluice secrets create generic msk-creds --literal username=alice --from-file password=./password.txt
  sluice secrets create generic msk-creds --from-json creds.json   # {"username": "…", "password": "…"}`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := secret.Secret{Name: args[0], Type: secret.Generic, Data: map[string][]byte{}}
			if fromJSON != "" {
				if err := readJSONSecret(&s, fromJSON); err != nil {
					return err
				}
			}
			for _, l := range literals {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--literal %q: use KEY=VALUE", k)
				}
				s.Data[k] = []byte(v)
			}
			for _, fl := range files {
				k, path, ok := strings.Cut(fl, "=")
				if !ok || k == "" || path == "" {
					return fmt.Errorf("--from-file %q: use KEY=PATH", fl)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("--from-file %s: %w", k, err)
				}
				s.Data[k] = b
			}
			return a.putSecret(cmd, s)
		},
	}
	cmd.Flags().StringArrayVar(&literals, "literal", nil, "KEY=VALUE; repeat for more keys (note: the value is in your shell history; prefer --from-file)")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "KEY=PATH: the key's value is the file's content; repeat for more keys")
	cmd.Flags().StringVar(&fromJSON, "from-json", "", "a file holding a flat JSON object of string values, the reference's secret form")
	return cmd
}

func (a *app) secretsCreateTLSCACmd() *cobra.Command {
	var certPath string
	cmd := &cobra.Command{
		Use:     "tls-ca NAME --cert CA.pem",
		Short:   "Create a secret with the CA certificates that verify the brokers",
		Example: `  sluice secrets create tls-ca kafka-ca --cert ca.pem`,
		Args:    nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if certPath == "" {
				return errors.New("--cert is required: the PEM file of the CA certificate(s)")
			}
			b, err := os.ReadFile(certPath)
			if err != nil {
				return fmt.Errorf("--cert: %w", err)
			}
			return a.putSecret(cmd, secret.Secret{Name: args[0], Type: secret.TLSCA, Data: map[string][]byte{secret.KeyCertificate: b}})
		},
	}
	cmd.Flags().StringVar(&certPath, "cert", "", "PEM file of the CA certificate(s)")
	return cmd
}

func (a *app) secretsCreateTLSClientCmd() *cobra.Command {
	var certPath, keyPath, password, passwordFile, fromJSON string
	cmd := &cobra.Command{
		Use:   "tls-client NAME (--cert CHAIN.pem --key KEY.pem [--key-password-file FILE] | --from-json FILE)",
		Short: "Create a secret with a client certificate and key, for mTLS",
		Example: `  sluice secrets create tls-client kafka-client --cert client-chain.pem --key client.key
  sluice secrets create tls-client kafka-client --cert chain.pem --key encrypted.key --key-password-file pw.txt
  sluice secrets create tls-client kafka-client --from-json secret.json   # {"certificate", "privateKey", "privateKeyPassword"}`,
		Args: nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := secret.Secret{Name: args[0], Type: secret.TLSClient, Data: map[string][]byte{}}
			if fromJSON != "" {
				if err := readJSONSecret(&s, fromJSON); err != nil {
					return err
				}
			} else if certPath == "" || keyPath == "" {
				return errors.New("--cert and --key are required (or --from-json): the PEM chain, client first, and the PKCS#8 key")
			}
			for key, path := range map[string]string{secret.KeyCertificate: certPath, secret.KeyPrivateKey: keyPath, secret.KeyPrivateKeyPassword: passwordFile} {
				if path == "" {
					continue
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("reading %s: %w", key, err)
				}
				if key == secret.KeyPrivateKeyPassword {
					b = []byte(strings.TrimRight(string(b), "\r\n"))
				}
				s.Data[key] = b
			}
			if password != "" {
				s.Data[secret.KeyPrivateKeyPassword] = []byte(password)
			}
			return a.putSecret(cmd, s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&certPath, "cert", "", "PEM file of the chain: the client certificate first, then intermediates, the root last")
	f.StringVar(&keyPath, "key", "", "PEM file of the PKCS#8 private key, plain or encrypted (PBES1 or PBES2)")
	f.StringVar(&password, "key-password", "", "password of an encrypted key (it lands in your shell history; prefer --key-password-file)")
	f.StringVar(&passwordFile, "key-password-file", "", "file holding the password of an encrypted key")
	f.StringVar(&fromJSON, "from-json", "", "a file holding the reference's JSON form: certificate, privateKey, privateKeyPassword")
	return cmd
}

// readJSONSecret fills s from a file in the reference's flat JSON form.
func readJSONSecret(s *secret.Secret, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--from-json: %w", err)
	}
	parsed, err := secret.FromJSON(s.Name, s.Type, b)
	if err != nil {
		return fmt.Errorf("--from-json %s: %w", path, err)
	}
	for k, v := range parsed.Data {
		s.Data[k] = v
	}
	return nil
}

func (a *app) putSecret(cmd *cobra.Command, s secret.Secret) error {
	cl, err := a.client(cmd)
	if err != nil {
		return err
	}
	s.Brokers = a.secretBrokers
	m, err := cl.PutSecret(cmd.Context(), s)
	if err != nil {
		return err
	}
	if a.output == outputJSON {
		return writeJSON(a.env.Stdout, m)
	}
	fmt.Fprintf(a.env.Stdout, "Secret %q (%s) stored with keys %s; %s.\n", m.Name, m.Type, strings.Join(m.Keys, ", "), brokersSentence(m))
	return nil
}

// brokersShort is a secret's brokers for a table: the list, "-" for a
// tls-ca secret (bound to nothing), or "first cluster" while unbound.
func brokersShort(m secret.Meta) string {
	switch {
	case !m.Type.Binds():
		return "-"
	case len(m.Brokers) == 0:
		return "(the first cluster to use it)"
	}
	return strings.Join(m.Brokers, ",")
}

func brokersSentence(m secret.Meta) string {
	switch {
	case !m.Type.Binds():
		return "a CA certificate goes to no broker"
	case len(m.Brokers) == 0:
		return "it may be sent to the brokers of the first cluster that uses it"
	}
	return "it may be sent only to " + strings.Join(m.Brokers, ", ")
}

func (a *app) secretsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a secret's type and key names (never its values)",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			m, err := cl.GetSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, m)
			}
			fmt.Fprintf(a.env.Stdout, "Name:           %s\nType:           %s\nKeys:           %s\nBrokers:        %s\nCreated:        %s\nLast modified:  %s\n",
				m.Name, m.Type, strings.Join(m.Keys, ", "), brokersShort(m), formatTime(m.Created), formatTime(m.Updated))
			return nil
		},
	}
}

func (a *app) secretsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List secrets (names, types and keys only)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			all, err := cl.ListSecrets(cmd.Context())
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, struct {
					Secrets []secret.Meta `json:"secrets"`
				}{all})
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tKEYS\tBROKERS\tLAST MODIFIED")
			for _, m := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Type, strings.Join(m.Keys, ","), brokersShort(m), formatTime(m.Updated))
			}
			return w.Flush()
		},
	}
}

func (a *app) secretsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a secret no cluster uses",
		Args:  nameArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteSecret(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.printDeleted("secret", args[0], "")
		},
	}
}
