// Package gen generates deterministic, realistic traffic records: the same
// seed gives the same records. It is the traffic source of tests, benchmarks,
// the demo and `hourglass gen`.
//
// Distributions: durations and RTTs are log-normal, paths follow a Zipf law,
// statuses are mostly 2xx with a small 4xx/5xx share and occasional error
// bursts, a share of records has no rtt_ms or client_ip (as nginx logs for
// requests without TCP info), and an optional share is malformed in one of
// several ways so that rejection paths get exercised.
package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Config shapes the generated traffic.
type Config struct {
	Seed       uint64
	Tenants    int           // tenants named tenant-01, tenant-02, ...
	Start      time.Time     // event time of the first record
	Rate       float64       // records per second of event time (spacing of timestamps)
	Disorder   time.Duration // each record's event time is moved back by up to this (out of order)
	LateShare  float64       // share of records moved back by LateBy (late arrivals), 0..1
	LateBy     time.Duration // how far late records are moved back
	Malformed  float64       // share of records that are invalid, 0..1
	RecordSize int           // if > 0, pad user_agent so encoded records are about this many bytes
	// Slow multiplies the durations (duration_ms, upstream_ms) of the named
	// tenants' records: a tenant whose backend got slower. The other records,
	// and every other field, stay what the seed gives.
	Slow map[string]float64
}

// Generator yields records; it is not safe for concurrent use.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	zipf    *rand.Zipf
	n       int64
	tenants []string
	burst   int // records left in the current error burst
}

var paths = func() []string {
	out := []string{"/", "/index.html", "/api/v1/items", "/api/v1/cart", "/api/v1/login", "/static/app.js", "/static/app.css"}
	for i := 0; i < 93; i++ {
		out = append(out, fmt.Sprintf("/api/v1/items/%d", i))
	}
	return out
}()

var methods = []string{"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD"}

