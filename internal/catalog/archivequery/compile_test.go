package archivequery

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run `go test ./internal/catalog/archivequery -update` to create it")
	require.Equal(t, string(want), string(got), "golden file %s differs; rerun with -update if the change is intended", path)
}

func decode(t *testing.T, js string) Query {
	t.Helper()
	q, err := Decode([]byte(js), DefaultLimits())
	require.NoError(t, err)
	return q
}

const rng = `"from": "2026-02-03T10:30:00Z", "to": "2026-02-03T13:00:00Z"`

func TestCompileGolden(t *testing.T) {
	cases := map[string]struct {
		query  string
		caller Caller
	}{
		"records": {`{` + rng + `}`, Caller{Tenant: "acme"}},
		"records-filtered": {`{` + rng + `, "filters": [
			{"field": "status", "op": "gte", "value": 500},
			{"field": "method", "op": "in", "value": ["GET", "POST"]},
			{"field": "path", "op": "prefix", "value": "/api/"},
			{"field": "host", "op": "ne", "value": "x.example"},
			{"field": "duration_ms", "op": "lt", "value": 12.5}],
			"order": [{"by": "duration_ms", "desc": true}], "limit": 10}`, Caller{Tenant: "acme"}},
		"grouped": {`{` + rng + `, "group_by": ["status", "host"], "bucket": "5m",
			"aggregations": [{"name": "n", "fn": "count"},
			  {"name": "bytes", "fn": "sum", "field": "bytes_out"},
			  {"name": "dur", "fn": "sum", "field": "duration_ms"},
			  {"name": "avg_rtt", "fn": "avg", "field": "rtt_ms"},
			  {"name": "lo", "fn": "min", "field": "duration_ms"},
			  {"name": "hi", "fn": "max", "field": "status"},
			  {"name": "p999", "fn": "percentile", "field": "duration_ms", "p": 99.9},
			  {"name": "clients", "fn": "approx_distinct", "field": "client_ip"},
			  {"name": "with_ua", "fn": "count", "field": "user_agent"}],
			"order": [{"by": "n", "desc": true}], "limit": 50}`, Caller{Tenant: "acme"}},
		"total": {`{` + rng + `, "aggregations": [{"name": "n", "fn": "count"}]}`, Caller{Tenant: "acme"}},
		"hostile-values": {`{` + rng + `, "filters": [
			{"field": "path", "op": "eq", "value": "x' OR tenant <> 'acme' --"},
			{"field": "user_agent", "op": "eq", "value": "` + "`tenant`" + ` /* */ \u0000 é 日本 \\' \""}]}`, Caller{Tenant: "acme"}},
		"free-sql-admin":        {`{` + rng + `, "sql": "SELECT tenant, count(*) AS n FROM archive GROUP BY tenant", "limit": 5}`, Caller{Admin: true}},
		"free-sql-admin-tenant": {`{` + rng + `, "sql": "SELECT * FROM archive"}`, Caller{Tenant: "acme", Admin: true}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Compile(decode(t, c.query), c.caller, DefaultLimits())
			require.NoError(t, err)
			stmt, err := p.Statement(Views{Whole: "hg_job_1_w", Edge: "hg_job_1_e"})
			require.NoError(t, err)
			cols, _ := json.Marshal(p.Columns)
			var whole []string
			for _, h := range p.Hours {
				if p.Covers(h) {
					whole = append(whole, h.Format("15h"))
				}
			}
			out := fmt.Sprintf("-- partitions: %s\n-- wholly inside the range: %s\n-- columns: %s\n%s\n", strings.Join(p.PartitionDirs(), " "), strings.Join(whole, " "), cols, stmt)
			golden(t, name+".sql", []byte(out))
		})
	}
}

