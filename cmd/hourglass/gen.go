package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/metriceval"
	"github.com/hourglass-io/hourglass/internal/record"
)

const genHelp = `Generates deterministic traffic records (same --seed, same records): N tenants,
log-normal latencies and RTTs, a status mix with error bursts, Zipf paths,
out-of-order (--disorder) and late (--late-share, --late-by) events, and an
optional share of malformed records. Writes NDJSON (--out) or posts to the
ingress API (--target), one API key per tenant (--key-template), paced at
--rate records/s. Prints a JSON summary on stdout.`

func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg gen.Config
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same records")
	fs.IntVar(&cfg.Tenants, "tenants", 3, "number of tenants (tenant-01, tenant-02, ...)")
	count := fs.Int("count", 10000, "records to generate (0: until --duration ends)")
	duration := fs.Duration("duration", 0, "stop after this long (0: after --count records)")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "records per second of event time; with --target also the sending pace")
	start := fs.String("start", "now", "event time of the first record: RFC 3339 or 'now'")
	fs.DurationVar(&cfg.Disorder, "disorder", 0, "move each event time back by up to this (out-of-order events)")
	fs.Float64Var(&cfg.LateShare, "late-share", 0, "share of records that arrive late, 0..1")
	fs.DurationVar(&cfg.LateBy, "late-by", 15*time.Minute, "how late the late records are")
	fs.Float64Var(&cfg.Malformed, "malformed", 0, "share of malformed records, 0..1")
	fs.IntVar(&cfg.RecordSize, "record-size", 0, "pad records to about this many bytes (0: natural size)")
	out := fs.String("out", "", "write NDJSON to this file ('-' for stdout) instead of posting")
	target := fs.String("target", "", "ingress URL to post to, e.g. http://127.0.0.1:8080/v1/logs")
	keyTemplate := fs.String("key-template", "key-{tenant}", "API key of each tenant; {tenant} is replaced by its name")
	batch := fs.Int("batch", 500, "records per request")
	concurrency := fs.Int("concurrency", 4, "requests in flight")
	gzipBody := fs.Bool("gzip", false, "gzip request bodies")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to trust for an https --target (e.g. the edge's self-signed one)")
	truth := fs.String("truth", "", "also write the exact expected metric documents of the generated records (NDJSON) to this file")
	catalogPath := fs.String("catalog", defaultCatalog, "--truth: the metric catalog")
	fs.Usage = flagenv.Usage(fs, "hourglass gen [flags] (--out FILE | --target URL)", genHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	if (*out == "") == (*target == "") || *batch < 1 || *concurrency < 1 || (*count <= 0 && *duration <= 0) {
		fmt.Fprintln(stderr, "hourglass gen: give exactly one of --out and --target, a positive --batch and --concurrency, and --count or --duration")
		return errUsage
	}
	cfg.Start = time.Now().UTC()
	if *start != "now" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		cfg.Start = t
	}
	g := gen.New(cfg)
	var truthRecs []record.Record
	keep := func(record.Record) {}
	if *truth != "" {
		keep = func(r record.Record) { truthRecs = append(truthRecs, r) }
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	began := time.Now()
	var sum gen.Summary
	var err error
	if *out != "" {
		w := stdout
		if *out != "-" {
			f, cerr := os.Create(*out)
			if cerr != nil {
				return fmt.Errorf("create %s: %w", *out, cerr)
			}
			defer f.Close()
			w = f
		}
		sum, err = gen.WriteNDJSON(ctx, g, w, *count, keep)
	} else {
		client, cerr := genClient(*caFile)
		if cerr != nil {
			return cerr
		}
		p := &gen.Poster{URL: *target, KeyTemplate: *keyTemplate, Gzip: *gzipBody, MaxRetries: 20, Client: client}
		var mu sync.Mutex
		sum, err = p.Send(ctx, g, gen.SendConfig{Count: *count, Rate: cfg.Rate, Batch: *batch, Concurrency: *concurrency}, keep,
			func(ferr error) { mu.Lock(); fmt.Fprintln(stderr, "hourglass gen:", ferr); mu.Unlock() })
	}
	if *truth != "" && (err == nil || errors.Is(err, context.DeadlineExceeded)) {
		if terr := writeTruth(*truth, *catalogPath, truthRecs); terr != nil {
			return terr
		}
	}
	sum.Seconds = time.Since(began).Seconds()
	if sum.Seconds > 0 {
		sum.RecordsPerSec = float64(sum.Generated) / sum.Seconds
	}
	if *out != "-" {
		enc := json.NewEncoder(stdout)
		_ = enc.Encode(sum)
	}
	if errors.Is(err, context.DeadlineExceeded) && *duration > 0 {
		err = nil // --duration ended the run
	}
	if err == nil && sum.FailedRequests > 0 {
		err = fmt.Errorf("%d requests failed", sum.FailedRequests)
	}
	return err
}

// writeTruth writes the --truth file (metriceval.WriteTruth).
func writeTruth(path, catalogPath string, recs []record.Record) error {
	c, err := catalog.Load(catalogPath)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	if err := metriceval.WriteTruth(f, c, recs); err != nil {
		f.Close()
		return fmt.Errorf("--truth: %w", err)
	}
	return f.Close()
}

// genClient is the HTTP client of gen: trusting caFile's certificates when given.
func genClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}, nil
}
