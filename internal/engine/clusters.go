package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// errNoKeyring is returned for secret writes in a process started without
// a master key, which cannot seal them.
var errNoKeyring = errors.New("this process has no master key to seal secrets with: start it with SLUICE_MASTER_KEY or a key file")

// PutCluster creates or replaces a cluster after checking that the
// secrets it names exist and have the right type. Pipes using it restart
// with the new connection on the next reconcile, which this triggers.
func (e *Engine) PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error) {
	if err := c.Validate(); err != nil {
		return cluster.Cluster{}, err
	}
	var errs []cluster.FieldError
	check := func(field, name string, want secret.Type, key string) {
		if name == "" {
			return
		}
		s, err := e.store.GetSecret(ctx, name)
		switch {
		case errors.Is(err, secret.ErrNotFound):
			errs = append(errs, cluster.FieldError{Field: field, Reason: fmt.Sprintf("secret %q does not exist: create it with `sluice secrets create %s %s …`", name, want, name)})
		case err != nil:
			errs = append(errs, cluster.FieldError{Field: field, Reason: err.Error()})
		case want != "" && secret.Type(s.Type) != want:
			errs = append(errs, cluster.FieldError{Field: field, Reason: fmt.Sprintf("secret %q is of type %s; this needs a %s secret", name, s.Type, want)})
		case key != "" && !slices.Contains(s.Keys, key):
			errs = append(errs, cluster.FieldError{Field: field, Reason: fmt.Sprintf("secret %q has no key %q (it has %v)", name, key, s.Keys)})
		}
	}
	if c.PasswordSecret != "" {
		ref, err := secret.ParseRef(c.PasswordSecret)
		if err != nil {
			return cluster.Cluster{}, &cluster.ValidationError{Kind: "cluster", Fields: []cluster.FieldError{{Field: "passwordSecret", Reason: err.Error()}}}
		}
		check("passwordSecret", ref.Secret, "", ref.Key)
		if c.User == "" {
			check("passwordSecret", ref.Secret, "", "username")
		}
	}
	check("caCertSecret", c.CACertSecret, secret.TLSCA, "")
	check("clientCertSecret", c.ClientCertSecret, secret.TLSClient, "")
	if len(errs) > 0 {
		return cluster.Cluster{}, &cluster.ValidationError{Kind: "cluster", Fields: errs}
	}
	bind, err := e.checkSecretBrokers(ctx, c)
	if err != nil {
		return cluster.Cluster{}, err
	}
	c, err = e.store.PutCluster(ctx, c)
	if err != nil {
		return cluster.Cluster{}, err
	}
	if err := e.storeBindings(ctx, bind); err != nil {
		return cluster.Cluster{}, err
	}
	if c.InsecureSkipTLSVerify {
		e.log.Warn("cluster skips TLS certificate verification: anyone on the network path can pose as its brokers and read the credentials and records sent to them; give it the brokers' CA (--ca-cert-secret) instead",
			"cluster", c.Name, "setting", "insecureSkipTLSVerify")
	}
	e.poke()
	return c, nil
}

// GetCluster returns the named cluster.
func (e *Engine) GetCluster(ctx context.Context, name string) (cluster.Cluster, error) {
	return e.store.GetCluster(ctx, name)
}

// ListClusters returns every cluster.
func (e *Engine) ListClusters(ctx context.Context) ([]cluster.Cluster, error) {
	return e.store.ListClusters(ctx)
}

// DeleteCluster removes a cluster no pipe uses; while pipes do, it fails
// with cluster.ErrInUse naming them.
func (e *Engine) DeleteCluster(ctx context.Context, name string) error {
	if _, err := e.store.GetCluster(ctx, name); err != nil {
		return err
	}
	users, err := e.pipesWhere(ctx, func(p pipe.Pipe) bool { return p.Cluster == name })
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return inUse(cluster.ErrInUse, "cluster %q is used by pipes %v: delete them first, or point them at another cluster", name, users)
	}
	return e.store.DeleteCluster(ctx, name)
}

