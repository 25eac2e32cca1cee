package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/poolctl"
)

const poolHelp = `Operates the Spark Connect pool through HAProxy's admin socket (runtime API):

  list              each server: state, health check, requests in flight, sessions
                    pinned to it (stick table) and how many of them are active
  drain SERVER      no new sessions on SERVER; sessions pinned to it keep working.
                    Waits until it is idle (no request in flight, no session active
                    within --active-window) or --timeout, then reports; exit 1 on timeout
  ready SERVER      put SERVER back in rotation (after a drain or maintenance)

Maintenance of one server: drain it, stop it, do the work, start it, ready it
(docs/spark-connect-pool.md). Sessions still pinned to a stopped server are lost;
clients of internal/sparkconnect get ErrSessionLost and open a new session.`

// Bounds of the pool command's durations.
const (
	maxPoolTimeout = 24 * time.Hour
	minPoolPoll    = 10 * time.Millisecond
)

func runPool(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := &poolctl.Admin{}
	fs.StringVar(&admin.Socket, "admin-socket", os.Getenv("HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET"), "HAProxy admin socket of the pool: a unix socket path or tcp://host:port (default $HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET)")
	fs.StringVar(&admin.Backend, "backend", poolctl.DefaultBackend, "the pool's HAProxy backend")
	timeout := fs.Duration("timeout", 10*time.Minute, "drain: how long to wait for the server to be idle (max 24h)")
	poll := fs.Duration("poll", time.Second, "drain: how often to look")
	active := fs.Duration("active-window", time.Minute, "a session is active when its last request is this recent")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = flagenv.Usage(fs, "hourglass pool [flags] list | drain SERVER | ready SERVER", poolHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	rest := fs.Args()
	usage := func(msg string) error {
		fmt.Fprintln(stderr, msg)
		fs.Usage()
		return errUsage
	}
	switch {
	case len(rest) == 0:
		return usage("pool: a subcommand is needed")
	case admin.Socket == "":
		return usage("pool: --admin-socket is empty (or set HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET)")
	case *timeout <= 0 || *timeout > maxPoolTimeout:
		return usage(fmt.Sprintf("pool: --timeout %s is outside (0, %s]", *timeout, maxPoolTimeout))
	case *poll < minPoolPoll || *poll > *timeout:
		return usage(fmt.Sprintf("pool: --poll %s is outside [%s, --timeout]", *poll, minPoolPoll))
	case *active <= 0:
		return usage(fmt.Sprintf("pool: --active-window %s must be positive", *active))
	}
	switch cmd := rest[0]; cmd {
	case "list":
		if len(rest) != 1 {
			return usage("pool list: takes no arguments")
		}
		servers, err := admin.Servers(ctx, *active)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(servers)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVER\tADDRESS\tSTATE\tCHECK\tIN FLIGHT\tSESSIONS\tACTIVE\tREQUESTS")
		for _, s := range servers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.Name, s.Addr, s.Status, s.CheckStatus, s.InFlight, s.Sessions, s.Active, s.Total)
		}
		return tw.Flush()
	case "drain", "ready":
		if len(rest) != 2 {
			return usage(fmt.Sprintf("pool %s: takes one server name", cmd))
		}
		server := rest[1]
		if cmd == "ready" {
			if err := admin.SetState(ctx, server, "ready"); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is back in rotation\n", server)
			return nil
		}
		fmt.Fprintf(stderr, "draining %s: new sessions go elsewhere; waiting up to %s for it to be idle\n", server, *timeout)
		rep, err := admin.Drain(ctx, server, *timeout, *poll, *active)
		if *asJSON && rep.Server != "" {
			if jerr := json.NewEncoder(stdout).Encode(rep); jerr != nil {
				return jerr
			}
		} else if err == nil || errors.Is(err, poolctl.ErrDrainTimeout) {
			state := "idle"
			if !rep.Idle {
				state = "NOT idle"
			}
			fmt.Fprintf(stdout, "%s: %s after %s (in flight %d, active sessions %d, pinned sessions %d)\n",
				server, state, rep.Waited.Round(time.Millisecond), rep.InFlight, rep.Active, rep.Sessions)
		}
		return err
	default:
		return usage(fmt.Sprintf("pool: unknown subcommand %q", cmd))
	}
}
