package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// keySource says where the master key came from: SLUICE_MASTER_KEY, or
// the data directory's key file at path.
type keySource struct {
	env  bool
	path string
}

func (k keySource) String() string {
	if k.env {
		return secret.EnvMasterKey
	}
	return "the key file " + k.path
}

// checkSealedUnder refuses a master key that did not seal the stored
// secrets. Starting anyway would fail every pipe whose cluster needs a
// secret, and seal new secrets under a second key beside the old ones, so
// that no single key opens them all. The error names both sources where
// it can tell which of them holds the right key.
func checkSealedUnder(ctx context.Context, st store.Store, kr *secret.Keyring, src keySource) error {
	secrets, err := st.ListSecrets(ctx)
	if err != nil {
		return fmt.Errorf("master key: read the stored secrets: %w", err)
	}
	others := map[string][]string{} // key id → secret names
	for _, s := range secrets {
		if id := secret.BlobKeyID(s.Sealed); id != kr.ID() {
			others[id] = append(others[id], s.Name)
		}
	}
	if len(others) == 0 {
		return nil
	}
	ids := make([]string, 0, len(others))
	for id := range others {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		names := others[id]
		if len(names) > 5 {
			names = append(slices.Clip(names[:5]), fmt.Sprintf("and %d more", len(others[id])-5))
		}
		parts = append(parts, fmt.Sprintf("%s under key id %s", strings.Join(names, ", "), id))
	}
	fix := "start with the key that sealed them"
	if src.env {
		// The key file may hold the right key, which the variable hides.
		if key, err := secret.ReadKeyFile(src.path); err == nil {
			if id := secret.KeyID(key); others[id] != nil {
				fix = fmt.Sprintf("the key file %s (key id %s) sealed them: unset %s to use it", src.path, id, secret.EnvMasterKey)
			}
			clear(key)
		}
	} else {
		fix += fmt.Sprintf(" (set %s to it)", secret.EnvMasterKey)
	}
	return fmt.Errorf("master key: the key from %s (key id %s) did not seal the stored secrets %s. %s, or re-seal them under this key with 'sluice secrets rotate-key --old-key-file FILE' (FILE holding the old key)",
		src, kr.ID(), strings.Join(parts, "; "), capitalize(fix))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (a *app) secretsRotateKeyCmd() *cobra.Command {
	var o storeFlags
	var oldKeyFile, newKeyFile string
	cmd := &cobra.Command{
		Use:   "rotate-key [--data-dir DIR | --config FILE] [--old-key-file FILE] [--new-key-file FILE]",
		Short: "Re-seal every stored secret under a new master key",
		Long: `Re-seal every secret in the store under a new master key. Run it on the
server, with the server stopped: it opens the store directly (--data-dir, or
the dataDir of --config), and a running server keeps using the key it
started with.

The old key is the one the server uses (SLUICE_MASTER_KEY, else
dataDir/master.key), or the key in --old-key-file: the way back when the
secrets were sealed under a key the server no longer has. The new key is
read from --new-key-file, or made at random. Secrets already sealed under
the new key are left as they are, so a rotation cut short can be run again.

Without SLUICE_MASTER_KEY, the new key then replaces dataDir/master.key.
With it, set SLUICE_MASTER_KEY to the new key (--new-key-file is required
then) before starting the server. Back the new key up: the secrets open
with nothing else.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.openTokenStore(cmd, &o, false)
			if err != nil {
				return err
			}
			defer st.Close()
			dataDir := o.dataDir
			if o.config != "" {
				cfg, err := loadServeConfig(o.config)
				if err != nil {
					return err
				}
				dataDir = cfg.DataDir
			}
			src := keySource{path: filepath.Join(dataDir, "master.key"), env: a.env.Getenv(secret.EnvMasterKey) != ""}
			if src.env && newKeyFile == "" {
				return fmt.Errorf("--new-key-file is required with %s set: sluice cannot change the variable, so give the new key in a file and set %s to it afterwards", secret.EnvMasterKey, secret.EnvMasterKey)
			}
			var oldKey []byte
			if oldKeyFile != "" {
				oldKey, err = secret.ReadKeyFile(oldKeyFile)
				if err != nil {
					return fmt.Errorf("--old-key-file: %w", err)
				}
			} else {
				oldKey, _, err = secret.LoadMasterKey(a.env.Getenv(secret.EnvMasterKey), src.path)
				if err != nil {
					return fmt.Errorf("old master key: %w", err)
				}
			}
			var newKey []byte
			staged := "" // where a random new key waits while the secrets are re-sealed
			if newKeyFile != "" {
				if newKey, err = secret.ReadKeyFile(newKeyFile); err != nil {
					return fmt.Errorf("--new-key-file: %w", err)
				}
			} else {
				if newKey, err = secret.NewKey(); err != nil {
					return err
				}
				// On disk before any secret is sealed under it: a key
				// that only lived in memory would take the secrets with it.
				staged = src.path + ".new"
				if err := secret.WriteKeyFile(staged, newKey); err != nil {
					return err
				}
			}
			newID := secret.KeyID(newKey)
			n, err := rotate(cmd.Context(), st, oldKey, newKey)
			if err != nil {
				if staged != "" {
					return fmt.Errorf("%w; some secrets may be sealed under the new key already: finish with 'sluice secrets rotate-key --new-key-file %s'", err, staged)
				}
				return err
			}
			if src.env {
				fmt.Fprintf(a.env.Stdout, "Re-sealed %d secrets under key id %s. Set %s to the key in %s before starting the server.\n",
					n, newID, secret.EnvMasterKey, newKeyFile)
				return nil
			}
			if staged != "" {
				err = os.Rename(staged, src.path)
			} else {
				err = secret.WriteKeyFile(src.path, newKey)
			}
			if err != nil {
				return fmt.Errorf("the secrets are re-sealed under key id %s, but it could not replace %s (%w): move the key from %s there",
					newID, src.path, err, cmp.Or(staged, newKeyFile))
			}
			fmt.Fprintf(a.env.Stdout, "Re-sealed %d secrets under key id %s, now in %s. Back it up.\n", n, newID, src.path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultServeDataDir, "the server's data directory (dataDir), which holds sluice.db and master.key")
	f.StringVar(&o.config, "config", "", "the server's config file, to use its dataDir")
	f.StringVar(&oldKeyFile, "old-key-file", "", "a file with the key the secrets are sealed under (default: the server's key)")
	f.StringVar(&newKeyFile, "new-key-file", "", "a file with the new key, base64 of 32 bytes (default: a new random key)")
	return cmd
}

// rotate opens every secret with oldKey and seals it under newKey. All
// are opened before any is written, so a key that opens none of them
// changes nothing.
func rotate(ctx context.Context, st store.Store, oldKey, newKey []byte) (int, error) {
	oldKR, err := secret.NewKeyring(oldKey)
	if err != nil {
		return 0, fmt.Errorf("old master key: %w", err)
	}
	newKR, err := secret.NewKeyring(newKey)
	if err != nil {
		return 0, fmt.Errorf("new master key: %w", err)
	}
	all, err := st.ListSecrets(ctx)
	if err != nil {
		return 0, err
	}
	type opened struct {
		s    store.SealedSecret
		data map[string][]byte
	}
	var todo []opened
	var errs []error
	for _, s := range all {
		if secret.BlobKeyID(s.Sealed) == newKR.ID() {
			continue // re-sealed by an earlier run
		}
		data, err := oldKR.Open(s.Name, secret.Type(s.Type), s.Sealed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		todo = append(todo, opened{s, data})
	}
	defer func() {
		for _, o := range todo {
			for _, v := range o.data {
				clear(v)
			}
		}
	}()
	if len(errs) > 0 {
		return 0, fmt.Errorf("nothing re-sealed: %w", errors.Join(errs...))
	}
	for _, o := range todo {
		blob, err := newKR.Seal(secret.Secret{Name: o.s.Name, Type: secret.Type(o.s.Type), Data: o.data})
		if err != nil {
			return 0, err
		}
		o.s.Sealed = blob
		if _, err := st.PutSecret(ctx, o.s); err != nil {
			return 0, fmt.Errorf("re-seal secret %q: %w (run rotate-key again with the same keys to finish)", o.s.Name, err)
		}
	}
	return len(todo), nil
}
