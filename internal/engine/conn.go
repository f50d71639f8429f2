package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/certs"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/kafkaauth"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/target"
)

// connection is how a pipe reaches its Kafka cluster.
type connection struct {
	brokers []string
	opts    []kgo.Opt // auth and TLS, added to every client of the pipe
	source  event.Source
	auth    string // the effective auth mode, for logs
	// principal is the Kafka ACL principal Sluice authenticates as, when
	// known, for the fix an authorization problem names.
	principal string
}

// clientOpts are the options of a client of this connection: its seed
// brokers, extra, then its auth and TLS.
func (c connection) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, extra...), c.opts...)
}

// connections resolves pipes' clusters from one read of the store, so a
// reconcile reads clusters and secrets once, not once per pipe.
type connections struct {
	e        *Engine
	clusters map[string]cluster.Cluster
	secrets  map[string]store.SealedSecret
}

func (e *Engine) loadConnections(ctx context.Context) (*connections, error) {
	cl, err := e.store.ListClusters(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	sec, err := e.store.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	cs := &connections{e: e, clusters: make(map[string]cluster.Cluster, len(cl)), secrets: make(map[string]store.SealedSecret, len(sec))}
	for _, c := range cl {
		cs.clusters[c.Name] = c
	}
	for _, s := range sec {
		cs.secrets[s.Name] = s
	}
	return cs, nil
}

// key identifies everything a pipe's connection is made of, without
// opening a secret: a runner whose key changed (the cluster was edited, a
// secret it uses was replaced) restarts, and lag clients are shared by
// pipes with the same key.
func (cs *connections) key(spec pipe.Spec) string {
	if spec.Cluster == "" {
		return "brokers:" + clusterKey(spec.BootstrapServers)
	}
	c, ok := cs.clusters[spec.Cluster]
	if !ok {
		return "cluster:" + spec.Cluster + "@missing"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster:%s@%d", c.Name, c.LastModified.UnixNano())
	for _, name := range c.Secrets() {
		fmt.Fprintf(&b, ",%s@%d", name, cs.secrets[name].Updated.UnixNano())
	}
	return b.String()
}

// targetEnv is what targets may use during one reconcile: the secrets
// and functions as this reconcile read them.
func (cs *connections) targetEnv(funcs []pipe.Function) target.Env {
	byName := make(map[string]pipe.Function, len(funcs))
	for _, f := range funcs {
		byName[f.Name] = f
	}
	return target.Env{
		HTTPClient: cs.e.cfg.HTTPClient,
		Secret:     cs.secretValue,
		SecretVersion: func(name string) string {
			s, ok := cs.secrets[name]
			if !ok {
				return "missing"
			}
			return strconv.FormatInt(s.Updated.UnixNano(), 10)
		},
		FunctionURL: func(name string) (string, error) {
			f, ok := byName[name]
			switch {
			case ok && f.Handler != nil:
				return "", fmt.Errorf("Function %q is a hosted handler, not an HTTP endpoint: target it with target.function.name (`--function %s` does).", name, name)
			case ok && f.URL != "":
				return f.URL, nil
			}
			return "", fmt.Errorf("Function %q is not registered: register it with `sluice functions set %s --url URL`.", name, name)
		},
		Hosted: cs.e.hosts.hostedEnv(byName),
	}
}

// targetKey identifies what a pipe's target is made of besides its spec
// (see target.Kind.Key): a runner whose key changed restarts.
func (cs *connections) targetKey(spec pipe.Spec, env target.Env) string {
	key := target.KeyOf(spec, env)
	if e := spec.Enrichment; e != nil && e.Function != "" {
		// An enrichment that names a function follows its URL too.
		u, err := env.FunctionURL(e.Function)
		if err != nil {
			u = "(unresolved)"
		}
		key += ",enrichment:" + u
	}
	return key
}

// secretValue opens the key of a stored secret a target names. Its error
// is what the pipe's LastProcessingResult shows, so it names the fix.
func (cs *connections) secretValue(ref pipe.SecretRef) ([]byte, error) {
	s, ok := cs.secrets[ref.Secret]
	if !ok {
		return nil, fmt.Errorf("Secret %q of %s does not exist: create it with `sluice secrets create generic %s --from-file %s=FILE`.", ref.Secret, ref.Field, ref.Secret, ref.Key)
	}
	data, err := cs.e.openSecret(s)
	if err != nil {
		return nil, fmt.Errorf("Secret %q of %s cannot be opened: %w", ref.Secret, ref.Field, err)
	}
	v, ok := data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("Secret %q of %s has no key %q: add it with `sluice secrets create`.", ref.Secret, ref.Field, ref.Key)
	}
	return v, nil
}

// kafkaFor is how a pipe's kafka:// failure destination reaches its
// cluster: "" is the pipe's own connection, any other name a registered
// cluster resolved as a pipe on it would be.
func (cs *connections) kafkaFor(ctx context.Context, spec pipe.Spec, own connection) func(string) ([]string, []kgo.Opt, error) {
	return func(name string) ([]string, []kgo.Opt, error) {
		if name == "" {
			return own.brokers, own.opts, nil
		}
		c, err := cs.resolve(ctx, pipe.Spec{Cluster: name})
		if err != nil {
			return nil, nil, err
		}
		return c.brokers, c.opts, nil
	}
}

// resolve builds a pipe's connection. Its error is what the pipe's
// LastProcessingResult shows after "PROBLEM: ", so it names the fix.
func (cs *connections) resolve(ctx context.Context, spec pipe.Spec) (connection, error) {
	if spec.Cluster == "" {
		return connection{
			brokers: spec.BootstrapServers,
			source:  event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: spec.BootstrapServers},
			auth:    cluster.AuthNone,
		}, nil
	}
	c, ok := cs.clusters[spec.Cluster]
	if !ok {
		return connection{}, fmt.Errorf("Cluster %q is not registered: register it with `sluice clusters set %s --bootstrap-servers HOST:PORT`.", spec.Cluster, spec.Cluster)
	}
	cfg, err := cs.authConfig(c)
	if err != nil {
		return connection{}, err
	}
	if err := cfg.Validate(); err != nil {
		return connection{}, fmt.Errorf("Cluster %q cannot be used: %w", c.Name, err)
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts, err := cfg.Opts(octx)
	if err != nil {
		return connection{}, fmt.Errorf("Cluster %q cannot be used: %w", c.Name, err)
	}
	src := event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: c.BootstrapServers}
	if c.MSK {
		src.EventSource, src.EventSourceARN = event.SourceMSK, c.EventSourceARN()
	}
	principal := ""
	switch {
	case cfg.User != "" && cfg.Mode != kafkaauth.MTLS:
		principal = "User:" + cfg.User
	case cfg.ClientCert != nil && cfg.ClientCert.Leaf != nil:
		principal = "User:" + cfg.ClientCert.Leaf.Subject.String()
	}
	return connection{brokers: c.BootstrapServers, opts: opts, source: src, auth: c.EffectiveAuth(), principal: principal}, nil
}

