package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/sparkconnect"
)

// SparkEngine runs plans on the Spark Connect pool (internal/sparkconnect):
// warm sessions per tenant (the seed's context pool), reused across the
// tenant's jobs but held by one running job at a time, so cancelling a job
// interrupts exactly its Spark operations (Session.Interrupt interrupts
// everything in a session). Each job reads its partitions through a temp
// view of its own (CREATE TEMPORARY VIEW … USING json over the existing hour
// directories), runs the plan's statement and drops the view.
//
// Spark never sees a directory of another tenant: the view's path lists the
// caller's hour directories only, and the statement filters rows on tenant
// and time again.
type SparkEngine struct {
	client *sparkconnect.Client
	fs     archive.FS // to list the hour directories that exist
	root   string     // the archive root as Spark reads it (hdfs://nn:port/path or file:///dir)
	log    *slog.Logger

	mu     sync.Mutex
	idle   map[string][]*sparkconnect.Session // warm sessions by tenant; "" for admin every-tenant SQL
	inUse  map[string]*sparkconnect.Session   // by job id
	closed bool
}

// maxIdlePerTenant bounds the warm sessions kept per tenant; more (opened
// while the tenant ran jobs in parallel) are closed when released.
const maxIdlePerTenant = 2

var safeRootRE = regexp.MustCompile(`^[A-Za-z0-9_.:/@+=,-]+$`)

// NewSparkEngine builds the engine; it does no I/O. root is the archive root
// URL as Spark reads it.
func NewSparkEngine(client *sparkconnect.Client, fsys archive.FS, root string, log *slog.Logger) (*SparkEngine, error) {
	root = strings.TrimRight(root, "/")
	if !strings.Contains(root, "://") {
		root = "file://" + root
	}
	if !safeRootRE.MatchString(root) {
		return nil, fmt.Errorf("query: archive root %q: only [A-Za-z0-9_.:/@+=,-] may appear in a root Spark reads", root)
	}
	return &SparkEngine{client: client, fs: fsys, root: root, log: log.With("component", "query-spark"), idle: map[string][]*sparkconnect.Session{}, inUse: map[string]*sparkconnect.Session{}}, nil
}