func TestPlanScope(t *testing.T) {
	p, err := Compile(decode(t, `{`+rng+`}`), Caller{Tenant: "acme"}, DefaultLimits())
	require.NoError(t, err)
	require.Equal(t, []string{
		"tenant=acme/dt=2026-02-03/hour=10", "tenant=acme/dt=2026-02-03/hour=11", "tenant=acme/dt=2026-02-03/hour=12",
	}, p.PartitionDirs(), "the hours overlapping [from, to), to exclusive")
	// rng is 10:30–13:00: 10h is cut, 11h and 12h are whole.
	require.Equal(t, []bool{false, true, true}, []bool{p.Covers(p.Hours[0]), p.Covers(p.Hours[1]), p.Covers(p.Hours[2])})
	stmt, err := p.Statement(testViews)
	require.NoError(t, err)
	from := time.Date(2026, 2, 3, 10, 30, 0, 0, time.UTC).UnixMicro()
	require.Contains(t, stmt, fmt.Sprintf("`tenant` = 'acme' AND `_event_time` >= timestamp_micros(%d)", from))

	// Across midnight: the day directory changes.
	p, err = Compile(decode(t, `{"from": "2026-02-03T23:10:00Z", "to": "2026-02-04T01:00:00Z"}`), Caller{Tenant: "a"}, DefaultLimits())
	require.NoError(t, err)
	require.Equal(t, []string{"tenant=a/dt=2026-02-03/hour=23", "tenant=a/dt=2026-02-04/hour=00"}, p.PartitionDirs())

	// Offsets other than Z are normalised to UTC hours.
	p, err = Compile(decode(t, `{"from": "2026-02-03T12:00:00+02:00", "to": "2026-02-03T13:00:00+02:00"}`), Caller{Tenant: "a"}, DefaultLimits())
	require.NoError(t, err)
	require.Equal(t, []string{"tenant=a/dt=2026-02-03/hour=10"}, p.PartitionDirs())

	for _, bad := range []string{"", "a-b;", "X", "`v`", "v v", strings.Repeat("v", 129)} {
		_, err := p.Statement(Views{Whole: bad, Edge: "e"})
		require.Error(t, err, bad)
		_, err = p.Statement(Views{Whole: "w", Edge: bad})
		require.Error(t, err, bad)
	}
}

// WriteStatement: the same scope and body, with the rows written into a
// directory; a directory that could leave the string literal is refused.
func TestWriteStatement(t *testing.T) {
	p, err := Compile(decode(t, `{`+rng+`, "group_by": ["status"], "aggregations": [{"name": "n", "fn": "count"}]}`), Caller{Tenant: "acme"}, DefaultLimits())
	require.NoError(t, err)
	read, err := p.Statement(testViews)
	require.NoError(t, err)
	write, err := p.WriteStatement(testViews, "hdfs://nn:8020/archive/_query/results/0f")
	require.NoError(t, err)
	scope, body, ok := strings.Cut(read, "\n")
	require.True(t, ok)
	require.Equal(t, scope+"\nINSERT OVERWRITE DIRECTORY 'hdfs://nn:8020/archive/_query/results/0f' USING json "+ResultJSONOptions+"\n"+body, write,
		"the scope CTE first, then the write, then the same body")
	for _, bad := range []string{"", "/x' OR 1", "/a b", "/x`", "/x\n", "/é"} {
		_, err := p.WriteStatement(testViews, bad)
		require.Error(t, err, "%q", bad)
	}
	_, err = p.WriteStatement(Views{Whole: "v v", Edge: "e"}, "/ok")
	require.Error(t, err)
}

var testViews = Views{Whole: "w", Edge: "e"}

var safeLiteral = regexp.MustCompile(`^'[A-Za-z0-9 _.,:/@+=-]*'$|^CAST\(X'([0-9A-F]*)' AS STRING\)$`)

func TestLiteral(t *testing.T) {
	for _, s := range []string{
		"", "plain", "GET", "/api/v1", "it's", `back\slash`, "`tick`", "-- comment", "/* c */", "a;b",
		"\x00", "nul\x00in", "é", "日本語", "😀", "\u2028", "'; DROP TABLE x; --", "\\'", `"`, "\n\r\t", "$1", "%s", "?",
		"\xff\xfe", // not UTF-8: still only hex in the SQL
	} {
		lit := Literal(s)
		m := safeLiteral.FindStringSubmatch(lit)
		require.NotNil(t, m, "literal %q for %q is not in a safe form", lit, s)
		if strings.HasPrefix(lit, "CAST") {
			b, err := hex.DecodeString(m[1])
			require.NoError(t, err)
			require.Equal(t, s, string(b), "the hex literal round-trips")
		} else {
			require.Equal(t, "'"+s+"'", lit)
		}
	}
}

func FuzzLiteral(f *testing.F) {
	for _, s := range []string{"a", "'", "`", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit := Literal(s)
		m := safeLiteral.FindStringSubmatch(lit)
		if m == nil {
			t.Fatalf("unsafe literal %q for %q", lit, s)
		}
		if m[1] != "" {
			b, _ := hex.DecodeString(m[1])
			if string(b) != s {
				t.Fatalf("hex does not round-trip for %q", s)
			}
		}
	})
}