// authConfig opens the cluster's secrets into the material the Kafka
// client needs.
func (cs *connections) authConfig(c cluster.Cluster) (kafkaauth.Config, error) {
	cfg := kafkaauth.Config{
		Mode:               kafkaauth.Mode(c.EffectiveAuth()),
		TLS:                c.UsesTLS(),
		User:               c.User,
		InsecureSkipVerify: c.InsecureSkipTLSVerify,
		Region:             c.Region,
	}
	if cfg.Region == "" && c.ARN != "" {
		cfg.Region, _, _ = cluster.ParseARN(c.ARN)
	}
	open := func(name string) (map[string][]byte, error) {
		s, ok := cs.secrets[name]
		if !ok {
			return nil, fmt.Errorf("Secret %q of cluster %q does not exist: create it with `sluice secrets create`.", name, c.Name)
		}
		data, err := cs.e.openSecret(s)
		if err != nil {
			return nil, fmt.Errorf("Secret %q of cluster %q cannot be opened: %w", name, c.Name, err)
		}
		return data, nil
	}
	if c.PasswordSecret != "" {
		ref, err := secret.ParseRef(c.PasswordSecret)
		if err != nil {
			return cfg, err
		}
		data, err := open(ref.Secret)
		if err != nil {
			return cfg, err
		}
		pw, ok := data[ref.Key]
		if !ok {
			return cfg, fmt.Errorf("Secret %q has no key %q for cluster %q's password.", ref.Secret, ref.Key, c.Name)
		}
		cfg.Password = string(pw)
		if cfg.User == "" {
			// The reference's SASL secrets hold the user name too.
			cfg.User = string(data["username"])
		}
	}
	if c.CACertSecret != "" {
		data, err := open(c.CACertSecret)
		if err != nil {
			return cfg, err
		}
		pool, err := certs.Pool(data["certificate"])
		if err != nil {
			return cfg, invalidCert(c.CACertSecret, err)
		}
		cfg.RootCAs = pool
	}
	if c.ClientCertSecret != "" {
		data, err := open(c.ClientCertSecret)
		if err != nil {
			return cfg, err
		}
		cert, err := certs.ClientCertificate(data["certificate"], data["privateKey"], data["privateKeyPassword"])
		if err != nil {
			return cfg, invalidCert(c.ClientCertSecret, err)
		}
		cfg.ClientCert = &cert
	}
	return cfg, nil
}

// invalidCert phrases a certificate or key that cannot be used as the
// reference does.
func invalidCert(name string, err error) error {
	return fmt.Errorf("Provided certificate or private key is invalid: secret %q: %w", name, err)
}
