package openapitest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Version is the OpenAPI version every Hourglass document declares.
const Version = "3.0.3"

// Spec is a loaded, valid OpenAPI document and the exchanges checked
// against it so far.
type Spec struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]bool // "METHOD /path status"
}

// Load parses an OpenAPI 3.0.3 document, validates the document itself
// (openapi3's Validate: structure, references, schemas, examples) and
// prepares it for checking responses. It fails the test when the document
// is not valid.
func Load(t testing.TB, doc []byte) *Spec {
	t.Helper()
	s, err := load(doc)
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	return s
}

func load(doc []byte) (*Spec, error) {
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("parse the document: %w", err)
	}
	if d.OpenAPI != Version {
		return nil, fmt.Errorf("the document declares openapi %q; Hourglass documents are %s", d.OpenAPI, Version)
	}
	if err := d.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the document is not valid OpenAPI: %w", err)
	}
	closeObjects(d)
	r, err := gorillamux.NewRouter(d)
	if err != nil {
		return nil, fmt.Errorf("route the document's paths: %w", err)
	}
	return &Spec{doc: d, router: r, seen: map[string]bool{}}, nil
}

// Doc is the parsed document (with objects closed, see the package doc).
func (s *Spec) Doc() *openapi3.T { return s.doc }

// Option adds a check for a streamed body.
type Option func(*options)

type options struct {
	line, last string // NDJSON component schemas
	event      string // SSE component schema
}

// NDJSON checks every line of an application/x-ndjson body against the
// component schema named line, and the last line against last instead when
// last is not "" (the meta line of a page, for instance).
func NDJSON(line, last string) Option {
	return func(o *options) { o.line, o.last = line, last }
}

// SSE checks the data of every event of a text/event-stream body against
// the component schema named data.
func SSE(data string) Option {
	return func(o *options) { o.event = data }
}

// Check validates one exchange: req as sent, res as received (its Body is
// not read) and the body read from it. Problems fail the test with
// t.Errorf, so Check may be called from any goroutine.
func (s *Spec) Check(t testing.TB, req *http.Request, res *http.Response, body []byte, opts ...Option) {
	t.Helper()
	if err := s.Validate(req, res, body, opts...); err != nil {
		t.Errorf("openapitest: %s %s → %d: %v\nbody: %s", req.Method, req.URL.RequestURI(), res.StatusCode, err, excerpt(body))
	}
}

// Validate is Check returning the problem instead of failing a test.
func (s *Spec) Validate(req *http.Request, res *http.Response, body []byte, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("not in the document: %w", err)
	}
	s.mu.Lock()
	s.seen[coverKey(route.Method, route.Path, strconv.Itoa(res.StatusCode))] = true
	s.mu.Unlock()
	if req.Method == http.MethodHead {
		return nil // no body; kin-openapi skips HEAD
	}

	resp := route.Operation.Responses.Status(res.StatusCode)
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s", res.StatusCode, route.Method, route.Path)
	}
	ct := res.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	content := resp.Value.Content
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("status %d documents no body, got %d bytes of %q", res.StatusCode, len(body), ct)
		}
		return nil
	}
	media := content.Get(ct)
	if media == nil {
		return fmt.Errorf("Content-Type %q is not documented for status %d (documented: %s)", ct, res.StatusCode, strings.Join(slices.Sorted(maps.Keys(content)), ", "))
	}

	// kin-openapi decodes JSON and text bodies; streamed media types are
	// checked here, so its validator looks at the status and headers only.
	streamed := mt == "application/x-ndjson" || mt == "text/event-stream" || !decodable(mt)
	fopts := &openapi3filter.Options{
		IncludeResponseStatus:   true,
		MultiError:              true,
		ExcludeResponseBody:     streamed,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: fopts},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                fopts,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	switch mt {
	case "application/x-ndjson":
		return s.checkLines(body, o)
	case "text/event-stream":
		return s.checkEvents(body, o)
	}
	return nil
}

// decodable reports whether kin-openapi has a body decoder for mt.
func decodable(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain"
}

func (s *Spec) schema(name string) (*openapi3.Schema, error) {
	if s.doc.Components == nil {
		return nil, fmt.Errorf("no component schema %q: the document has no components", name)
	}
	ref := s.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return nil, fmt.Errorf("no component schema %q", name)
	}
	return ref.Value, nil
}

