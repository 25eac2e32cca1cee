package main

import (
	"bufio"
	"cmp"
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

type genSummary struct {
	Generated      int     `json:"generated"`
	Malformed      int     `json:"malformed"`
	Accepted       int     `json:"accepted"`
	Rejected       int     `json:"rejected"`
	Retries        int     `json:"retries"`
	FailedRequests int     `json:"failed_requests"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
}

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
	var sum genSummary
	var err error
	if *out != "" {
		err = genToFile(ctx, g, *out, *count, &sum, keep, stdout)
	} else {
		client, cerr := genClient(*caFile)
		if cerr != nil {
			return cerr
		}
		p := &gen.Poster{URL: *target, KeyTemplate: *keyTemplate, Gzip: *gzipBody, MaxRetries: 20, Client: client}
		err = genToIngress(ctx, g, p, *count, cfg.Rate, *batch, *concurrency, &sum, keep, stderr)
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

// pace waits until record i is due at rate records/s after began.
func pace(ctx context.Context, began time.Time, i int, rate float64) error {
	if rate <= 0 {
		return ctx.Err()
	}
	due := began.Add(time.Duration(float64(i) / rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return ctx.Err()
}

func genToFile(ctx context.Context, g *gen.Generator, path string, count int, sum *genSummary, keep func(record.Record), stdout io.Writer) error {
	w := stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	defer bw.Flush()
	for i := 0; count <= 0 || i < count; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rec, line, valid := g.NextWithLine()
		sum.Generated++
		if !valid {
			sum.Malformed++
		} else {
			keep(rec)
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return nil
}

func genToIngress(ctx context.Context, g *gen.Generator, p *gen.Poster, count int, rate float64,
	batch, concurrency int, sum *genSummary, keep func(record.Record), stderr io.Writer) error {
	type job struct {
		tenant string
		lines  [][]byte
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				res, err := p.Post(context.WithoutCancel(ctx), j.tenant, j.lines)
				mu.Lock()
				sum.Retries += res.Retries
				switch {
				case err != nil:
					sum.FailedRequests++
					fmt.Fprintln(stderr, "hourglass gen:", err)
				case res.Status >= 300 && res.Status != http.StatusUnprocessableEntity:
					sum.FailedRequests++
					fmt.Fprintf(stderr, "hourglass gen: %d records for %s: HTTP %d\n", len(j.lines), j.tenant, res.Status)
				default:
					sum.Accepted += res.Accepted
					sum.Rejected += res.Rejected
				}
				mu.Unlock()
			}
		}()
	}
	pending := map[string][][]byte{}
	flush := func(tenant string) {
		if len(pending[tenant]) > 0 {
			jobs <- job{tenant, pending[tenant]}
			pending[tenant] = nil
		}
	}
	began := time.Now()
	lastFlush := began
	var err error
	for i := 0; count <= 0 || i < count; i++ {
		if err = pace(ctx, began, i, rate); err != nil {
			break
		}
		rec, line, valid := g.NextWithLine()
		if !valid {
			sum.Malformed++
		} else {
			keep(rec)
		}
		sum.Generated++
		pending[rec.Tenant] = append(pending[rec.Tenant], line)
		if len(pending[rec.Tenant]) >= batch {
			flush(rec.Tenant)
		}
		if time.Since(lastFlush) > 200*time.Millisecond { // keep latency low at low rates
			for t := range pending {
				flush(t)
			}
			lastFlush = time.Now()
		}
	}
	for t := range pending {
		flush(t)
	}
	close(jobs)
	wg.Wait()
	return err
}

// truthDoc is one expected metric document in the --truth file.
type truthDoc struct {
	Metric  string            `json:"metric"`
	ID      string            `json:"id"`
	Index   string            `json:"index"`
	Group   []string          `json:"group"`
	Window  truthWindow       `json:"window"`
	Samples int64             `json:"samples"`
	Values  map[string]any    `json:"values"`
	Checks  map[string]string `json:"checks"`
}

type truthWindow struct {
	Size  string    `json:"size"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// writeTruth writes the exact documents every catalog metric should produce
// from recs (every record counted: records generated later than a metric's
// allowed lateness may instead be counted in hourglass-late-<metric>).
func writeTruth(path, catalogPath string, recs []record.Record) error {
	c, err := catalog.Load(catalogPath)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--truth: %w", err)
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, m := range c.Metrics {
		res := metriceval.Evaluate(m, metriceval.Filter(m, recs), nil)
		keys := make([]metriceval.Key, 0, len(res.Windows))
		for k := range res.Windows {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b metriceval.Key) int {
			return cmp.Or(cmp.Compare(a.Size, b.Size), a.Start.Compare(b.Start), cmp.Compare(a.Group, b.Group))
		})
		for _, k := range keys {
			w := res.Windows[k]
			doc := truthDoc{Metric: m.Name, ID: res.DocID(w), Index: res.Index(w), Group: w.GroupValues,
				Window:  truthWindow{Size: w.Size, Start: w.Start, End: w.Start.Add(w.Length)},
				Samples: w.Samples, Values: map[string]any{}, Checks: map[string]string{}}
			for _, want := range w.Wants(m) {
				doc.Checks[want.Field] = want.Check
				if want.Null {
					doc.Values[want.Field] = nil
				} else {
					doc.Values[want.Field] = want.Value
				}
			}
			if err := enc.Encode(doc); err != nil {
				f.Close()
				return fmt.Errorf("--truth: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
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
