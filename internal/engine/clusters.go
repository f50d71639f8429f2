package engine

import (
	"context"
	"errors"
	"fmt"
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
			return cluster.Cluster{}, &cluster.ValidationError{Fields: []cluster.FieldError{{Field: "passwordSecret", Reason: err.Error()}}}
		}
		check("passwordSecret", ref.Secret, "", ref.Key)
		if c.User == "" {
			check("passwordSecret", ref.Secret, "", "username")
		}
	}
	check("caCertSecret", c.CACertSecret, secret.TLSCA, "")
	check("clientCertSecret", c.ClientCertSecret, secret.TLSClient, "")
	if len(errs) > 0 {
		return cluster.Cluster{}, &cluster.ValidationError{Fields: errs}
	}
	bind, err := e.checkSecretBrokers(ctx, c)
	if err != nil {
		return cluster.Cluster{}, err
	}
	c, err = e.store.PutCluster(ctx, c)
	if err != nil {
		return cluster.Cluster{}, err
	}
	for _, s := range bind {
		if _, err := e.store.PutSecret(ctx, s); err != nil {
			return cluster.Cluster{}, fmt.Errorf("bind secret %q to the brokers of cluster %q: %w", s.Name, c.Name, err)
		}
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
		return fmt.Errorf("cluster %q is used by pipes %v: delete them first: %w", name, users, cluster.ErrInUse)
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
			return secret.Meta{}, fmt.Errorf("secret %q is a %s secret used by clusters %v; it cannot become %s: %w", s.Name, cur.Type, users, s.Type, secret.ErrInUse)
		}
	}
	if len(s.Brokers) == 0 && s.Type.Binds() {
		// A new value without brokers stays bound to where the clusters
		// using the secret already send it: replacing a password must not
		// leave it free for the next cluster to take anywhere.
		clusters, err := e.store.ListClusters(ctx)
		if err != nil {
			return secret.Meta{}, err
		}
		for _, c := range clusters {
			if slices.Contains(c.Secrets(), s.Name) {
				s.Brokers = append(s.Brokers, c.BootstrapServers...)
			}
		}
		s.Brokers = slices.Compact(slices.Sorted(slices.Values(s.Brokers)))
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
		return fmt.Errorf("secret %q is used by clusters %v: point them elsewhere first: %w", name, users, secret.ErrInUse)
	}
	return e.store.DeleteSecret(ctx, name)
}

// secretUsers names the clusters that refer to the secret.
// checkSecretBrokers refuses a cluster that would send one of its secrets
// to a broker the secret is not bound to (see secret.Bound), naming the
// secret and the servers. A secret with no brokers of its own is bound to
// the servers of the clusters that already use it (the stored version of
// this one included), so a store from before bindings existed cannot be
// re-pointed either; with no user yet, this cluster binds it. The secrets
// to store with their new binding are returned, for after the cluster is
// stored.
func (e *Engine) checkSecretBrokers(ctx context.Context, c cluster.Cluster) ([]store.SealedSecret, error) {
	var refs []struct{ field, name string }
	if c.PasswordSecret != "" {
		if ref, err := secret.ParseRef(c.PasswordSecret); err == nil {
			refs = append(refs, struct{ field, name string }{"passwordSecret", ref.Secret})
		}
	}
	if c.ClientCertSecret != "" {
		refs = append(refs, struct{ field, name string }{"clientCertSecret", c.ClientCertSecret})
	}
	if len(refs) == 0 {
		return nil, nil
	}
	clusters, err := e.store.ListClusters(ctx)
	if err != nil {
		return nil, err
	}
	var bind []store.SealedSecret
	var errs []cluster.FieldError
	for _, ref := range refs {
		s, err := e.store.GetSecret(ctx, ref.name)
		if err != nil {
			return nil, err
		}
		if !secret.Type(s.Type).Binds() {
			continue
		}
		allowed, from := s.Brokers, "its brokers"
		if len(allowed) == 0 {
			for _, other := range clusters {
				if slices.Contains(other.Secrets(), ref.name) {
					allowed = append(allowed, other.BootstrapServers...)
				}
			}
			from = "the brokers of the clusters that use it"
		}
		if len(allowed) == 0 {
			s.Brokers = slices.Clone(c.BootstrapServers) // the first use binds
			bind = append(bind, s)
			continue
		}
		if out := secret.Unbound(allowed, c.BootstrapServers); len(out) > 0 {
			errs = append(errs, cluster.FieldError{Field: ref.field, Reason: fmt.Sprintf(
				"secret %q may be sent only to %s (%s), and this cluster's bootstrap servers %s are not among them: "+
					"to send it there, give the secret's value again with those brokers (sluice secrets create %s %s … --brokers %s)",
				ref.name, from, strings.Join(allowed, ", "), strings.Join(out, ", "), s.Type, ref.name, strings.Join(c.BootstrapServers, ","))})
			continue
		}
		if len(s.Brokers) == 0 {
			s.Brokers = slices.Compact(slices.Sorted(slices.Values(allowed)))
			bind = append(bind, s)
		}
	}
	if len(errs) > 0 {
		return nil, &cluster.ValidationError{Fields: errs}
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
