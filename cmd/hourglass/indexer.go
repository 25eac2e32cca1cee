package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/services/indexer"
)

const indexerHelp = `Consumes the raw traffic records and indexes them into the Elasticsearch (or
OpenSearch) data stream logs-hourglass.traffic-<namespace> with ECS field names.
Documents are bulk-created with _id <topic>-<partition>-<offset>, so a replay
never indexes a record twice. Offsets are committed only after the bulk request
succeeded. The index template and the retention policy are applied by
'hourglass es setup' (or --setup here, for a single machine).
Serves /metrics, /healthz and /readyz on --listen-addr.`

func runIndexer(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := indexer.DefaultConfig()
	setup := indexer.DefaultSetup()
	fs := flag.NewFlagSet("indexer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", strings.Join(cfg.Brokers, ","), "Kafka bootstrap brokers, comma-separated")
	esf := addESFlags(fs, strings.Join(cfg.ESURLs, ","), "Elasticsearch basic auth user")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "consumer group")
	fs.StringVar(&cfg.Topic, "source-topic", cfg.Topic, "topic of the raw records")
	fs.StringVar(&cfg.DLQTopic, "dlq-topic", cfg.DLQTopic, "topic of documents the cluster refuses for good")
	fs.StringVar(&cfg.DataStream, "data-stream", cfg.DataStream, "data stream: logs-hourglass.traffic-<namespace>")
	fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "records per bulk request, at most")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", cfg.BatchWait, "how long a batch waits to fill")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout")
	fs.DurationVar(&cfg.MaxBackoff, "max-backoff", cfg.MaxBackoff, "longest wait between bulk retries")
	doSetup := fs.Bool("setup", false, "apply the index template and retention policy before indexing")
	fs.DurationVar(&setup.Retention, "retention", setup.Retention, "with --setup: delete raw-log indices older than this")
	fs.IntVar(&setup.Replicas, "replicas", setup.Replicas, "with --setup: replicas of the data stream's indices")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9105", "admin HTTP address (/metrics, /healthz, /readyz)")
	fs.Usage = flagenv.Usage(fs, "hourglass indexer [flags]", indexerHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	cfg.Brokers = splitList(*brokers)
	esCfg := esf.config()
	cfg.ESURLs, cfg.ESUsername, cfg.ESPassword = esCfg.URLs, esCfg.Username, esCfg.Password

	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	es, err := esclient.New(esCfg)
	if err != nil {
		return err
	}
	if *doSetup {
		setup.DataStream = cfg.DataStream
		res, err := indexer.Setup(ctx, es, setup)
		if err != nil {
			return err
		}
		if res.Warning != "" {
			log.Warn("setup: " + res.Warning)
		}
	}
	reg := telemetry.NewRegistry()
	ix, err := indexer.New(cfg, es, log, reg)
	if err != nil {
		return err
	}
	return adm.serveService(ctx, service{name: "indexer", reg: reg, log: log, check: "kafka+es", ready: ix.Ready, run: ix.Run,
		attrs: func() []any { return []any{"brokers", cfg.Brokers, "es", cfg.ESURLs, "data_stream", cfg.DataStream} }})
}
