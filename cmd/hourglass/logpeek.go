package main

import (
	"context"
	"flag"
	"io"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/services/logpeek"
)

const logpeekHelp = `Serves the developers' API over the raw-log archive (HDFS or a local directory):
  GET /v1/partitions?tenant=&from=&to=
  GET /v1/logs?tenant=&from=&to=&status=&method=&path_prefix=&min_duration_ms=&request_id=&q=&limit=&cursor=
  GET /openapi.json   the OpenAPI 3 document (every answer and error code)
/v1/logs streams NDJSON in time order within each hour; its last line is
{"_meta":{...,"next_cursor":...}}. Requests carry Authorization: Bearer <token>;
the tokens file maps SHA-256 digests of tokens to a name, a role and the
tenants it may read; SIGHUP reloads it. Every query is logged with who asked
for what.
Serves /metrics, /healthz and /readyz on --listen-addr.`

func runLogpeek(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := logpeek.DefaultConfig()
	fs := flag.NewFlagSet("logpeek", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("archive-root", "archive", "archive root: hdfs://namenode:port/path or a local directory")
	user := fs.String("hdfs-user", "hourglass", "HDFS user the archive is read as")
	tokens := fs.String("tokens", "logpeek-tokens.yaml", "tokens file (SHA-256 digests of bearer tokens, roles, tenants)")
	fs.StringVar(&cfg.Listen, "api-addr", cfg.Listen, "API address (/v1/partitions, /v1/logs, /openapi.json)")
	fs.DurationVar(&cfg.MaxSpan, "max-span", cfg.MaxSpan, "longest from-to range of one /v1/logs request")
	fs.DurationVar(&cfg.MaxPartitionsSpan, "max-partitions-span", cfg.MaxPartitionsSpan, "longest from-to range of one /v1/partitions request")
	fs.Int64Var(&cfg.MaxScanBytes, "max-scan-bytes", cfg.MaxScanBytes, "most compressed archive bytes one request reads")
	fs.DurationVar(&cfg.Deadline, "deadline", cfg.Deadline, "longest time one request may take")
	fs.IntVar(&cfg.DefaultLimit, "default-limit", cfg.DefaultLimit, "records per answer when limit is not given")
	fs.IntVar(&cfg.MaxLimit, "max-limit", cfg.MaxLimit, "largest limit accepted")
	fs.Int64Var(&cfg.MaxResponseBytes, "max-response-bytes", cfg.MaxResponseBytes, "most record bytes in one /v1/logs answer (a cursor continues it)")
	fs.IntVar(&cfg.MaxConcurrent, "max-concurrent", cfg.MaxConcurrent, "most requests reading the archive at once (more get 503 overloaded)")
	fs.DurationVar(&cfg.CursorTTL, "cursor-ttl", cfg.CursorTTL, "how long a cursor is accepted after it was issued")
	fs.Int64Var(&cfg.PageCacheBytes, "page-cache-bytes", cfg.PageCacheBytes, "bytes kept of the hours /v1/logs pages stopped in, so that the next page reads them from memory (LRU; entries unused for 10m dropped; a tenant at most half); 0 disables the cache")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9106", "admin HTTP address (/metrics, /healthz, /readyz)")
	fs.Usage = flagenv.Usage(fs, "hourglass logpeek [flags]", logpeekHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}

	log, err := adm.logger(stderr)
	if err != nil {
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
	s, err := logpeek.New(cfg, archive.Instrument(fsys, reg, "logpeek"), tok, log, reg)
	if err != nil {
		return err
	}
	defer onHangup(func() {
		if err := s.ReloadTokens(*tokens); err != nil {
			log.Error("tokens reload refused; the previous tokens stay in force", "error", err)
			return
		}
		log.Info("tokens reloaded", "file", *tokens)
	})()
	return adm.serveService(ctx, service{name: "logpeek", reg: reg, log: log, check: "archive", ready: s.Ready, run: s.Run,
		attrs: func() []any { return []any{"api", cfg.Listen, "archive", fsys.String()} }})
}
