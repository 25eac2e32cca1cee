package archivequery

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/record"
)

// Relation is the name every compiled statement reads: a CTE over the
// job's view, already filtered to the tenant and the time range.
const Relation = "archive"

// EventTimeColumn is the parsed event time in Relation (record fields never
// start with an underscore).
const EventTimeColumn = "_event_time"

// BucketColumn is the output column of the time bucket.
const BucketColumn = "bucket"

// PercentileAccuracy is the accuracy of percentile_approx: the rank error is
// at most 1/PercentileAccuracy of the rows.
const PercentileAccuracy = 10000

// ApproxDistinctRSD is approx_count_distinct's relative standard deviation.
const ApproxDistinctRSD = 0.01

// ColumnType is the JSON type of an output column.
type ColumnType string

// Output column types. Timestamps are RFC 3339 UTC strings in results.
const (
	ColString    ColumnType = "string"
	ColInt       ColumnType = "int"
	ColFloat     ColumnType = "float"
	ColTimestamp ColumnType = "timestamp"
)

// Column is one output column of a compiled query.
type Column struct {
	Name string     `json:"name"`
	Type ColumnType `json:"type"`
}

// Plan is a compiled query: which partitions Spark reads, and the statement
// it runs over them.
type Plan struct {
	// Tenant whose partitions are read; "" only for an admin's free SQL
	// over every tenant.
	Tenant   string
	From, To time.Time
	// Hours are the starts of the hour partitions overlapping [From, To).
	Hours []time.Time
	// SchemaDDL is the schema the archive's JSON lines are read with.
	SchemaDDL string
	// Body is the statement over Relation.
	Body string
	// Columns are the output columns; nil for free SQL (known at run time).
	Columns []Column
	Limit   int
	Free    bool
}

// PartitionDirs are the partition directories (relative to the archive
// root) of a tenant's plan, in time order. For an every-tenant plan it is
// nil: the caller lists the tenants.
func (p *Plan) PartitionDirs() []string {
	if p.Tenant == "" {
		return nil
	}
	out := make([]string, len(p.Hours))
	for i, h := range p.Hours {
		out[i] = archive.Hour{Tenant: p.Tenant, Start: h}.Dir()
	}
	return out
}

var viewRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,127}$`)

// Views names the job's two reads of the partition directories (temp views
// of the JSON lines). Whole reads the hours wholly inside [From, To): the
// archive puts each record in the directory of its event hour
// (internal/archive), so their records need no per-record time check — and
// a query that does not use the event time never parses it. Edge reads the
// hours the range cuts, whose records are checked.
type Views struct{ Whole, Edge string }

// Covers reports whether the hour starting at h lies wholly inside
// [From, To): its directory goes to Views.Whole.
func (p *Plan) Covers(h time.Time) bool {
	return !h.Before(p.From) && !h.Add(time.Hour).After(p.To)
}

// Statement is the full Spark SQL of the plan over the job's views: the
// scope CTE (tenant and time range) followed by Body.
func (p *Plan) Statement(v Views) (string, error) {
	var b strings.Builder
	if err := p.scope(&b, v); err != nil {
		return "", err
	}
	b.WriteString(p.Body)
	return b.String(), nil
}

// ResultJSONOptions are the options of the JSON rows Spark writes for
// WriteStatement: null columns kept (a row has every column, as collected
// rows do), timestamps RFC 3339 in UTC with microseconds.
const ResultJSONOptions = `OPTIONS ('ignoreNullFields' 'false', 'timestampFormat' "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX", 'compression' 'none')`

var writeDirRE = regexp.MustCompile(`^[A-Za-z0-9_.:/@+=,-]+$`)

// WriteStatement is the plan's statement with its rows written by Spark as
// JSON lines into the directory dir (a URL Spark can write, replaced whole),
// not returned: how the rows of a large job reach the archive's file
// system without passing through the service. dir may hold only
// [A-Za-z0-9_.:/@+=,-]. Part files are written in row order (their names
// sort in it).
func (p *Plan) WriteStatement(v Views, dir string) (string, error) {
	if !writeDirRE.MatchString(dir) {
		return "", fmt.Errorf("archivequery: result directory %q: only [A-Za-z0-9_.:/@+=,-] may appear", dir)
	}
	var b strings.Builder
	if err := p.scope(&b, v); err != nil {
		return "", err
	}
	b.WriteString("INSERT OVERWRITE DIRECTORY '" + dir + "' USING json " + ResultJSONOptions + "\n")
	b.WriteString(p.Body)
	return b.String(), nil
}

// scope writes the scope CTE, one line: the rows of the plan's tenant and
// time range, with the event time parsed — every row of the Whole view (in
// range by the layout), the Edge view's rows checked.
func (p *Plan) scope(b *strings.Builder, v Views) error {
	for _, view := range []string{v.Whole, v.Edge} {
		if !viewRE.MatchString(view) {
			return fmt.Errorf("archivequery: view name %q: want [a-z_][a-z0-9_]{0,127}", view)
		}
	}
	if v.Whole == v.Edge {
		return fmt.Errorf("archivequery: views %q: the whole and edge views must differ", v.Whole)
	}
	parsed := func(view string) string {
		return "SELECT *, try_cast(" + quote(record.FieldTimestamp) + " AS TIMESTAMP) AS " + quote(EventTimeColumn) + " FROM " + quote(view)
	}
	tenant := ""
	if p.Tenant != "" {
		tenant = quote(record.FieldTenant) + " = " + Literal(p.Tenant)
	}
	b.WriteString("WITH " + quote(Relation) + " AS (SELECT * FROM (" + parsed(v.Whole) + ")")
	if tenant != "" {
		b.WriteString(" WHERE " + tenant)
	}
	b.WriteString(" UNION ALL SELECT * FROM (" + parsed(v.Edge) + ") WHERE ")
	if tenant != "" {
		b.WriteString(tenant + " AND ")
	}
	fmt.Fprintf(b, "%s >= timestamp_micros(%d) AND %s < timestamp_micros(%d))\n",
		quote(EventTimeColumn), p.From.UnixMicro(), quote(EventTimeColumn), p.To.UnixMicro())
	return nil
}

// SchemaDDL is the Spark schema of an archived record (every field; the
// timestamp as the archived string, parsed by the scope CTE).
func SchemaDDL() string {
	fs := record.Fields()
	cols := make([]string, len(fs))
	for i, f := range fs {
		cols[i] = quote(f.Name) + " " + sparkType(f.Type)
	}
	return strings.Join(cols, ", ")
}

// Caller is who the query runs for, as the service authorized it.
type Caller struct {
	// Tenant is the authorized tenant; "" is allowed only for Admin (free
	// SQL over every tenant).
	Tenant string
	Admin  bool
}

var bucketSizes = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Compile checks q against the record schema and the limits and compiles it
// for the caller. Errors are *Error.
func Compile(q Query, c Caller, lim Limits) (*Plan, error) {
	if c.Tenant != "" && !record.ValidTenant(c.Tenant) {
		return nil, errorf(CodeBadValue, "tenant", "tenant %.64q must match [a-z0-9-]{1,63}", c.Tenant)
	}
	if c.Tenant == "" && !(c.Admin && q.SQL != "") {
		return nil, errorf(CodeBadValue, "tenant", "a tenant is required")
	}
	if err := checkRange(q, lim); err != nil {
		return nil, err
	}
	p := &Plan{Tenant: c.Tenant, From: q.From.UTC(), To: q.To.UTC(), SchemaDDL: SchemaDDL()}
	for h := p.From.Truncate(time.Hour); h.Before(p.To); h = h.Add(time.Hour) {
		p.Hours = append(p.Hours, h)
	}
	limit, err := checkLimit(q.Limit, lim)
	if err != nil {
		return nil, err
	}
	p.Limit = limit
	if q.SQL != "" {
		return compileFree(p, q, c, lim)
	}
	if err := checkSizes(q, lim); err != nil {
		return nil, err
	}
	where := make([]string, 0, len(q.Filters))
	for i, f := range q.Filters {
		s, err := filterSQL(f, fmt.Sprintf("filters[%d]", i), lim)
		if err != nil {
			return nil, err
		}
		where = append(where, s)
	}
	grouped := len(q.GroupBy) > 0 || q.Bucket != "" || len(q.Aggregations) > 0
	if !grouped {
		return compileRecords(p, q, where)
	}
	return compileGrouped(p, q, where)
}

func checkRange(q Query, lim Limits) error {
	switch {
	case q.From.IsZero():
		return errorf(CodeBadRange, "from", "from is required (RFC 3339)")
	case q.To.IsZero():
		return errorf(CodeBadRange, "to", "to is required (RFC 3339)")
	case !q.From.Before(q.To):
		return errorf(CodeBadRange, "to", "to must be after from")
	case q.To.Sub(q.From) > lim.MaxSpan:
		return errorf(CodeBadRange, "to", "the range %s is longer than the limit of %s", q.To.Sub(q.From), lim.MaxSpan)
	case q.From.Year() < 2000 || q.To.Year() > 9999:
		return errorf(CodeBadRange, "from", "the range must lie in years 2000-9999")
	}
	return nil
}

func checkLimit(n int, lim Limits) (int, error) {
	switch {
	case n == 0:
		return lim.DefaultLimit, nil
	case n < 0:
		return 0, errorf(CodeBadValue, "limit", "limit must be positive")
	case n > lim.MaxLimit:
		return 0, errorf(CodeTooLarge, "limit", "limit %d is over the limit of %d", n, lim.MaxLimit)
	}
	return n, nil
}

func checkSizes(q Query, lim Limits) error {
	for _, b := range []struct {
		param  string
		n, max int
	}{
		{"filters", len(q.Filters), lim.MaxFilters}, {"group_by", len(q.GroupBy), lim.MaxGroupBy},
		{"aggregations", len(q.Aggregations), lim.MaxAggregations}, {"order", len(q.Order), lim.MaxOrder},
	} {
		if b.n > b.max {
			return errorf(CodeTooLarge, b.param, "%d entries, over the limit of %d", b.n, b.max)
		}
	}
	return nil
}

func compileFree(p *Plan, q Query, c Caller, lim Limits) (*Plan, error) {
	if !c.Admin {
		return nil, errorf(CodeForbidden, "sql", "free SQL needs the admin role; send a structured query")
	}
	if len(q.Filters) > 0 || len(q.GroupBy) > 0 || q.Bucket != "" || len(q.Aggregations) > 0 || len(q.Order) > 0 {
		return nil, errorf(CodeBadValue, "sql", "free SQL takes only tenant, from, to and limit besides sql")
	}
	if len(q.SQL) > lim.MaxSQLBytes {
		return nil, errorf(CodeTooLarge, "sql", "%d bytes, over the limit of %d", len(q.SQL), lim.MaxSQLBytes)
	}
	if !utf8.ValidString(q.SQL) || strings.ContainsRune(q.SQL, 0) {
		return nil, errorf(CodeBadValue, "sql", "free SQL must be UTF-8 without NUL")
	}
	p.Free = true
	// A subquery can only be a query (no DDL, no second statement), and the
	// outer LIMIT bounds its rows.
	p.Body = "SELECT * FROM (\n" + q.SQL + "\n) AS `q` LIMIT " + strconv.Itoa(p.Limit)
	return p, nil
}

// compileRecords compiles a query without aggregation: matching records.
func compileRecords(p *Plan, q Query, where []string) (*Plan, error) {
	fields := record.Fields()
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = quote(f.Name)
		p.Columns = append(p.Columns, Column{Name: f.Name, Type: columnType(f.Type)})
	}
	var order []string
	seen := map[string]bool{}
	for i, o := range q.Order {
		f, ok := record.Lookup(o.By)
		if !ok {
			return nil, errorf(CodeUnknownField, fmt.Sprintf("order[%d].by", i), "%.64q is not a record field", o.By)
		}
		expr := quote(f.Name)
		if f.Name == record.FieldTimestamp {
			expr = quote(EventTimeColumn)
		}
		if seen[expr] {
			return nil, errorf(CodeBadValue, fmt.Sprintf("order[%d].by", i), "%q is ordered on twice", o.By)
		}
		seen[expr] = true
		order = append(order, orderTerm(expr, o.Desc))
	}
	for _, tie := range []string{quote(EventTimeColumn), quote(record.FieldRequestID)} {
		if !seen[tie] {
			order = append(order, orderTerm(tie, false))
		}
	}
	p.Body = "SELECT " + strings.Join(cols, ", ") + "\nFROM " + quote(Relation) + whereSQL(where) +
		"\nORDER BY " + strings.Join(order, ", ") + "\nLIMIT " + strconv.Itoa(p.Limit)
	return p, nil
}

func compileGrouped(p *Plan, q Query, where []string) (*Plan, error) {
	if len(q.Aggregations) == 0 {
		return nil, errorf(CodeBadValue, "aggregations", "group_by and bucket need at least one aggregation")
	}
	var sel, group []string
	outputs := map[string]bool{}
	if q.Bucket != "" {
		size, ok := bucketSizes[q.Bucket]
		if !ok {
			return nil, errorf(CodeBadValue, "bucket", "bucket %.16q: must be 1m, 5m, 1h or 1d", q.Bucket)
		}
		secs := int64(size / time.Second)
		expr := fmt.Sprintf("timestamp_seconds(div(unix_seconds(%s), %d) * %d)", quote(EventTimeColumn), secs, secs)
		sel = append(sel, expr+" AS "+quote(BucketColumn))
		group = append(group, expr)
		outputs[BucketColumn] = true
		p.Columns = append(p.Columns, Column{BucketColumn, ColTimestamp})
	}
	for i, g := range q.GroupBy {
		param := fmt.Sprintf("group_by[%d]", i)
		f, ok := record.Lookup(g)
		if !ok {
			return nil, errorf(CodeUnknownField, param, "%.64q is not a record field", g)
		}
		if f.Type == record.TypeTimestamp {
			return nil, errorf(CodeBadValue, param, "group on time with bucket, not on timestamp")
		}
		if outputs[f.Name] {
			return nil, errorf(CodeBadValue, param, "%q is grouped on twice", g)
		}
		expr := valueSQL(f)
		sel = append(sel, expr+" AS "+quote(f.Name))
		group = append(group, expr)
		outputs[f.Name] = true
		p.Columns = append(p.Columns, Column{f.Name, columnType(f.Type)})
	}
	for i, a := range q.Aggregations {
		param := fmt.Sprintf("aggregations[%d]", i)
		if !nameRE.MatchString(a.Name) {
			return nil, errorf(CodeBadValue, param+".name", "name %.64q must match [a-z][a-z0-9_]{0,62}", a.Name)
		}
		if outputs[a.Name] {
			return nil, errorf(CodeBadValue, param+".name", "name %q is already an output column", a.Name)
		}
		expr, typ, err := aggregationSQL(a, param)
		if err != nil {
			return nil, err
		}
		outputs[a.Name] = true
		sel = append(sel, expr+" AS "+quote(a.Name))
		p.Columns = append(p.Columns, Column{a.Name, typ})
	}
	var order []string
	ordered := map[string]bool{}
	for i, o := range q.Order {
		if !outputs[o.By] {
			return nil, errorf(CodeUnknownField, fmt.Sprintf("order[%d].by", i), "%.64q is not an output column (bucket, a group_by field or an aggregation name)", o.By)
		}
		if ordered[o.By] {
			return nil, errorf(CodeBadValue, fmt.Sprintf("order[%d].by", i), "%q is ordered on twice", o.By)
		}
		ordered[o.By] = true
		order = append(order, orderTerm(quote(o.By), o.Desc))
	}
	// Ties are broken by the group key, so a limit cuts deterministically.
	for _, c := range p.Columns[:len(group)] {
		if !ordered[c.Name] {
			order = append(order, orderTerm(quote(c.Name), false))
		}
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(sel, ", ") + "\nFROM " + quote(Relation) + whereSQL(where))
	if len(group) > 0 {
		b.WriteString("\nGROUP BY " + strings.Join(group, ", "))
	}
	if len(order) > 0 {
		b.WriteString("\nORDER BY " + strings.Join(order, ", "))
	}
	b.WriteString("\nLIMIT " + strconv.Itoa(p.Limit))
	p.Body = b.String()
	return p, nil
}

func whereSQL(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return "\nWHERE " + strings.Join(where, " AND ")
}

func orderTerm(expr string, desc bool) string {
	if desc {
		return expr + " DESC NULLS LAST"
	}
	return expr + " ASC NULLS FIRST"
}

// valueSQL is a field's value with absent text ("" or null) as null.
func valueSQL(f record.Field) string {
	if isText(f.Type) {
		return "nullif(" + quote(f.Name) + ", '')"
	}
	return quote(f.Name)
}

func aggregationSQL(a Aggregation, param string) (string, ColumnType, error) {
	var f record.Field
	if a.Field != "" || a.Fn != FnCount {
		var ok bool
		if f, ok = record.Lookup(a.Field); !ok {
			return "", "", errorf(CodeUnknownField, param+".field", "%.64q is not a record field", a.Field)
		}
		if f.Type == record.TypeTimestamp {
			return "", "", errorf(CodeBadValue, param+".field", "timestamp cannot be aggregated")
		}
	}
	numeric := f.Type == record.TypeInt || f.Type == record.TypeFloat
	needNumeric := func() error {
		if !numeric {
			return errorf(CodeBadOp, param+".fn", "%s needs a numeric field, %s is %s", a.Fn, f.Name, f.Type)
		}
		return nil
	}
	if a.P != 0 && a.Fn != FnPercentile {
		return "", "", errorf(CodeBadValue, param+".p", "p is only for percentile")
	}
	col := quote(f.Name)
	switch a.Fn {
	case FnCount:
		if a.Field == "" {
			return "count(1)", ColInt, nil
		}
		return "count(" + valueSQL(f) + ")", ColInt, nil
	case FnApproxDistinct:
		return fmt.Sprintf("approx_count_distinct(%s, %s)", valueSQL(f), formatFloat(ApproxDistinctRSD)), ColInt, nil
	case FnSum:
		if err := needNumeric(); err != nil {
			return "", "", err
		}
		if f.Type == record.TypeInt {
			// Exact as DECIMAL(38,0) and saturated at the largest BIGINT,
			// as the catalog's sums (record bounds keep it far below).
			return "CAST(least(coalesce(sum(CAST(" + col + " AS DECIMAL(38,0))), 0), 9223372036854775807) AS BIGINT)", ColInt, nil
		}
		return "coalesce(sum(" + col + "), 0)", ColFloat, nil
	case FnAvg:
		if err := needNumeric(); err != nil {
			return "", "", err
		}
		return "avg(" + col + ")", ColFloat, nil
	case FnMin, FnMax:
		if err := needNumeric(); err != nil {
			return "", "", err
		}
		return string(a.Fn) + "(" + col + ")", columnType(f.Type), nil
	case FnPercentile:
		if err := needNumeric(); err != nil {
			return "", "", err
		}
		if !(a.P > 0 && a.P < 100) {
			return "", "", errorf(CodeBadValue, param+".p", "p must be in (0, 100), e.g. 99.9")
		}
		p := math.Round(a.P*1e6) / 1e8 // 99.9 → 0.999, not 0.9990000000000001
		return fmt.Sprintf("percentile_approx(%s, %s, %d)", col, formatFloat(p), PercentileAccuracy), columnType(f.Type), nil
	}
	return "", "", errorf(CodeBadOp, param+".fn", "fn %.32q: must be count, sum, avg, min, max, percentile or approx_distinct", a.Fn)
}

// maxAbsNumber bounds numeric filter values: far above every record bound
// (MaxBytes is 2^40), and short enough to print without an exponent.
const maxAbsNumber = 1e15

func filterSQL(f Filter, param string, lim Limits) (string, error) {
	rf, ok := record.Lookup(f.Field)
	if !ok {
		return "", errorf(CodeUnknownField, param+".field", "%.64q is not a record field", f.Field)
	}
	if rf.Type == record.TypeTimestamp {
		return "", errorf(CodeBadValue, param+".field", "the time range is from/to, not a filter on timestamp")
	}
	col := quote(rf.Name)
	text := isText(rf.Type)
	one := func() (string, error) { return literalOf(rf, f.Value, param+".value", lim) }
	switch f.Op {
	case catalog.OpEq, catalog.OpNe, catalog.OpLt, catalog.OpLte, catalog.OpGt, catalog.OpGte:
		if text && f.Op != catalog.OpEq && f.Op != catalog.OpNe {
			return "", errorf(CodeBadOp, param+".op", "%s is for numeric fields; %s is %s", f.Op, rf.Name, rf.Type)
		}
		v, err := one()
		if err != nil {
			return "", err
		}
		sym := map[catalog.Op]string{catalog.OpEq: "=", catalog.OpNe: "<>", catalog.OpLt: "<", catalog.OpLte: "<=", catalog.OpGt: ">", catalog.OpGte: ">="}[f.Op]
		if f.Op == catalog.OpNe { // an absent field is "not equal", as the catalog's Go predicates say
			return "(" + absentSQL(rf) + " OR " + col + " <> " + v + ")", nil
		}
		return "(" + col + " " + sym + " " + v + ")", nil
	case catalog.OpPrefix:
		if !text {
			return "", errorf(CodeBadOp, param+".op", "prefix is for text fields; %s is %s", rf.Name, rf.Type)
		}
		v, err := one()
		if err != nil {
			return "", err
		}
		return "startswith(" + col + ", " + v + ")", nil
	case catalog.OpIn:
		var raw []json.RawMessage
		if err := json.Unmarshal(f.Value, &raw); err != nil || raw == nil {
			return "", errorf(CodeBadValue, param+".value", "in takes a JSON array of values")
		}
		if len(raw) == 0 {
			return "", errorf(CodeBadValue, param+".value", "in takes at least one value")
		}
		if len(raw) > lim.MaxInList {
			return "", errorf(CodeTooLarge, param+".value", "%d values, over the limit of %d", len(raw), lim.MaxInList)
		}
		vals := make([]string, len(raw))
		for j, r := range raw {
			v, err := literalOf(rf, r, fmt.Sprintf("%s.value[%d]", param, j), lim)
			if err != nil {
				return "", err
			}
			vals[j] = v
		}
		return "(" + col + " IN (" + strings.Join(vals, ", ") + "))", nil
	}
	return "", errorf(CodeBadOp, param+".op", "op %.32q: must be eq, ne, lt, lte, gt, gte, in or prefix", f.Op)
}

func absentSQL(f record.Field) string {
	if isText(f.Type) {
		return quote(f.Name) + " IS NULL OR " + quote(f.Name) + " = ''"
	}
	return quote(f.Name) + " IS NULL"
}

// literalOf parses one JSON value for field f and renders it as a typed
// Spark literal.
func literalOf(f record.Field, raw json.RawMessage, param string, lim Limits) (string, error) {
	if len(raw) == 0 {
		return "", errorf(CodeBadValue, param, "a value is required")
	}
	switch f.Type {
	case record.TypeInt, record.TypeFloat:
		var n json.Number
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil {
			return "", errorf(CodeBadValue, param, "%s is %s: want a JSON number", f.Name, f.Type)
		}
		if f.Type == record.TypeInt {
			i, err := strconv.ParseInt(n.String(), 10, 64)
			if err != nil || math.Abs(float64(i)) > maxAbsNumber {
				return "", errorf(CodeBadValue, param, "%s is an integer field: want an integer of at most %g", f.Name, maxAbsNumber)
			}
			return strconv.FormatInt(i, 10) + "L", nil
		}
		v, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || math.Abs(v) > maxAbsNumber {
			return "", errorf(CodeBadValue, param, "%s: want a number of at most %g in magnitude", f.Name, maxAbsNumber)
		}
		return strconv.FormatFloat(v, 'f', -1, 64) + "D", nil
	default:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errorf(CodeBadValue, param, "%s is %s: want a JSON string", f.Name, f.Type)
		}
		if len(s) > lim.MaxValueBytes {
			return "", errorf(CodeTooLarge, param, "%d bytes, over the limit of %d", len(s), lim.MaxValueBytes)
		}
		return Literal(s), nil
	}
}

// Literal renders s as a Spark SQL string literal that no input can escape:
// '…' when every byte is in [A-Za-z0-9 _.,:/@+=-], else a binary literal of
// its UTF-8 bytes in hex, cast to STRING.
func Literal(s string) string {
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			return "CAST(X'" + strings.ToUpper(hex.EncodeToString([]byte(s))) + "' AS STRING)"
		}
	}
	return "'" + s + "'"
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" _.,:/@+=-", c) >= 0
}

func isText(t record.Type) bool { return t == record.TypeString || t == record.TypeIP }

func columnType(t record.Type) ColumnType {
	switch t {
	case record.TypeInt:
		return ColInt
	case record.TypeFloat:
		return ColFloat
	default:
		return ColString
	}
}

func sparkType(t record.Type) string {
	switch t {
	case record.TypeInt:
		return "BIGINT"
	case record.TypeFloat:
		return "DOUBLE"
	default:
		return "STRING"
	}
}

// quote back-quotes an identifier. Callers pass only names checked against
// the record schema, nameRE or viewRE, none of which holds a back-quote.
func quote(ident string) string { return "`" + ident + "`" }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
