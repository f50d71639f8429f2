package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/member"
	"github.com/sluice-dev/sluice/internal/secret"
)

// HTTP server limits. The API's requests are small and answered from the
// store, so these only bound slow or idle clients.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout is how long in-flight API requests get to finish
	// before their connections are closed.
	shutdownTimeout = 10 * time.Second
)

// signalContext is canceled by SIGINT or SIGTERM. After the first signal
// the handlers are removed, so a second Ctrl-C kills the process at once
// if a clean stop takes too long.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// serverOption is what `serve` adds to the API server `dev` runs: TLS and
// authentication.
type serverOption func(*serverOptions)

type serverOptions struct {
	tls *tls.Config  // nil: plain HTTP
	api []api.Option // after eng.API()
}

// withTLS serves HTTPS with c; nil keeps plain HTTP.
func withTLS(c *tls.Config) serverOption { return func(o *serverOptions) { o.tls = c } }

// withAPIOptions passes opts to api.NewHandler, e.g. api.WithAuth.
func withAPIOptions(opts ...api.Option) serverOption {
	return func(o *serverOptions) { o.api = append(o.api, opts...) }
}

// runServer runs eng and the API on ln until ctx is done or either of them
// fails, then stops them in order: the API first, so no request reaches an
// engine that is stopping; then the engine, waiting for Run to return after
// it has finished its in-flight batches and committed. The caller closes
// the store and the broker afterwards: the engine uses both until then.
func runServer(ctx context.Context, log *slog.Logger, eng Engine, ln net.Listener, opts ...serverOption) error {
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}

	// The engine's context is not a child of ctx: a signal must stop the
	// API before the engine, not both at once.
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(engCtx) }()

	srv := &http.Server{
		Handler:           api.NewHandler(eng, log, append(eng.API(), o.api...)...),
		TLSConfig:         o.tls,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srvDone := make(chan error, 1)
	go func() {
		if o.tls != nil {
			// The certificate is in TLSConfig, hence no file names.
			// ServeTLS, unlike Serve over a tls.NewListener, also offers
			// HTTP/2.
			srvDone <- srv.ServeTLS(ln, "", "")
			return
		}
		srvDone <- srv.Serve(ln)
	}()

	var err error
	select {
	case <-ctx.Done():
		log.Info("stopping: API first, then pipes (in-flight batches finish and commit); interrupt again to exit at once")
	case e := <-engDone:
		engDone = nil
		err = fmt.Errorf("engine stopped unexpectedly: %w", e)
		if e == nil {
			err = errors.New("engine stopped unexpectedly")
		}
	case e := <-srvDone:
		srvDone = nil
		err = fmt.Errorf("API server on %s: %w", ln.Addr(), e)
	}

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	if e := srv.Shutdown(shutCtx); e != nil {
		log.Warn("API requests still running at shutdown were cut off", "err", e)
		srv.Close()
	}
	cancel()
	if srvDone != nil {
		<-srvDone // http.ErrServerClosed, the expected result of Shutdown
	}

	stopEngine()
	if engDone != nil {
		if e := <-engDone; e != nil && !errors.Is(e, context.Canceled) {
			err = errors.Join(err, fmt.Errorf("engine: %w", e))
		}
	}
	log.Info("stopped API and pipes")
	return err
}

// isLoopback reports whether host only accepts connections from this
// machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHostPort checks a listen address given by flag or config field.
func checkHostPort(name, addr, example string) (host string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: use host:port, e.g. %s", name, addr, example)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%s %q: the port must be a number 0–65535", name, addr)
	}
	return host, nil
}

// memberSetting is a member name the user gave, and the setting that gave
// it; an empty name falls back to SLUICE_MEMBER_NAME, then to the data
// directory's own.
type memberSetting struct{ name, setting string }

// envMemberName names this process in the pipes' consumer groups when its
// config does not (e.g. a StatefulSet's pod name).
const envMemberName = "SLUICE_MEMBER_NAME"

// claimMember picks this process's member name (see package member); the
// claim is held until release, after the engine stopped.
func (a *app) claimMember(dataDir string, m memberSetting) (name, setting string, release func() error, err error) {
	if m.name == "" {
		if v := a.env.Getenv(envMemberName); v != "" {
			if err := member.Validate(v); err != nil {
				return "", "", nil, fmt.Errorf("%s %w", envMemberName, err)
			}
			m = memberSetting{name: v, setting: envMemberName}
		}
	}
	if m.name != "" {
		return m.name, m.setting, func() error { return nil }, nil
	}
	c, err := member.ClaimDir(dataDir)
	if err != nil {
		return "", "", nil, err
	}
	return c.Name, fmt.Sprintf("the member name kept in %s (set memberName in the serve config or %s to choose one)", c.Path, envMemberName), c.Close, nil
}

// openEngine opens the store (the PostgreSQL database dsn names, else
// dataDir/sluice.db) and builds the engine over it, for `dev` and `serve`.
// closeStore must run after the engine stopped.
func (a *app) openEngine(ctx context.Context, dataDir, dsn string, o EngineOptions, m memberSetting) (eng Engine, st *serverStore, closeStore func() error, err error) {
	var keySrc keySource
	if o.Keyring, keySrc, err = a.keyring(dataDir); err != nil {
		return nil, nil, nil, err
	}
	var release func() error
	if o.Member, o.MemberSetting, release, err = a.claimMember(dataDir, m); err != nil {
		return nil, nil, nil, err
	}
	st, err = a.openServerStore(ctx, dsn, dataDir, true)
	if err != nil {
		return nil, nil, nil, errors.Join(err, release())
	}
	if err := checkSealedUnder(ctx, st, o.Keyring, keySrc); err != nil {
		return nil, nil, nil, errors.Join(err, st.Close(), release())
	}
	o.Changes = st.changes
	eng, err = a.env.NewEngine(st, a.log, o)
	if err != nil {
		return nil, nil, nil, errors.Join(fmt.Errorf("start engine: %w", err), st.Close(), release())
	}
	a.log.Info("member of the pipes' consumer groups", "member", o.Member)
	return eng, st, func() error { return errors.Join(st.Close(), release()) }, nil
}

// keyring loads the master key that seals secrets: SLUICE_MASTER_KEY, else
// dataDir/master.key, created on first start.
func (a *app) keyring(dataDir string) (*secret.Keyring, keySource, error) {
	src := keySource{path: filepath.Join(dataDir, "master.key"), env: a.env.Getenv(secret.EnvMasterKey) != ""}
	key, created, err := secret.LoadMasterKey(a.env.Getenv(secret.EnvMasterKey), src.path)
	if err != nil {
		return nil, src, fmt.Errorf("master key: %w", err)
	}
	if created {
		// A warning where secrets matter; for dev's throwaway store, a
		// note: the first line a newcomer sees should not be alarming.
		log := a.log.Warn
		if a.devMode {
			log = a.log.Info
		}
		log("created a new master key for secrets; back it up: secrets sealed with it cannot be opened without it", "path", src.path)
	}
	kr, err := secret.NewKeyring(key)
	if err != nil {
		return nil, src, fmt.Errorf("master key: %w", err)
	}
	return kr, src, nil
}
