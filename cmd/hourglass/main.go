// Command hourglass is the one binary of Hourglass: one subcommand per service
// or tool. Subcommands are listed explicitly in commands(); there is no hidden
// registration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand, in the order `hourglass --help` shows them.
// Later issues add the services (ingress, router, archiver, indexer, logpeek,
// lagmon, all) and tools (catalog, gen, jobs, es, tenants) here.
func commands() []command {
	return []command{
		{"all", "run every Go service in one process from one config (single-machine mode)", runAll},
		{"ingress", "serve POST /v1/logs: validate, authenticate and hand records durably to Kafka or Fluentd", runIngress},
		{"router", "fan raw records out to per-metric Kafka topics, per the catalog", runRouter},
		{"archiver", "archive raw records to HDFS (or a local directory), exactly once by offset ranges", runArchiver},
		{"indexer", "index raw records into the Elasticsearch raw-log data stream (ECS fields)", runIndexer},
		{"logpeek", "serve the developers' API over the raw-log archive", runLogpeek},
		{"query", "serve the query service: tenant-scoped queries over the archive on Spark Connect, sync and as jobs", runQuery},
		{"lagmon", "watch consumer lag, exact time lag, metric freshness and the SLA; alert and advise scaling", runLagmon},
		{"gen", "generate deterministic traffic: NDJSON to a file or posted to ingress", runGen},
		{"catalog", "validate the metric catalog and render Spark specs and topics", runCatalog},
		{"jobs", "supervise the PySpark metric jobs: start|stop|restart|status|batch [metric...]", runJobs},
		{"es", "set up Elasticsearch/OpenSearch: index templates, aliases, retention", runES},
		{"tenants", "provision tenants: filtered aliases, a read-only role, a Kibana space with their dashboard", runTenants},
		{"pool", "operate the Spark Connect pool over HAProxy's admin socket: list | drain SERVER | ready SERVER", runPool},
		{"version", "print the version and build information", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit code:
// 0 success, 1 failure, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				switch {
				case errors.Is(err, errHelp):
					return 0
				case errors.Is(err, errUsage):
					return 2
				}
				fmt.Fprintf(stderr, "hourglass %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "hourglass: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hourglass turns L7 traffic logs into per-customer metrics, archives every raw
log, and watches the one-hour freshness promise.

Usage:
  hourglass <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'hourglass <command> --help' for the flags of a command.
Every flag can also be set by its HOURGLASS_* environment variable.
`)
}