// RemovePipe removes a pipe from the store once its runner has stopped,
// with the cluster the Lambda-compatible API made for it, if any: the last
// step of a delete.
func (e *Engine) RemovePipe(ctx context.Context, name string) error {
	if err := e.store.DeletePipe(ctx, name); err != nil && !errors.Is(err, pipe.ErrNotFound) {
		return err
	}
	clusters, err := e.store.ListClusters(ctx)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if c.Owner == name {
			if err := e.store.DeleteCluster(ctx, c.Name); err != nil && !errors.Is(err, cluster.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// PutSecret validates, seals and stores a secret, and returns what may be
// shown of it: never its values. Clusters using it reconnect on the next
// reconcile, which this triggers.
func (e *Engine) PutSecret(ctx context.Context, s secret.Secret) (secret.Meta, error) {
	if err := s.Validate(); err != nil {
		return secret.Meta{}, err
	}
	if e.cfg.Keyring == nil {
		return secret.Meta{}, errNoKeyring
	}
	if cur, err := e.store.GetSecret(ctx, s.Name); err == nil && cur.Type != string(s.Type) {
		users, err := e.secretUsers(ctx, s.Name)
		if err != nil {
			return secret.Meta{}, err
		}
		if len(users) > 0 {
			return secret.Meta{}, inUse(secret.ErrInUse, "secret %q is a %s secret used by clusters %v; it cannot become %s", s.Name, cur.Type, users, s.Type)
		}
	}
	if len(s.Brokers) == 0 && s.Type.Binds() {
		// A new value without brokers stays bound to where the secret is
		// sent already: replacing a password must not leave it free for
		// the next cluster or target to take anywhere.
		sent, err := e.sentTo(ctx, s.Name)
		if err != nil {
			return secret.Meta{}, err
		}
		s.Brokers = sent
	}
	blob, err := e.cfg.Keyring.Seal(s)
	if err != nil {
		return secret.Meta{}, fmt.Errorf("seal secret %q: %w", s.Name, err)
	}
	stored, err := e.store.PutSecret(ctx, store.SealedSecret{Name: s.Name, Type: string(s.Type), Keys: s.Keys(), Sealed: blob, Brokers: s.Brokers})
	if err != nil {
		return secret.Meta{}, err
	}
	e.poke()
	return metaOf(stored), nil
}

func metaOf(s store.SealedSecret) secret.Meta {
	return secret.Meta{Name: s.Name, Type: secret.Type(s.Type), Keys: s.Keys, Brokers: s.Brokers, Created: s.Created, Updated: s.Updated}
}

// GetSecret returns a secret's metadata: name, type, key names, times.
func (e *Engine) GetSecret(ctx context.Context, name string) (secret.Meta, error) {
	s, err := e.store.GetSecret(ctx, name)
	if err != nil {
		return secret.Meta{}, err
	}
	return metaOf(s), nil
}

// ListSecrets returns every secret's metadata.
func (e *Engine) ListSecrets(ctx context.Context) ([]secret.Meta, error) {
	all, err := e.store.ListSecrets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]secret.Meta, len(all))
	for i, s := range all {
		out[i] = metaOf(s)
	}
	return out, nil
}

// DeleteSecret removes a secret no cluster uses; while clusters do, it
// fails with secret.ErrInUse naming them.
func (e *Engine) DeleteSecret(ctx context.Context, name string) error {
	if _, err := e.store.GetSecret(ctx, name); err != nil {
		return err
	}
	users, err := e.secretUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return inUse(secret.ErrInUse, "secret %q is used by clusters %v: point them elsewhere first", name, users)
	}
	return e.store.DeleteSecret(ctx, name)
}

// secretUsers names the clusters that refer to the secret.
// inUseError says what uses a resource, and matches sentinel with
// errors.Is without repeating its text.
type inUseError struct {
	msg      string
	sentinel error
}

func (e *inUseError) Error() string { return e.msg }
func (e *inUseError) Unwrap() error { return e.sentinel }

func inUse(sentinel error, format string, args ...any) error {
	return &inUseError{fmt.Sprintf(format, args...), sentinel}
}

// secretUse is one secret a cluster or a pipe's target sends somewhere.
type secretUse struct{ field, name string }

// sendProblem is a secret that may not go where a cluster or target would
// send it.
type sendProblem struct{ field, reason string }

