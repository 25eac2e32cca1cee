package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// errUsage reports a usage error whose message was already printed: exit 2.
var errUsage = errors.New("usage")

// errHelp reports that --help was asked for and printed: the command exits 0.
var errHelp = errors.New("help printed")

// parseFlags parses args with the flag > HOURGLASS_* env > default rule. It
// returns errHelp after --help, errUsage (after printing why) for bad flags.
func parseFlags(ctx context.Context, fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := flagenv.ParseContext(ctx, fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	return nil
}

// onHangup calls fn on every SIGHUP until the returned stop is called.
func onHangup(fn func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// adminFlags are the operations flags of every long-running service: its
// admin address and its log level.
type adminFlags struct {
	addr, level *string
}

// addAdminFlags defines the admin address flag (listen-addr for every
// service; a service's own API, where it has one, is api-addr) and
// --log-level.
func addAdminFlags(fs *flag.FlagSet, name, defaultAddr, help string) adminFlags {
	return adminFlags{
		addr:  fs.String(name, defaultAddr, help),
		level: fs.String("log-level", "info", "log level: debug, info, warn, error"),
	}
}

func (f adminFlags) logger(w io.Writer) (*slog.Logger, error) {
	return telemetry.NewLogger(w, *f.level)
}

// service is what serveService needs to run one service beside its admin server.
type service struct {
	name     string                      // for the start log line
	reg      *prometheus.Registry        // served on /metrics
	log      *slog.Logger                // the service's logger
	check    string                      // name of its readiness check
	ready    telemetry.ReadyFunc         // /readyz
	listen   func() error                // binds the service's own address, if it has one (after the admin's)
	run      func(context.Context) error // the service itself
	handlers map[string]http.Handler     // extra admin routes (the lag monitor's status pages)
	attrs    func() []any                // logged at start, after listen
}

// serveService binds the admin server (/metrics, /healthz, /readyz and any
// extra handlers), then the service's own address, and runs the service
// beside the admin server until ctx is done or either stops: the service
// stops first, the admin server after it (runGroup).
func (f adminFlags) serveService(ctx context.Context, s service) error {
	admin := telemetry.NewAdmin(*f.addr, s.reg)
	admin.AddCheck(s.check, s.ready)
	for pattern, h := range s.handlers {
		admin.Handle(pattern, h)
	}
	if err := admin.Listen(); err != nil {
		return err
	}
	if s.listen != nil {
		if err := s.listen(); err != nil {
			return err
		}
	}
	var attrs []any
	if s.attrs != nil {
		attrs = s.attrs()
	}
	s.log.Info(s.name+" starting", append([]any{"admin", admin.Addr()}, attrs...)...)
	return runGroup(ctx, admin.Serve, s.run)
}
