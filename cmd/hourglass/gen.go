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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
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
--rate records/s. Prints a JSON summary on stdout.

  hourglass gen history --es-url URL [flags]   writes past metric documents
                                               (see hourglass gen history --help)`

const genHistoryHelp = `Writes the history a baseline reads (docs/baselines.md): metric documents of
the same hours (--hours from --start's hour) on each of the --days days before,
computed exactly from generated traffic (--records-per-hour per tenant, gen's
distributions), into the metric's index with the job's _id, as the metric job
would have written them. Only the window sizes the metric's baselines read are
written. Counts and sums follow --records-per-hour, not a real hour's volume:
choose metrics whose outputs do not depend on volume (latency) or match it.
Prints a JSON summary on stdout.`

func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "history" {
		return runGenHistory(ctx, args[1:], stdout, stderr)
	}
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
	slow := fs.String("slow", "", "tenants whose durations are multiplied, as TENANT=FACTOR[,TENANT=FACTOR...] (a slower backend)")
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
	var err error
	if cfg.Slow, err = parseSlow(*slow); err != nil {
		fmt.Fprintln(stderr, "hourglass gen: --slow:", err)
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

// maxSlowFactor bounds --slow's factors.
const maxSlowFactor = 1000

// parseSlow parses --slow: TENANT=FACTOR pairs, comma-separated.
func parseSlow(s string) (map[string]float64, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]float64{}
	for _, pair := range splitList(s) {
		tenant, f, ok := strings.Cut(pair, "=")
		if !ok || !record.ValidTenant(tenant) {
			return nil, fmt.Errorf("%q: want TENANT=FACTOR with a valid tenant name", pair)
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0 && v <= maxSlowFactor) {
			return nil, fmt.Errorf("%q: the factor must be a number in (0, %d]", pair, maxSlowFactor)
		}
		if _, dup := out[tenant]; dup {
			return nil, fmt.Errorf("%q: tenant given twice", pair)
		}
		out[tenant] = v
	}
	return out, nil
}

// historySummary is what `hourglass gen history` prints.
type historySummary struct {
	Documents map[string]int `json:"documents"` // by metric
	From      time.Time      `json:"from"`      // the first day's first hour
	To        time.Time      `json:"to"`        // the last day's last hour's end
	Days      int            `json:"days"`
	Hours     int            `json:"hours"`
}

func runGenHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen history", flag.ContinueOnError)
	es := addESFlags(fs, "http://127.0.0.1:9200", "Elasticsearch basic auth user")
	catalogPath := fs.String("catalog", defaultCatalog, "the metric catalog")
	metrics := fs.String("metrics", "", "metrics to write, comma-separated (default: every metric with a baseline)")
	var cfg metriceval.HistoryConfig
	fs.Uint64Var(&cfg.Seed, "seed", 1, "traffic seed (same seed, same documents)")
	fs.IntVar(&cfg.Tenants, "tenants", 3, "number of tenants (tenant-01, tenant-02, ...)")
	fs.IntVar(&cfg.Days, "days", 7, fmt.Sprintf("days of history before --start (1..%d)", metriceval.MaxHistoryDays))
	fs.IntVar(&cfg.Hours, "hours", 2, fmt.Sprintf("hours of each day, from --start's hour (1..%d)", metriceval.MaxHistoryHours))
	fs.IntVar(&cfg.RecordsPerHour, "records-per-hour", 2000, fmt.Sprintf("generated records per tenant and hour (1..%d)", metriceval.MaxHistoryRecordsPerHour))
	start := fs.String("start", "now", "the hour whose earlier days are written: RFC 3339 or 'now'")
	fs.Usage = flagenv.Usage(fs, "hourglass gen history [flags]", genHistoryHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	cfg.From = time.Now().UTC()
	if *start != "now" {
		t, err := time.Parse(time.RFC3339, *start)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		cfg.From = t
	}
	cfg.From = cfg.From.UTC().Truncate(time.Hour)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "hourglass gen history:", err)
		return errUsage
	}
	c, err := catalog.Load(*catalogPath)
	if err != nil {
		return err
	}
	var chosen []catalog.Metric
	if *metrics == "" {
		for _, m := range c.Metrics {
			if len(m.Baselines) > 0 {
				chosen = append(chosen, m)
			}
		}
	} else {
		for _, name := range splitList(*metrics) {
			m, ok := c.Metric(name)
			if !ok || len(m.Baselines) == 0 {
				fmt.Fprintf(stderr, "hourglass gen history: --metrics: %q is not a metric of %s with a baseline\n", name, *catalogPath)
				return errUsage
			}
			chosen = append(chosen, m)
		}
	}
	if len(chosen) == 0 {
		return fmt.Errorf("no metric of %s declares a baseline", *catalogPath)
	}
	client, err := es.client()
	if err != nil {
		return err
	}
	sum := historySummary{Documents: map[string]int{}, Days: cfg.Days, Hours: cfg.Hours,
		From: cfg.From.Add(-time.Duration(cfg.Days) * 24 * time.Hour), To: cfg.From.Add(time.Duration(cfg.Hours)*time.Hour - 24*time.Hour)}
	for _, m := range chosen {
		var sizes []string
		for _, b := range m.Baselines {
			if !slices.Contains(sizes, b.Window.String()) {
				sizes = append(sizes, b.Window.String())
			}
		}
		docs, err := metriceval.History(m, sizes, cfg)
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(docs, 1000) {
			items := make([]esclient.BulkItem, len(chunk))
			for i, d := range chunk {
				items[i] = esclient.BulkItem{Index: d.Index, ID: d.ID, Doc: d.Doc}
			}
			if _, err := client.Bulk(ctx, "", items); err != nil {
				return fmt.Errorf("write the history of %s: %w", m.Name, err)
			}
		}
		if err := client.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{catalog.Alias(m.Name)}}, "refresh "+catalog.Alias(m.Name), nil); err != nil {
			return err
		}
		sum.Documents[m.Name] = len(docs)
	}
	return json.NewEncoder(stdout).Encode(sum)
}