// acquire takes a warm session of the tenant, or opens one.
func (e *SparkEngine) acquire(ctx context.Context, tenant string) (*sparkconnect.Session, error) {
	e.mu.Lock()
	if l := e.idle[tenant]; len(l) > 0 {
		s := l[len(l)-1]
		e.idle[tenant] = l[:len(l)-1]
		e.mu.Unlock()
		return s, nil
	}
	e.mu.Unlock()
	s, err := e.client.Open(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Exec(ctx, "SET spark.sql.session.timeZone=UTC"); err != nil {
		closeSession(s)
		return nil, err
	}
	return s, nil
}

// release gives a session back to the tenant's warm ones (or closes it).
func (e *SparkEngine) release(tenant string, s *sparkconnect.Session) {
	e.mu.Lock()
	if !e.closed && len(e.idle[tenant]) < maxIdlePerTenant {
		e.idle[tenant] = append(e.idle[tenant], s)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	closeSession(s)
}

func closeSession(s *sparkconnect.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// Close releases every warm session; sessions in use are closed when their
// job releases them.
func (e *SparkEngine) Close(ctx context.Context) error {
	e.mu.Lock()
	idle := e.idle
	e.idle = map[string][]*sparkconnect.Session{}
	e.closed = true
	e.mu.Unlock()
	var errs []error
	for _, l := range idle {
		for _, s := range l {
			errs = append(errs, s.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// Run implements Engine. A session lost mid-job (its server died) is
// retried once on a new session, which HAProxy gives to a live server:
// every plan is read-only and a written result replaces its directory
// whole, so running it again is safe. Unavailable and a second loss fail
// the job with spark_unavailable.
func (e *SparkEngine) Run(ctx context.Context, id, tenant string, plan *archivequery.Plan, out string) (*Result, error) {
	dirs, err := e.existingDirs(ctx, plan)
	if err != nil {
		return nil, &EngineError{Code: JobCodeSparkUnavailable, Err: fmt.Errorf("listing the archive: %w", err)}
	}
	var res *Result
	attempts := 0
	for {
		attempts++
		res, err = e.runOnce(ctx, id, tenant, plan, dirs, out)
		if errors.Is(err, sparkconnect.ErrSessionLost) && attempts == 1 && ctx.Err() == nil {
			e.log.Warn("session lost mid-job; running it again on a new session", "job", id, "error", err)
			continue
		}
		break
	}
	if err == nil {
		res.Attempts = attempts
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if errors.Is(err, sparkconnect.ErrSessionLost) || errors.Is(err, sparkconnect.ErrUnavailable) {
		if attempts > 1 {
			err = fmt.Errorf("the Spark Connect server of the job's session died, and the one it ran again on too: %w", err)
		} else if errors.Is(err, sparkconnect.ErrSessionLost) {
			err = fmt.Errorf("the Spark Connect server of the job's session died: %w", err)
		}
		return nil, &EngineError{Code: JobCodeSparkUnavailable, Err: err, Attempts: attempts}
	}
	return nil, &EngineError{Code: JobCodeSparkError, Err: err, Attempts: attempts}
}

// sessionOf is the id of the Spark Connect session running job id ("" if
// none): for logs and for the tests that kill its server.
func (e *SparkEngine) sessionOf(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.inUse[id]; s != nil {
		return s.ID()
	}
	return ""
}

func (e *SparkEngine) runOnce(ctx context.Context, id, tenant string, plan *archivequery.Plan, dirs jobDirs, out string) (_ *Result, err error) {
	s, err := e.acquire(ctx, tenant)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.inUse[id] = s
	e.mu.Unlock()
	e.log.Debug("job running", "job", id, "session", s.ID())
	defer func() {
		e.mu.Lock()
		delete(e.inUse, id)
		e.mu.Unlock()
		if errors.Is(err, sparkconnect.ErrSessionLost) {
			go closeSession(s) // its server died or restarted: never reuse it
			return
		}
		e.release(tenant, s)
	}()
	// The session is this job's alone: when the job is cancelled (or its
	// synchronous caller goes away), interrupt its Spark operations, not
	// just the call waiting for them.
	stop := context.AfterFunc(ctx, func() {
		ictx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Interrupt(ictx); err != nil {
			e.log.Warn("interrupting a cancelled job's Spark operations", "job", id, "error", err)
		}
	})
	defer stop()
	view, create, drop := e.views(id, dirs)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, d := range drop {
			_ = s.Exec(dctx, d)
		}
	}()
	for _, c := range create {
		if err := s.Exec(ctx, c); err != nil {
			return nil, fmt.Errorf("create the job's views: %w", err)
		}
	}
	if out != "" {
		return e.write(ctx, s, plan, view, out)
	}
	stmt, err := plan.Statement(view)
	if err != nil {
		return nil, err
	}
	tbl, err := s.SQL(ctx, stmt)
	if err != nil {
		return nil, err
	}
	if tbl == nil {
		return &Result{Columns: plan.Columns, Rows: []map[string]any{}}, nil
	}
	defer tbl.Release()
	return tableRows(tbl, plan.Columns)
}

// write has Spark write the plan's rows into out (JSON lines, replacing
// what an earlier attempt left) and count them there: the rows never pass
// through the service. Free SQL's columns are read from the statement's
// schema (a zero-row run of it).
func (e *SparkEngine) write(ctx context.Context, s *sparkconnect.Session, plan *archivequery.Plan, view archivequery.Views, out string) (*Result, error) {
	dir := e.root + "/" + out
	stmt, err := plan.WriteStatement(view, dir)
	if err != nil {
		return nil, err
	}
	if err := s.Exec(ctx, stmt); err != nil {
		return nil, fmt.Errorf("write the rows to %s: %w", out, err)
	}
	// text, not json: a count needs no schema, and reads each line once.
	tbl, err := s.SQL(ctx, "SELECT count(*) AS n FROM text.`"+dir+"`")
	if err != nil {
		return nil, fmt.Errorf("count the rows written to %s: %w", out, err)
	}
	var n int64
	if tbl != nil {
		defer tbl.Release()
		if c, ok := tbl.Column(0).Data().Chunk(0).(*array.Int64); ok && c.Len() == 1 {
			n = c.Value(0)
		}
	}
	cols := plan.Columns
	if cols == nil {
		stmt, err := plan.Statement(view)
		if err != nil {
			return nil, err
		}
		schema, err := s.SQL(ctx, "SELECT * FROM ("+stmt+") AS `s` LIMIT 0")
		if err != nil {
			return nil, fmt.Errorf("read the columns of the statement: %w", err)
		}
		if schema != nil {
			res, _ := tableRows(schema, nil)
			schema.Release()
			cols = res.Columns
		}
	}
	return &Result{Columns: cols, Written: true, Count: int(n)}, nil
}

// jobDirs are a job's hour directories that exist (Spark fails on a path
// that matches nothing), split as archivequery.Views reads them.
type jobDirs struct{ whole, edge []string }

// existingDirs lists the plan's hour directories that exist.
func (e *SparkEngine) existingDirs(ctx context.Context, plan *archivequery.Plan) (jobDirs, error) {
	var tenants []string
	if plan.Tenant != "" {
		tenants = []string{plan.Tenant}
	} else {
		entries, err := e.fs.ReadDir(ctx, ".")
		if err != nil {
			return jobDirs{}, err
		}
		for _, en := range entries {
			if t, ok := strings.CutPrefix(en.Name, "tenant="); ok && en.Dir && record.ValidTenant(t) {
				tenants = append(tenants, t)
			}
		}
	}
	var dirs jobDirs
	for _, t := range tenants {
		hours, err := archive.ListHours(ctx, e.fs, t, plan.From.Truncate(time.Hour), plan.To)
		if err != nil {
			return jobDirs{}, err
		}
		for _, h := range hours {
			if plan.Covers(h.Start) {
				dirs.whole = append(dirs.whole, h.Dir())
			} else {
				dirs.edge = append(dirs.edge, h.Dir())
			}
		}
	}
	return dirs, nil
}

// views names job id's two views and returns the statements that create
// and drop them.
func (e *SparkEngine) views(id string, dirs jobDirs) (v archivequery.Views, create, drop []string) {
	v = archivequery.Views{Whole: "hg_job_" + id + "_w", Edge: "hg_job_" + id + "_e"}
	create = []string{e.viewSQL(v.Whole, dirs.whole), e.viewSQL(v.Edge, dirs.edge)}
	drop = []string{"DROP VIEW IF EXISTS `" + v.Whole + "`", "DROP VIEW IF EXISTS `" + v.Edge + "`"}
	return v, create, drop
}

// viewSQL creates the job's view: the JSON lines of dirs with the record
// schema, or an empty relation of that schema when there are none.
func (e *SparkEngine) viewSQL(view string, dirs []string) string {
	if len(dirs) == 0 {
		var cols []string
		for _, f := range record.Fields() {
			typ := "STRING"
			switch f.Type {
			case record.TypeInt:
				typ = "BIGINT"
			case record.TypeFloat:
				typ = "DOUBLE"
			}
			cols = append(cols, "CAST(NULL AS "+typ+") AS `"+f.Name+"`")
		}
		return "CREATE OR REPLACE TEMPORARY VIEW `" + view + "` AS SELECT " + strings.Join(cols, ", ") + " WHERE false"
	}
	// One Hadoop glob over the directories: {a,b,...} alternatives may hold
	// slashes. Names are [a-z0-9=/-] and the root was checked, so the
	// literal needs no escaping.
	path := e.root + "/{" + strings.Join(dirs, ",") + "}"
	return "CREATE OR REPLACE TEMPORARY VIEW `" + view + "` (" + archivequery.SchemaDDL() + ") USING json OPTIONS (path '" + path + "')"
}

// tableRows converts an Arrow result to JSON-ready rows; columns come from
// the plan, or from the table for free SQL.
func tableRows(tbl arrow.Table, cols []archivequery.Column) (*Result, error) {
	schema := tbl.Schema()
	if cols == nil {
		for _, f := range schema.Fields() {
			cols = append(cols, archivequery.Column{Name: f.Name, Type: arrowColumnType(f.Type)})
		}
	}
	rows := make([]map[string]any, 0, tbl.NumRows())
	tr := array.NewTableReader(tbl, 1024)
	defer tr.Release()
	for tr.Next() {
		rec := tr.Record()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make(map[string]any, rec.NumCols())
			for c := 0; c < int(rec.NumCols()); c++ {
				row[schema.Field(c).Name] = arrowValue(rec.Column(c), i)
			}
			rows = append(rows, row)
		}
	}
	if err := tr.Err(); err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	return &Result{Columns: cols, Rows: rows}, nil
}

func arrowValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch v := a.(type) {
	case *array.Int64:
		return v.Value(i)
	case *array.Int32:
		return int64(v.Value(i))
	case *array.Float64:
		return v.Value(i)
	case *array.String:
		return v.Value(i)
	case *array.Boolean:
		return v.Value(i)
	case *array.Timestamp:
		unit := v.DataType().(*arrow.TimestampType).Unit
		return v.Value(i).ToTime(unit).UTC().Format(time.RFC3339Nano)
	}
	return a.GetOneForMarshal(i)
}

func arrowColumnType(t arrow.DataType) archivequery.ColumnType {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		return archivequery.ColInt
	case arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128:
		return archivequery.ColFloat
	case arrow.TIMESTAMP:
		return archivequery.ColTimestamp
	}
	return archivequery.ColString
}
