package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hourglass-io/hourglass/internal/filewatch"
	"github.com/prometheus/client_golang/prometheus"
)

// Service is the intake HTTP server.
type Service struct {
	cfg    Config
	log    *slog.Logger
	keys   *Keys
	sink   Sink
	ln     net.Listener
	srv    *http.Server
	reload chan struct{}
	m      *metrics
}

// New validates cfg and loads the API keys; it opens nothing (Listen binds
// the intake address). The caller owns sink and closes it after Run
// returned: Run drains every request's sink write first.
func New(cfg Config, sink Sink, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingress: config: %w", err)
	}
	keys, err := LoadKeys(cfg.KeysFile)
	if err != nil {
		return nil, fmt.Errorf("ingress: %w", err)
	}
	s := &Service{cfg: cfg, log: log.With("component", "ingress"), keys: keys, sink: sink,
		reload: make(chan struct{}, 1), m: newMetrics(reg)}
	h := newLogsHandler(cfg, keys, sink, s.log, s.m)
	mux := http.NewServeMux()
	mux.Handle("/v1/logs", h)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// Listen binds the intake address (Run does if it was not done).
func (s *Service) Listen() error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("ingress: listen %s: %w", s.cfg.ListenAddr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the address the intake listens on (after Listen).
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Ready reports whether the sink can take data.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return s.sink.Ready(ctx)
}

// ReloadKeys asks for the API keys file to be reloaded (main calls it on SIGHUP).
func (s *Service) ReloadKeys() {
	select {
	case s.reload <- struct{}{}:
	default:
	}
}

// Run serves until ctx is done, then stops accepting and drains in-flight
// requests (each finishes its sink write and gets its answer).
func (s *Service) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go filewatch.Watch(watchCtx, s.cfg.KeysFile, s.cfg.KeysReload, s.reload, func() {
		if err := s.keys.Reload(s.cfg.KeysFile); err != nil {
			s.log.Error("API keys reload refused; the previous keys stay in force", "error", err)
			return
		}
		s.log.Info("API keys reloaded", "keys", s.keys.Len())
	})

	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("intake listening", "addr", s.Addr(), "keys", s.keys.Len())
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("ingress: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		serveErr = errors.Join(serveErr, fmt.Errorf("ingress: drain: %w", err))
	}
	s.log.Info("intake stopped")
	return serveErr
}