// New returns a generator.
func New(cfg Config) *Generator {
	if cfg.Tenants < 1 {
		cfg.Tenants = 1
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &Generator{cfg: cfg, rng: rng, zipf: rand.NewZipf(rng, 1.2, 1, uint64(len(paths)-1))}
	for i := 1; i <= cfg.Tenants; i++ {
		g.tenants = append(g.tenants, fmt.Sprintf("tenant-%02d", i))
	}
	return g
}

// Tenants lists the tenant names the generator uses.
func (g *Generator) Tenants() []string { return g.tenants }

// Next returns the next valid record.
func (g *Generator) Next() record.Record {
	i := g.n
	g.n++
	ts := g.cfg.Start.Add(time.Duration(float64(i) / g.cfg.Rate * float64(time.Second)))
	if g.cfg.Disorder > 0 {
		ts = ts.Add(-time.Duration(g.rng.Int64N(int64(g.cfg.Disorder))))
	}
	if g.cfg.LateShare > 0 && g.rng.Float64() < g.cfg.LateShare {
		ts = ts.Add(-g.cfg.LateBy)
	}
	tenant := g.tenants[g.rng.IntN(len(g.tenants))]
	status := g.status()
	dur := logNormal(g.rng, math.Log(40), 0.9)
	if status >= 500 {
		dur *= 3
	}
	if f, ok := g.cfg.Slow[tenant]; ok {
		dur *= f
	}
	r := record.Record{
		Timestamp:  ts.UTC().Truncate(time.Microsecond),
		Tenant:     tenant,
		RequestID:  tenant + "-" + strconv.FormatInt(i, 36) + "-" + strconv.FormatUint(g.cfg.Seed, 36),
		Method:     methods[g.rng.IntN(len(methods))],
		Scheme:     "https",
		Host:       tenant + ".example.com",
		Path:       paths[g.zipf.Uint64()],
		Status:     status,
		BytesIn:    int64(200 + g.rng.IntN(1800)),
		BytesOut:   int64(logNormal(g.rng, math.Log(8000), 1.2)),
		DurationMS: round3(dur),
		Edge:       "edge-" + strconv.Itoa(1+g.rng.IntN(3)),
		Protocol:   "HTTP/1.1",
		UserAgent:  "hourglass-gen/1",
	}
	if g.rng.Float64() < 0.97 {
		rtt := round3(logNormal(g.rng, math.Log(25), 0.6))
		r.RTTMS = &rtt
	}
	if g.rng.Float64() < 0.98 {
		r.ClientIP = fmt.Sprintf("10.%d.%d.%d", g.rng.IntN(4), g.rng.IntN(256), 1+g.rng.IntN(254))
	}
	up := round3(dur * 0.8)
	r.UpstreamMS = &up
	if g.cfg.RecordSize > 0 {
		g.pad(&r)
	}
	return r
}

// NextLine returns the next record encoded as one JSON line (no newline).
// With Malformed > 0, that share of lines is invalid; valid reports which.
func (g *Generator) NextLine() (line []byte, valid bool) {
	_, line, valid = g.NextWithLine()
	return line, valid
}

// NextWithLine returns the next record and its line (invalid at the
// Malformed share, in which case the record is what the line was made from).
func (g *Generator) NextWithLine() (record.Record, []byte, bool) {
	r := g.Next()
	b, err := r.MarshalJSON()
	if err != nil {
		panic(err) // a generated record always encodes
	}
	if g.cfg.Malformed > 0 && g.rng.Float64() < g.cfg.Malformed {
		return r, g.corrupt(b, r), false
	}
	return r, b, true
}

func (g *Generator) status() int {
	if g.burst > 0 {
		g.burst--
		return 503
	}
	if g.rng.Float64() < 0.001 {
		g.burst = 20 + g.rng.IntN(50)
	}
	switch p := g.rng.Float64(); {
	case p < 0.90:
		return []int{200, 200, 200, 201, 204, 206}[g.rng.IntN(6)]
	case p < 0.93:
		return 304
	case p < 0.985:
		return []int{400, 401, 403, 404, 404, 429}[g.rng.IntN(6)]
	default:
		return []int{500, 502, 503, 504}[g.rng.IntN(4)]
	}
}

// corrupt returns an invalid variant of an encoded record.
func (g *Generator) corrupt(b []byte, r record.Record) []byte {
	switch g.rng.IntN(6) {
	case 0:
		return b[:len(b)/2] // truncated JSON
	case 1:
		return []byte(fmt.Sprintf(`{"timestamp":%q,"tenant":%q,"method":"GET","duration_ms":1}`,
			r.Timestamp.Format(time.RFC3339), r.Tenant)) // status missing
	case 2:
		return []byte(fmt.Sprintf(`{"timestamp":"yesterday","tenant":%q,"method":"GET","status":200,"duration_ms":1}`, r.Tenant))
	case 3:
		return []byte(fmt.Sprintf(`{"timestamp":%q,"tenant":%q,"method":"GET","status":"200","duration_ms":1}`,
			r.Timestamp.Format(time.RFC3339), r.Tenant)) // wrong type
	case 4:
		return []byte(fmt.Sprintf(`{"timestamp":%q,"tenant":%q,"method":"GET","status":200,"duration_ms":-5}`,
			r.Timestamp.Format(time.RFC3339), r.Tenant)) // out of range
	default:
		return []byte(`["not","an","object"]`)
	}
}

func (g *Generator) pad(r *record.Record) {
	b, _ := r.MarshalJSON()
	if missing := g.cfg.RecordSize - len(b); missing > 0 {
		n := min(missing+len(r.UserAgent), record.MaxUserAgentLen)
		ua := make([]byte, n)
		for i := range ua { // random letters, as Kafka's ProducerPerformance sends: no free compression
			ua[i] = 'a' + byte(g.rng.IntN(26))
		}
		r.UserAgent = string(ua)
	}
}

func logNormal(rng *rand.Rand, mu, sigma float64) float64 {
	return math.Exp(mu + sigma*rng.NormFloat64())
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