// checkSends refuses sending the used secrets to servers (host:port) they
// are not bound to (see secret.Bound), naming the secret and the servers.
// A secret with no brokers of its own is bound to where it is sent today
// (sentTo: the clusters and targets that use it, the stored version of
// the one being written included), so a store from before bindings cannot
// be re-pointed either; sent nowhere yet, the first use binds it. The
// secrets to store with a new binding are returned, to write once the
// cluster or pipe is stored.
func (e *Engine) checkSends(ctx context.Context, uses []secretUse, servers []string) ([]store.SealedSecret, []sendProblem, error) {
	var bind []store.SealedSecret
	var probs []sendProblem
	for _, u := range uses {
		s, err := e.store.GetSecret(ctx, u.name)
		if err != nil {
			if errors.Is(err, secret.ErrNotFound) {
				continue // reported by the caller's existence check
			}
			return nil, nil, err
		}
		if !secret.Type(s.Type).Binds() {
			continue
		}
		allowed, from := s.Brokers, "the hosts it is bound to"
		if len(allowed) == 0 {
			if allowed, err = e.sentTo(ctx, u.name); err != nil {
				return nil, nil, err
			}
			from = "where the clusters and targets that use it send it"
		}
		if len(allowed) == 0 {
			s.Brokers = slices.Clone(servers) // the first use binds
			bind = append(bind, s)
			continue
		}
		if out := secret.Unbound(allowed, servers); len(out) > 0 {
			probs = append(probs, sendProblem{u.field, fmt.Sprintf(
				"secret %q may be sent only to %s (%s), and %s %s not among them: "+
					"to send it there, give the secret's value again with those in --brokers (sluice secrets create %s %s … --brokers %s)",
				u.name, from, strings.Join(allowed, ", "), strings.Join(out, ", "), isAre(len(out)), s.Type, u.name, strings.Join(servers, ","))})
			continue
		}
		if len(s.Brokers) == 0 {
			s.Brokers = allowed
			bind = append(bind, s)
		}
	}
	return bind, probs, nil
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// sentTo is where a secret is sent today: the bootstrap servers of the
// clusters and the target hosts of the pipes that use it, sorted.
func (e *Engine) sentTo(ctx context.Context, name string) ([]string, error) {
	clusters, err := e.store.ListClusters(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range clusters {
		if slices.Contains(c.Secrets(), name) {
			out = append(out, c.BootstrapServers...)
		}
	}
	pipes, err := e.store.ListPipes(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range pipes {
		for _, ref := range p.Target.SecretRefs() {
			if ref.Secret == name {
				if h := targetHost(ref.URL); h != "" {
					out = append(out, h)
				}
			}
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out))), nil
}

// targetHost is a target URL's host:port, with the scheme's port when the
// URL has none: what a secret sent to the target is bound to.
func targetHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() != "" {
		return strings.ToLower(u.Host)
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// checkSecretBrokers is checkSends for a cluster's password and client
// certificate secrets.
func (e *Engine) checkSecretBrokers(ctx context.Context, c cluster.Cluster) ([]store.SealedSecret, error) {
	var uses []secretUse
	if c.PasswordSecret != "" {
		if ref, err := secret.ParseRef(c.PasswordSecret); err == nil {
			uses = append(uses, secretUse{"passwordSecret", ref.Secret})
		}
	}
	if c.ClientCertSecret != "" {
		uses = append(uses, secretUse{"clientCertSecret", c.ClientCertSecret})
	}
	bind, probs, err := e.checkSends(ctx, uses, c.BootstrapServers)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		ve := &cluster.ValidationError{Kind: "cluster"}
		for _, p := range probs {
			ve.Fields = append(ve.Fields, cluster.FieldError{Field: p.field, Reason: p.reason})
		}
		return nil, ve
	}
	return bind, nil
}

// checkTargetSecrets checks the secrets a pipe's target uses: they exist,
// have the key, and may be sent to the target's host. It returns the
// secrets to store with a new binding once the pipe is stored.
func (e *Engine) checkTargetSecrets(ctx context.Context, spec pipe.Spec) ([]store.SealedSecret, error) {
	refs := spec.Target.SecretRefs()
	if len(refs) == 0 {
		return nil, nil
	}
	ve := &pipe.ValidationError{Kind: "pipe"}
	uses := map[string][]secretUse{} // by the host the value goes to
	for _, ref := range refs {
		s, err := e.store.GetSecret(ctx, ref.Secret)
		switch {
		case errors.Is(err, secret.ErrNotFound):
			ve.Fields = append(ve.Fields, pipe.FieldError{Field: ref.Field, Reason: fmt.Sprintf("secret %q does not exist: create it with `sluice secrets create generic %s --from-file %s=FILE`", ref.Secret, ref.Secret, ref.Key)})
			continue
		case err != nil:
			return nil, err
		case !slices.Contains(s.Keys, ref.Key):
			ve.Fields = append(ve.Fields, pipe.FieldError{Field: ref.Field, Reason: fmt.Sprintf("secret %q has no key %q (it has %v)", ref.Secret, ref.Key, s.Keys)})
			continue
		}
		if host := targetHost(ref.URL); host != "" && !slices.Contains(uses[host], secretUse{ref.Field, ref.Secret}) {
			uses[host] = append(uses[host], secretUse{ref.Field, ref.Secret})
		}
	}
	var bind []store.SealedSecret
	for _, host := range slices.Sorted(maps.Keys(uses)) {
		b, probs, err := e.checkSends(ctx, uses[host], []string{host})
		if err != nil {
			return nil, err
		}
		bind = append(bind, b...)
		for _, p := range probs {
			ve.Fields = append(ve.Fields, pipe.FieldError{Field: p.field, Reason: p.reason})
		}
	}
	if len(ve.Fields) > 0 {
		return nil, ve
	}
	return bind, nil
}

func (e *Engine) secretUsers(ctx context.Context, name string) ([]string, error) {
	clusters, err := e.store.ListClusters(ctx)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, c := range clusters {
		if slices.Contains(c.Secrets(), name) {
			users = append(users, c.Name)
		}
	}
	return users, nil
}

// openSecret is the unsealed data of a stored secret.
func (e *Engine) openSecret(s store.SealedSecret) (map[string][]byte, error) {
	if e.cfg.Keyring == nil {
		return nil, errNoKeyring
	}
	return e.cfg.Keyring.Open(s.Name, secret.Type(s.Type), s.Sealed)
}

var (
	_ cluster.Service = (*Engine)(nil)
	_ secret.Service  = (*Engine)(nil)
)
