package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/sparkconnect"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/query"
)

const queryHelp = `Serves the query service: structured, tenant-scoped queries over the raw-log
archive, compiled by Go to Spark SQL and run on the Spark Connect pool.
  POST /v1/query?wait=10s          synchronous: 200 with rows, or 202 + Location
  POST /v1/jobs                    submit a job (Idempotency-Key honoured)
  GET  /v1/jobs[?limit=&before=]   the caller's jobs
  GET  /v1/jobs/{id}               status, timings, rows, error
  GET  /v1/jobs/{id}/results       NDJSON pages, {"_meta":{...,"next_cursor"}} last
  POST /v1/jobs/{id}/cancel        interrupts the Spark operation
  GET  /v1/jobs/{id}/events        server-sent events (also on Kafka, keyed by job id)
  GET  /openapi.json               the OpenAPI 3 document
Requests carry Authorization: Bearer <token> (the tokens file format is shared
with logpeek; SIGHUP reloads it). Job records and results live in the archive's
file system under _query/. Serves /metrics, /healthz and /readyz on --listen-addr.`

func runQuery(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := query.DefaultConfig()
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("archive-root", "archive", "archive root: hdfs://namenode:port/path or a local directory (Spark Connect servers must read the same root)")
	user := fs.String("hdfs-user", "hourglass", "HDFS user the archive is read and job records written as")
	tokens := fs.String("tokens", "query-tokens.yaml", "tokens file (SHA-256 digests of bearer tokens, roles, tenants)")
	pool := fs.String("spark-connect-pool", sparkconnect.DefaultConfig().URL, "Spark Connect pool, sc://host:port")
	brokers := fs.String("brokers", "", "Kafka brokers for job events, comma-separated (empty: events on SSE only)")
	topic := fs.String("events-topic", topology.QueryEventsTopic, "Kafka topic of job events")
	fs.StringVar(&cfg.Listen, "api-addr", cfg.Listen, "API address")
	fs.DurationVar(&cfg.SyncDefault, "sync-default", cfg.SyncDefault, "wait of POST /v1/query without ?wait")
	fs.DurationVar(&cfg.SyncMax, "sync-max", cfg.SyncMax, "largest ?wait")
	fs.IntVar(&cfg.MaxJobsPerTenant, "max-jobs-per-tenant", cfg.MaxJobsPerTenant, "queued+running jobs of one tenant (more get 429)")
	fs.IntVar(&cfg.MaxRunningPerTenant, "max-running-per-tenant", cfg.MaxRunningPerTenant, "running jobs of one tenant")
	fs.IntVar(&cfg.MaxJobs, "max-jobs", cfg.MaxJobs, "queued+running jobs of all tenants")
	fs.IntVar(&cfg.MaxRunning, "max-running", cfg.MaxRunning, "jobs running on Spark at once")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", cfg.JobTimeout, "longest run of one job")
	fs.DurationVar(&cfg.ResultTTL, "result-ttl", cfg.ResultTTL, "how long results are kept")
	fs.DurationVar(&cfg.JobTTL, "job-ttl", cfg.JobTTL, "how long job records are kept")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "wait for running jobs at shutdown")
	fs.DurationVar(&cfg.Limits.MaxSpan, "max-span", cfg.Limits.MaxSpan, "longest to-from of a query")
	fs.IntVar(&cfg.Limits.MaxLimit, "max-limit", cfg.Limits.MaxLimit, "largest row limit of a query")
	fs.IntVar(&cfg.InlineRows, "inline-rows", cfg.InlineRows, "largest limit whose rows the service collects (and of a synchronous query); larger jobs have Spark write their rows to the archive's file system")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9108", "admin HTTP address (/metrics, /healthz, /readyz)")
	fs.Usage = flagenv.Usage(fs, "hourglass query [flags]", queryHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	tok, err := auth.Load(*tokens)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	fsys, err := archive.Open(*root, *user)
	if err != nil {
		return err
	}
	defer fsys.Close()
	scfg := sparkconnect.DefaultConfig()
	scfg.URL = *pool
	scfg.MaxRows = cfg.InlineRows
	client, err := sparkconnect.New(scfg, log)
	if err != nil {
		return err
	}
	engine, err := query.NewSparkEngine(client, fsys, *root, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = engine.Close(cctx)
	}()
	var pub query.Publisher
	if bs := splitList(*brokers); len(bs) > 0 {
		if err := topology.Ensure(ctx, bs, query.EventsTopic(*topic)); err != nil {
			return err
		}
		kp := query.NewKafkaPublisher(bs, *topic)
		defer kp.Close()
		pub = kp
	}
	s, err := query.New(cfg, engine, query.NewStore(archive.Instrument(fsys, reg, "query"), ""), pub, tok, log, reg)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer onHangup(func() {
		if err := s.ReloadTokens(*tokens); err != nil {
			log.Error("tokens reload refused; the previous tokens stay in force", "error", err)
			return
		}
		log.Info("tokens reloaded", "file", *tokens)
	})()
	return adm.serveService(ctx, service{name: "query", reg: reg, log: log, check: "archive", ready: s.Ready, run: s.Run,
		attrs: func() []any {
			return []any{"api", cfg.Listen, "archive", fsys.String(), "spark_connect", *pool, "events", *topic, "brokers", *brokers}
		}})
}
