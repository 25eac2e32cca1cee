package record_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

func f64(v float64) *float64 { return &v }

// AppendJSON writes what encoding/json writes, byte for byte.
func TestAppendJSONIsMarshalJSON(t *testing.T) {
	same := func(r record.Record) {
		t.Helper()
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(r.AppendJSON(nil)))
	}
	g := gen.New(gen.Config{Seed: 3, Tenants: 5, Start: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), Rate: 7, RecordSize: 300})
	for range 5000 {
		same(g.Next())
	}
	base := record.Record{Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Tenant: "t", Method: "GET", Status: 200}
	same(base) // every optional field empty, a non-UTC zone
	for _, f := range []float64{0, 1, -1, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 123456789.125, 86400000, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		r := base
		r.DurationMS, r.RTTMS, r.UpstreamMS = f, f64(f), f64(-f)
		same(r)
	}
	for _, s := range []string{"plain", `quote " and \ back`, "<script>&amp;</script>", "tab\tnew\nline", "ünïcødé ✓", "\u2028\u2029", "\x7f", "emoji 🚀"} {
		r := base
		r.Path, r.UserAgent, r.Host, r.RequestID, r.Edge, r.Protocol, r.Scheme, r.ClientIP = s, s, s, s, s, s, s, s
		same(r)
	}
	r := base
	r.Timestamp = time.Date(2026, 1, 2, 3, 4, 5, 120_000_000, time.UTC)
	r.BytesIn, r.BytesOut = math.MaxInt64, -1
	same(r)
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("path", 1.5, int64(10), int64(3))
	f.Add("<&>\"\\\u00e9", 1e-9, int64(-1), int64(1700000000123456789))
	f.Fuzz(func(t *testing.T, s string, v float64, n int64, ns int64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return // not a valid record
		}
		r := record.Record{Timestamp: time.Unix(0, ns), Tenant: "t", Method: s, Path: s, Status: 200,
			BytesIn: n, DurationMS: v, RTTMS: &v, UserAgent: s}
		want, err := json.Marshal(r)
		if err != nil {
			return // a year outside 0-9999
		}
		require.Equal(t, string(want), string(r.AppendJSON(nil)))
	})
}

func BenchmarkEncode(b *testing.B) {
	g := gen.New(gen.Config{Seed: 3, Tenants: 5, Start: time.Now(), Rate: 7, RecordSize: 380})
	recs := make([]record.Record, 1000)
	for i := range recs {
		recs[i] = g.Next()
	}
	b.Run("json.Marshal", func(b *testing.B) {
		for i := range b.N {
			_, _ = json.Marshal(recs[i%len(recs)])
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for i := range b.N {
			buf = recs[i%len(recs)].AppendJSON(buf[:0])
		}
	})
}

// DecodeCanonical decodes what AppendJSON wrote exactly as Decode does.
func TestDecodeCanonicalIsDecodeOnCanonicalValues(t *testing.T) {
	g := gen.New(gen.Config{Seed: 8, Tenants: 4, Start: time.Now(), Rate: 5, RecordSize: 200})
	for range 3000 {
		r := g.Next()
		b := r.AppendJSON(nil)
		want, wu, werr := record.Decode(b)
		got, gu, gerr := record.DecodeCanonical(b)
		require.Equal(t, werr, gerr)
		require.Equal(t, wu, gu)
		require.Equal(t, want, got)
	}
}

// On any input DecodeCanonical does not panic, and on well-formed JSON it
// answers as Decode (the well-formedness pass is all it skips).
func FuzzDecodeCanonical(f *testing.F) {
	f.Add([]byte(`{"timestamp":"2026-01-01T00:00:00Z","tenant":"t","method":"GET","status":200,"bytes_in":1,"bytes_out":2,"duration_ms":3}`))
	f.Add([]byte(`{"timestamp":"2026-01-01T00:00:00Z","tenant":"t","status":`))
	f.Add([]byte(`{"a":[{"b":"\"}"}],"tenant":"x"}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gu, gerr := record.DecodeCanonical(data)
		if !json.Valid(bytes.TrimSpace(data)) {
			return
		}
		want, wu, werr := record.Decode(data)
		require.Equal(t, werr, gerr)
		require.Equal(t, wu, gu)
		require.Equal(t, want, got)
	})
}
