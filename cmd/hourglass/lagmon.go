package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
)

const lagmonHelp = `Watches the consumer groups of the pipeline (from the catalog) and any group
the --allow patterns match: offset lag and exact time lag per partition (from
the timestamp of the record at the committed offset), rates, drain and SLA
forecasts, a status per partition and group (OK, UNKNOWN, WARN, REWIND,
AT_RISK, UNCOMMITTED, STALL, STOP, BREACH, DATA_LOSS; rules in
lag-monitor/README.md), scaling advice,
and the freshness of every metric in Elasticsearch. Exports Prometheus metrics
on /metrics, the latest state on GET /v1/status, a status page on /status and
the OpenAPI 3 document of --listen-addr on GET /openapi.json, and sends alerts
to Alertmanager (v2 API) and JSON webhooks.

Settings come from defaults, then the --config YAML file, then HOURGLASS_*
variables, then flags. SIGHUP or a change of the config or catalog file
reloads them (everything except brokers and the listen address).`

func runLagmon(ctx context.Context, args []string, _, stderr io.Writer) error {
	def := lagmon.DefaultConfig()
	fs := flag.NewFlagSet("lagmon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "YAML config file (keys: see lag-monitor/README.md)")
	brokers := fs.String("brokers", strings.Join(def.Brokers, ","), "Kafka bootstrap brokers, comma-separated")
	catalogPath := fs.String("catalog", def.CatalogPath, "metric catalog file; empty: watch only --allow groups, no freshness")
	poll := fs.Duration("poll-interval", def.PollInterval, "how often offsets are read")
	window := fs.Duration("window", def.Window, "status and rate window")
	sla := fs.Duration("sla", def.SLA, "time-lag SLA of groups that are not metric jobs")
	horizon := fs.Duration("at-risk-horizon", def.Horizon, "AT_RISK when the SLA is forecast to be crossed within this")
	reset := fs.String("auto-offset-reset", def.AutoOffsetReset.String(), "where a group starts on a partition it never committed: earliest (its lag counts every record) or latest (lag unknown until it commits)")
	isolation := fs.String("isolation-level", def.IsolationLevel.String(), "how groups read transactional topics: read_committed (lag up to the last stable offset; open transactions reported apart) or read_uncommitted")
	openTxn := fs.Duration("open-transaction-after", def.OpenTxnAfter, "OPEN_TRANSACTION when a transaction has held back a read_committed group longer than this")
	allow := fs.String("allow", "", "regular expressions of more groups to watch, comma-separated")
	deny := fs.String("deny", "", "regular expressions of groups never to watch, comma-separated")
	esURL := fs.String("es-url", "", "Elasticsearch/OpenSearch URLs for freshness and job runs, comma-separated")
	amURL := fs.String("alertmanager-url", "", "Alertmanager base URLs, comma-separated")
	hookURL := fs.String("webhook-url", "", "generic JSON webhook URLs, comma-separated")
	externalURL := fs.String("external-url", "", "this monitor's URL, for links in alerts")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9107", "admin HTTP address (/metrics, /healthz, /readyz, /v1/status, /status, /openapi.json)")
	fs.Usage = flagenv.Usage(fs, "hourglass lagmon [flags]", lagmonHelp)
	if err := flagenv.ParseContext(ctx, fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true }) // given on the command line or by environment

	// load builds the configuration: defaults → file → environment/flags.
	// The monitor calls it again on every reload.
	load := func() (lagmon.Config, error) {
		cfg := lagmon.DefaultConfig()
		if *configFile != "" {
			var err error
			if cfg, err = lagmon.LoadFile(*configFile, cfg); err != nil {
				return cfg, err
			}
		}
		override := func(name string, apply func()) {
			if set[name] {
				apply()
			}
		}
		override("brokers", func() { cfg.Brokers = splitList(*brokers) })
		override("catalog", func() { cfg.CatalogPath = *catalogPath })
		override("poll-interval", func() { cfg.PollInterval = *poll })
		override("window", func() { cfg.Window = *window })
		override("sla", func() { cfg.SLA = *sla })
		override("at-risk-horizon", func() { cfg.Horizon = *horizon })
		var resetErr error
		override("auto-offset-reset", func() { resetErr = cfg.AutoOffsetReset.UnmarshalText([]byte(*reset)) })
		if resetErr != nil {
			return cfg, fmt.Errorf("--auto-offset-reset: %w", resetErr)
		}
		var isoErr error
		override("isolation-level", func() { isoErr = cfg.IsolationLevel.UnmarshalText([]byte(*isolation)) })
		if isoErr != nil {
			return cfg, fmt.Errorf("--isolation-level: %w", isoErr)
		}
		override("open-transaction-after", func() { cfg.OpenTxnAfter = *openTxn })
		override("allow", func() { cfg.Allow = splitList(*allow) })
		override("deny", func() { cfg.Deny = splitList(*deny) })
		override("es-url", func() { cfg.ESURLs = splitList(*esURL) })
		override("alertmanager-url", func() { cfg.AlertmanagerURLs = splitList(*amURL) })
		override("webhook-url", func() { cfg.WebhookURLs = splitList(*hookURL) })
		override("external-url", func() { cfg.ExternalURL = *externalURL })
		return cfg, nil
	}

	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	m, err := lagmon.New(load, log, reg)
	if err != nil {
		return err
	}
	defer onHangup(m.Reload)()
	h := m.Handler()
	handlers := map[string]http.Handler{}
	for _, p := range lagmon.Paths {
		handlers[p] = h
	}
	return adm.serveService(ctx, service{name: "lag monitor", reg: reg, log: log, check: "kafka", ready: m.Ready, run: m.Run,
		handlers: handlers, attrs: func() []any { return []any{"config", *configFile} }})
}