func (s *Spec) checkLines(body []byte, o options) error {
	if o.line == "" {
		return nil
	}
	each, err := s.schema(o.line)
	if err != nil {
		return err
	}
	last := each
	if o.last != "" {
		if last, err = s.schema(o.last); err != nil {
			return err
		}
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(body) == 0 {
		lines = nil
	}
	if o.last != "" && len(lines) == 0 {
		return fmt.Errorf("NDJSON body without its last line (%s)", o.last)
	}
	for i, line := range lines {
		sch, name := each, o.line
		if i == len(lines)-1 {
			sch, name = last, cmp.Or(o.last, o.line)
		}
		if err := visit(sch, line); err != nil {
			return fmt.Errorf("NDJSON line %d (%s): %w: %s", i+1, name, err, excerpt(line))
		}
	}
	return nil
}

func (s *Spec) checkEvents(body []byte, o options) error {
	if o.event == "" {
		return nil
	}
	sch, err := s.schema(o.event)
	if err != nil {
		return err
	}
	// An event is a block of lines ended by an empty line; its data is its
	// data: lines joined by newlines. Comments (":") carry no data.
	var data []string
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	flush := func() error {
		if data == nil {
			return nil
		}
		n++
		d := strings.Join(data, "\n")
		data = nil
		if err := visit(sch, []byte(d)); err != nil {
			return fmt.Errorf("event %d data (%s): %w: %s", n, o.event, err, excerpt([]byte(d)))
		}
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if err := flush(); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return flush()
}

// visit decodes one JSON value and checks it against sch as a response.
func visit(sch *openapi3.Schema, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.MultiErrors(), openapi3.DisableSchemaErrorDetails())
}

// Handler wraps h: every exchange it serves is checked against the document
// when h returns (the body is passed through as it is written, so streams
// still stream). Problems fail the test with t.Errorf.
func (s *Spec) Handler(t testing.TB, h http.Handler, opts ...Option) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		hdr := w.Header().Clone()
		if _, set := hdr["Content-Type"]; !set && rec.body.Len() > 0 {
			// net/http sniffs it into the answer, not into w.Header().
			hdr.Set("Content-Type", http.DetectContentType(rec.body.Bytes()[:min(rec.body.Len(), 512)]))
		}
		res := &http.Response{StatusCode: rec.status, Header: hdr, Request: r}
		s.Check(t, r, res, rec.body.Bytes(), opts...)
	})
}

// recorder passes a response through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Uncovered lists the documented responses no checked exchange had, as
// "METHOD /path status", sorted: a test states which it cannot reach.
func (s *Spec) Uncovered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for path, item := range s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if k := coverKey(method, path, status); status != "default" && !s.seen[k] {
					out = append(out, k)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func coverKey(method, path, status string) string { return method + " " + path + " " + status }

// closeObjects makes every object schema with properties, and nothing said
// about additional ones, refuse properties it does not name; members of an
// allOf of several schemas stay open (each names only part of the object).
func closeObjects(d *openapi3.T) {
	composed := map[*openapi3.Schema]bool{}
	var all []*openapi3.Schema
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		sch := ref.Value
		seen[sch] = true
		all = append(all, sch)
		if len(sch.AllOf) > 1 {
			for _, m := range sch.AllOf {
				if m != nil && m.Value != nil {
					composed[m.Value] = true
				}
			}
		}
		for _, list := range []openapi3.SchemaRefs{sch.AllOf, sch.AnyOf, sch.OneOf} {
			for _, m := range list {
				walk(m)
			}
		}
		for _, p := range sch.Properties {
			walk(p)
		}
		walk(sch.Items)
		walk(sch.Not)
		walk(sch.AdditionalProperties.Schema)
	}
	if d.Components != nil {
		for _, ref := range d.Components.Schemas {
			walk(ref)
		}
	}
	for _, item := range d.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
				for _, h := range resp.Value.Headers {
					if h.Value != nil {
						walk(h.Value.Schema)
					}
				}
			}
		}
	}
	no := false
	for _, sch := range all {
		ap := sch.AdditionalProperties
		if len(sch.Properties) > 0 && ap.Has == nil && ap.Schema == nil && !composed[sch] {
			sch.AdditionalProperties.Has = &no
		}
	}
}

// excerpt is b for a failure message, cut to 2 KiB.
func excerpt(b []byte) string {
	const limit = 2048
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
