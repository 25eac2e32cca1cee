package main

import (
	"context"
	"flag"
	"io"
	"strings"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/services/archiver"
)

const archiverHelp = `Consumes the raw traffic records and writes them to the archive, exactly once:
  <root>/tenant=<t>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.jsonl.gz
(event-time hour, gzip JSON lines in canonical form; see docs/archive-format.md).
The root is an HDFS URL (hdfs://namenode:port/path) or a local directory.
Files roll by size and by age, are written under a temporary name and renamed;
offsets are committed only after the rename. On start each partition reconciles
with the files already archived, so a crash leaves no gap and no duplicate.
An unavailable NameNode or DataNode pauses consumption and is retried with
backoff. SIGTERM flushes, renames and commits what is buffered.
Serves /metrics, /healthz and /readyz on --listen-addr.`

func runArchiver(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := archiver.DefaultConfig()
	fs := flag.NewFlagSet("archiver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", strings.Join(cfg.Brokers, ","), "Kafka bootstrap brokers, comma-separated")
	root := fs.String("archive-root", "archive", "archive root: hdfs://namenode:port/path or a local directory")
	user := fs.String("hdfs-user", "hourglass", "HDFS user the archive is written as")
	fs.StringVar(&cfg.Group, "group", cfg.Group, "consumer group")
	fs.StringVar(&cfg.Topic, "source-topic", cfg.Topic, "topic of the raw records")
	fs.Int64Var(&cfg.MaxFileBytes, "max-file-bytes", cfg.MaxFileBytes, "roll a part file at this compressed size")
	fs.DurationVar(&cfg.MaxFileAge, "max-file-age", cfg.MaxFileAge, "roll a part file this long after its first record")
	fs.IntVar(&cfg.MaxOpenBuckets, "max-open-buckets", cfg.MaxOpenBuckets, "part files (tenant, event-time hour) one partition fills at once, up to ~0.3 MiB each besides their compressed bytes; past it the oldest is written early")
	fs.IntVar(&cfg.CompressWorkers, "compress-workers", cfg.CompressWorkers, "part-file blocks compressed at once, shared by every partition (1-32; default: the CPUs Go may use)")
	fs.Int64Var(&cfg.MaxBufferedBytes, "max-buffered-bytes", cfg.MaxBufferedBytes, "compressed bytes one partition buffers over its part files (>= max-file-bytes); past it the oldest are written early")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout: how soon a dead archiver's partitions move")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long the final flush on shutdown may take")
	fs.DurationVar(&cfg.MaxBackoff, "max-backoff", cfg.MaxBackoff, "longest wait between retries of a failed archive operation")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9104", "admin HTTP address (/metrics, /healthz, /readyz)")
	fs.Usage = flagenv.Usage(fs, "hourglass archiver [flags]", archiverHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	cfg.Brokers = splitList(*brokers)

	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	fsys, err := archive.Open(*root, *user)
	if err != nil {
		return err
	}
	defer fsys.Close()
	a, err := archiver.New(cfg, archive.Instrument(fsys, reg, "archiver"), log, reg)
	if err != nil {
		return err
	}
	return adm.serveService(ctx, service{name: "archiver", reg: reg, log: log, check: "kafka+archive", ready: a.Ready, run: a.Run,
		attrs: func() []any { return []any{"brokers", cfg.Brokers, "archive", fsys.String()} }})
}
