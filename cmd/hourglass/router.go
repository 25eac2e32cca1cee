package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/router"
)

const routerHelp = `Consumes the raw traffic records and produces each metric's projected records
to hourglass.metric.<metric>, per the catalog. Invalid records, and records whose
event time is more than --max-future after (or --max-past before) their Kafka
timestamp, go to the DLQ with a reason header. Offsets are committed only after every produced record was
acknowledged (at-least-once); on SIGTERM the batch in flight is finished
(within --drain-timeout), never abandoned half-produced. SIGHUP or a change of the catalog file reloads the
catalog; an invalid catalog is refused and the previous one keeps routing.
Serves /metrics, /healthz and /readyz on --listen-addr.`

func runRouter(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := router.DefaultConfig()
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", strings.Join(cfg.Brokers, ","), "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&cfg.CatalogPath, "catalog", cfg.CatalogPath, "metric catalog file")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "consumer group")
	fs.StringVar(&cfg.SourceTopic, "source-topic", cfg.SourceTopic, "topic of the raw records")
	fs.StringVar(&cfg.DLQTopic, "dlq-topic", cfg.DLQTopic, "topic of rejected records")
	fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "records per batch, at most")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", cfg.BatchWait, "how long a batch waits to fill")
	fs.DurationVar(&cfg.ReloadInterval, "reload-interval", cfg.ReloadInterval, "how often the catalog file is checked for changes")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout: how soon a dead router's partitions move")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "on shutdown, how long the batch in flight may take to be produced and committed")
	fs.DurationVar(&cfg.TimeBounds.MaxFuture, "max-future", cfg.TimeBounds.MaxFuture, "reject (DLQ, out_of_range) records whose event time is further than this after their Kafka timestamp; keep it below the catalog's smallest allowed lateness")
	fs.DurationVar(&cfg.TimeBounds.MaxPast, "max-past", cfg.TimeBounds.MaxPast, "reject (DLQ, out_of_range) records whose event time is further than this before their Kafka timestamp")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9102", "admin HTTP address (/metrics, /healthz, /readyz)")
	fs.Usage = flagenv.Usage(fs, "hourglass router [flags]", routerHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	cfg.Brokers = splitList(*brokers)

	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	r, err := router.New(cfg, log, reg)
	if err != nil {
		return err
	}
	defer onHangup(r.Reload)()
	return adm.serveService(ctx, service{name: "router", reg: reg, log: log, check: "kafka", ready: r.Ready, run: r.Run,
		attrs: func() []any { return []any{"brokers", cfg.Brokers, "catalog", cfg.CatalogPath} }})
}

// splitList splits a comma-separated flag value, dropping empty elements.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
