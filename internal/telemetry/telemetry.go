// Package telemetry gives every Hourglass service the same operational surface:
// JSON logs through log/slog and an admin HTTP server with Prometheus
// /metrics, /healthz (the process is alive) and /readyz (it can do its work).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewLogger returns a JSON logger at the named level (debug, info, warn, error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ReadyFunc reports nil when the component can do its work, else why not.
type ReadyFunc func(ctx context.Context) error

// Admin is the admin HTTP server of a service.
type Admin struct {
	addr   string
	srv    *http.Server
	ln     net.Listener
	mux    *http.ServeMux
	mu     sync.Mutex
	checks map[string]ReadyFunc
}

// NewAdmin prepares the admin server of addr (":0" picks a port at Listen):
// /metrics from gatherer, /healthz, and /readyz from the registered checks.
// It does no I/O; Listen binds the address.
func NewAdmin(addr string, gatherer prometheus.Gatherer) *Admin {
	a := &Admin{addr: addr, mux: http.NewServeMux(), checks: map[string]ReadyFunc{}}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	a.mux.HandleFunc("GET /readyz", a.ready)
	a.srv = &http.Server{Handler: a.mux, ReadHeaderTimeout: 5 * time.Second}
	return a
}

// Listen binds the admin address (Serve does if it was not done).
func (a *Admin) Listen() error {
	if a.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("admin: listen %s: %w", a.addr, err)
	}
	a.ln = ln
	return nil
}

// Addr is the address the admin server listens on (after Listen).
func (a *Admin) Addr() string { return a.ln.Addr().String() }

// Handle adds a handler to the admin mux (e.g. a status page).
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// AddCheck registers a readiness check under name.
func (a *Admin) AddCheck(name string, f ReadyFunc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = f
}

func (a *Admin) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	a.mu.Lock()
	checks := make(map[string]ReadyFunc, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	var failed []string
	for name, f := range checks {
		if err := f(ctx); err != nil {
			failed = append(failed, name+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		http.Error(w, "not ready: "+strings.Join(failed, "; "), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Serve serves until ctx is done, then shuts down within 5 seconds.
func (a *Admin) Serve(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}