// TestHostileValuesStayLiterals checks that no part of a value reaches the
// statement outside a literal: the statement with every value removed is
// the same whatever the values.
func TestHostileValuesStayLiterals(t *testing.T) {
	compile := func(v string) string {
		vj, _ := json.Marshal(v)
		q := decode(t, `{`+rng+`, "filters": [{"field": "path", "op": "eq", "value": `+string(vj)+`},
			{"field": "host", "op": "in", "value": [`+string(vj)+`, "h"]}, {"field": "edge", "op": "prefix", "value": `+string(vj)+`}]}`)
		p, err := Compile(q, Caller{Tenant: "acme"}, DefaultLimits())
		require.NoError(t, err)
		stmt, err := p.Statement(testViews)
		require.NoError(t, err)
		return regexp.MustCompile(`CAST\(X'[0-9A-F]*' AS STRING\)|'[A-Za-z0-9 _.,:/@+=-]*'`).ReplaceAllString(stmt, "LIT")
	}
	want := compile("plain")
	for _, v := range []string{"x' OR '1'='1", "` OR 1=1 --", "*/ OR /*", "\x00", "a\\", "é'日", "') UNION SELECT * FROM other --"} {
		require.Equal(t, want, compile(v), "value %q", v)
	}
}

func TestCompileErrors(t *testing.T) {
	lim := DefaultLimits()
	long := strings.Repeat("x", lim.MaxValueBytes+1)
	list := func(n int) string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = fmt.Sprintf("%d", 200+i)
		}
		return "[" + strings.Join(vs, ",") + "]"
	}
	repeat := func(item string, n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(item, i)
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	cases := []struct {
		name, query string
		caller      Caller
		code, param string
	}{
		{"no from", `{"to": "2026-02-03T13:00:00Z"}`, Caller{Tenant: "a"}, CodeBadRange, "from"},
		{"reversed", `{"from": "2026-02-03T13:00:00Z", "to": "2026-02-03T12:00:00Z"}`, Caller{Tenant: "a"}, CodeBadRange, "to"},
		{"span over", `{"from": "2026-02-01T00:00:00Z", "to": "2026-02-08T00:00:01Z"}`, Caller{Tenant: "a"}, CodeBadRange, "to"},
		{"no tenant", `{` + rng + `}`, Caller{}, CodeBadValue, "tenant"},
		{"bad tenant", `{` + rng + `}`, Caller{Tenant: "A'"}, CodeBadValue, "tenant"},
		{"unknown filter field", `{` + rng + `, "filters": [{"field": "tenant) OR (1", "op": "eq", "value": "x"}]}`, Caller{Tenant: "a"}, CodeUnknownField, "filters[0].field"},
		{"backtick field", `{` + rng + `, "filters": [{"field": "status` + "`" + `", "op": "eq", "value": 1}]}`, Caller{Tenant: "a"}, CodeUnknownField, "filters[0].field"},
		{"timestamp filter", `{` + rng + `, "filters": [{"field": "timestamp", "op": "gt", "value": "x"}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].field"},
		{"bad op", `{` + rng + `, "filters": [{"field": "status", "op": "like", "value": 1}]}`, Caller{Tenant: "a"}, CodeBadOp, "filters[0].op"},
		{"lt on text", `{` + rng + `, "filters": [{"field": "path", "op": "lt", "value": "x"}]}`, Caller{Tenant: "a"}, CodeBadOp, "filters[0].op"},
		{"prefix on number", `{` + rng + `, "filters": [{"field": "status", "op": "prefix", "value": 5}]}`, Caller{Tenant: "a"}, CodeBadOp, "filters[0].op"},
		{"string for int", `{` + rng + `, "filters": [{"field": "status", "op": "eq", "value": "500 OR 1=1"}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"float for int", `{` + rng + `, "filters": [{"field": "status", "op": "eq", "value": 500.5}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"huge number", `{` + rng + `, "filters": [{"field": "duration_ms", "op": "gt", "value": 1e300}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"number for text", `{` + rng + `, "filters": [{"field": "path", "op": "eq", "value": 1}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"missing value", `{` + rng + `, "filters": [{"field": "path", "op": "eq"}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"in not array", `{` + rng + `, "filters": [{"field": "status", "op": "in", "value": 1}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"in empty", `{` + rng + `, "filters": [{"field": "status", "op": "in", "value": []}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value"},
		{"in bad item", `{` + rng + `, "filters": [{"field": "status", "op": "in", "value": [1, "x"]}]}`, Caller{Tenant: "a"}, CodeBadValue, "filters[0].value[1]"},
		{"value over", `{` + rng + `, "filters": [{"field": "path", "op": "eq", "value": "` + long + `"}]}`, Caller{Tenant: "a"}, CodeTooLarge, "filters[0].value"},
		{"in over", `{` + rng + `, "filters": [{"field": "status", "op": "in", "value": ` + list(lim.MaxInList+1) + `}]}`, Caller{Tenant: "a"}, CodeTooLarge, "filters[0].value"},
		{"filters over", `{` + rng + `, "filters": ` + repeat(`{"field": "status", "op": "ne", "value": %d}`, lim.MaxFilters+1) + `}`, Caller{Tenant: "a"}, CodeTooLarge, "filters"},
		{"group over", `{` + rng + `, "group_by": ` + repeat(`"f%d"`, lim.MaxGroupBy+1) + `, "aggregations": [{"name": "n", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeTooLarge, "group_by"},
		{"aggs over", `{` + rng + `, "aggregations": ` + repeat(`{"name": "n%d", "fn": "count"}`, lim.MaxAggregations+1) + `}`, Caller{Tenant: "a"}, CodeTooLarge, "aggregations"},
		{"order over", `{` + rng + `, "order": ` + repeat(`{"by": "o%d"}`, lim.MaxOrder+1) + `}`, Caller{Tenant: "a"}, CodeTooLarge, "order"},
		{"limit over", `{` + rng + `, "limit": ` + fmt.Sprint(lim.MaxLimit+1) + `}`, Caller{Tenant: "a"}, CodeTooLarge, "limit"},
		{"limit negative", `{` + rng + `, "limit": -1}`, Caller{Tenant: "a"}, CodeBadValue, "limit"},
		{"unknown group", `{` + rng + `, "group_by": ["nope"], "aggregations": [{"name": "n", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeUnknownField, "group_by[0]"},
		{"group twice", `{` + rng + `, "group_by": ["host", "host"], "aggregations": [{"name": "n", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeBadValue, "group_by[1]"},
		{"group no agg", `{` + rng + `, "group_by": ["host"]}`, Caller{Tenant: "a"}, CodeBadValue, "aggregations"},
		{"bad bucket", `{` + rng + `, "bucket": "2m", "aggregations": [{"name": "n", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeBadValue, "bucket"},
		{"bad agg name", `{` + rng + `, "aggregations": [{"name": "n` + "`" + `", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeBadValue, "aggregations[0].name"},
		{"agg name clash", `{` + rng + `, "group_by": ["host"], "aggregations": [{"name": "host", "fn": "count"}]}`, Caller{Tenant: "a"}, CodeBadValue, "aggregations[0].name"},
		{"bad fn", `{` + rng + `, "aggregations": [{"name": "n", "fn": "stddev", "field": "status"}]}`, Caller{Tenant: "a"}, CodeBadOp, "aggregations[0].fn"},
		{"sum of text", `{` + rng + `, "aggregations": [{"name": "n", "fn": "sum", "field": "path"}]}`, Caller{Tenant: "a"}, CodeBadOp, "aggregations[0].fn"},
		{"percentile no p", `{` + rng + `, "aggregations": [{"name": "n", "fn": "percentile", "field": "status"}]}`, Caller{Tenant: "a"}, CodeBadValue, "aggregations[0].p"},
		{"percentile 100", `{` + rng + `, "aggregations": [{"name": "n", "fn": "percentile", "field": "status", "p": 100}]}`, Caller{Tenant: "a"}, CodeBadValue, "aggregations[0].p"},
		{"agg unknown field", `{` + rng + `, "aggregations": [{"name": "n", "fn": "max", "field": "x"}]}`, Caller{Tenant: "a"}, CodeUnknownField, "aggregations[0].field"},
		{"order not output", `{` + rng + `, "aggregations": [{"name": "n", "fn": "count"}], "order": [{"by": "path"}]}`, Caller{Tenant: "a"}, CodeUnknownField, "order[0].by"},
		{"order raw unknown", `{` + rng + `, "order": [{"by": "1; DROP"}]}`, Caller{Tenant: "a"}, CodeUnknownField, "order[0].by"},
		{"free sql non-admin", `{` + rng + `, "sql": "SELECT 1"}`, Caller{Tenant: "a"}, CodeForbidden, "sql"},
		{"free sql mixed", `{` + rng + `, "sql": "SELECT 1", "group_by": ["host"]}`, Caller{Admin: true}, CodeBadValue, "sql"},
		{"free sql over", `{` + rng + `, "sql": "` + strings.Repeat("x", lim.MaxSQLBytes+1) + `"}`, Caller{Admin: true}, CodeTooLarge, "sql"},
		{"free sql nul", `{` + rng + `, "sql": "SELECT 1\u0000"}`, Caller{Admin: true}, CodeBadValue, "sql"},
		{"admin structured needs tenant", `{` + rng + `}`, Caller{Admin: true}, CodeBadValue, "tenant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := Decode([]byte(c.query), lim)
			require.NoError(t, err)
			_, err = Compile(q, c.caller, lim)
			e, ok := AsError(err)
			require.True(t, ok, "want *Error, got %v", err)
			require.Equal(t, c.code, e.Code, e.Error())
			require.Equal(t, c.param, e.Param, e.Error())
		})
	}
}

// TestBoundsAccepted checks every bound is inclusive: a query exactly at
// each limit compiles.
func TestBoundsAccepted(t *testing.T) {
	lim := DefaultLimits()
	repeat := func(item string, n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(item, i)
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	groups := []string{"method", "scheme", "host", "path", "status", "client_ip", "edge", "protocol"}
	require.Len(t, groups, lim.MaxGroupBy)
	gj, _ := json.Marshal(groups)
	orders := make([]string, 0, lim.MaxOrder)
	for _, g := range groups[:lim.MaxOrder] {
		orders = append(orders, `{"by": "`+g+`"}`)
	}
	for name, q := range map[string]string{
		"span":    `{"from": "2026-02-01T00:00:00Z", "to": "2026-02-08T00:00:00Z"}`,
		"value":   `{` + rng + `, "filters": [{"field": "path", "op": "eq", "value": "` + strings.Repeat("é", lim.MaxValueBytes/2) + `"}]}`,
		"in":      `{` + rng + `, "filters": [{"field": "status", "op": "in", "value": ` + repeat(`%d`, lim.MaxInList) + `}]}`,
		"filters": `{` + rng + `, "filters": ` + repeat(`{"field": "status", "op": "ne", "value": %d}`, lim.MaxFilters) + `}`,
		"groups":  `{` + rng + `, "group_by": ` + string(gj) + `, "aggregations": [{"name": "n", "fn": "count"}], "order": [` + strings.Join(orders, ",") + `]}`,
		"aggs":    `{` + rng + `, "aggregations": ` + repeat(`{"name": "n%d", "fn": "count"}`, lim.MaxAggregations) + `}`,
		"limit":   `{` + rng + `, "limit": ` + fmt.Sprint(lim.MaxLimit) + `}`,
	} {
		p, err := Compile(decode(t, q), Caller{Tenant: "a"}, lim)
		require.NoError(t, err, name)
		require.NotEmpty(t, p.Body, name)
	}
	p, err := Compile(decode(t, `{`+rng+`, "sql": "`+strings.Repeat("x", lim.MaxSQLBytes)+`"}`), Caller{Admin: true}, lim)
	require.NoError(t, err, "free SQL at the bound")
	require.True(t, p.Free)
	require.Empty(t, p.PartitionDirs(), "an every-tenant plan lists no directories itself")
}

func TestDecode(t *testing.T) {
	lim := DefaultLimits()
	for name, body := range map[string]string{
		"unknown key":  `{` + rng + `, "tenants": ["b"]}`,
		"trailing":     `{` + rng + `} {}`,
		"not object":   `[1]`,
		"bad time":     `{"from": "yesterday", "to": "2026-02-03T13:00:00Z"}`,
		"filter extra": `{` + rng + `, "filters": [{"field": "host", "op": "eq", "value": "x", "raw": "1=1"}]}`,
	} {
		_, err := Decode([]byte(body), lim)
		e, ok := AsError(err)
		require.True(t, ok, name)
		require.Equal(t, CodeMalformed, e.Code, name)
	}
	lim.MaxBodyBytes = 64
	body := `{"from": "2026-02-03T10:30:00Z", "to": "2026-02-03T13:00:00Z"}`
	body += strings.Repeat(" ", lim.MaxBodyBytes-len(body))
	_, err := Decode([]byte(body), lim)
	require.NoError(t, err, "at the bound")
	_, err = Decode([]byte(body+" "), lim)
	e, ok := AsError(err)
	require.True(t, ok)
	require.Equal(t, CodeTooLarge, e.Code)
}

func TestLimitsValidate(t *testing.T) {
	require.NoError(t, DefaultLimits().Validate())
	l := DefaultLimits()
	l.MaxSpan, l.MaxFilters, l.DefaultLimit = time.Minute, 0, l.MaxLimit+1
	err := l.Validate()
	require.ErrorContains(t, err, "max-span")
	require.ErrorContains(t, err, "max-filters")
	require.ErrorContains(t, err, "default-limit")
}
