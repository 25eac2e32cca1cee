package archivequery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// Query is a structured query as a client sends it (JSON).
type Query struct {
	// Tenant names the tenant to read. The service authorizes it against
	// the caller's token and passes the authorized tenant to Compile; a
	// caller with exactly one tenant may leave it out.
	Tenant       string        `json:"tenant,omitempty"`
	From         time.Time     `json:"from"`
	To           time.Time     `json:"to"`
	Filters      []Filter      `json:"filters,omitempty"`
	GroupBy      []string      `json:"group_by,omitempty"`
	Bucket       string        `json:"bucket,omitempty"`
	Aggregations []Aggregation `json:"aggregations,omitempty"`
	Order        []Order       `json:"order,omitempty"`
	Limit        int           `json:"limit,omitempty"`
	// SQL is free Spark SQL over the relation `archive`; admin callers only.
	SQL string `json:"sql,omitempty"`
}

// Filter is one condition on a record field; all filters must hold.
type Filter struct {
	Field string          `json:"field"`
	Op    catalog.Op      `json:"op"`
	Value json.RawMessage `json:"value"`
}

// Aggregation is one computed output column of a grouped query.
type Aggregation struct {
	Name  string  `json:"name"`
	Fn    Fn      `json:"fn"`
	Field string  `json:"field,omitempty"`
	P     float64 `json:"p,omitempty"` // percentile: in (0, 100)
}

// Fn is an aggregate function.
type Fn string

// The aggregate functions of a query (the catalog's, minus ratio, with a
// single percentile per output column).
const (
	FnCount          Fn = "count"
	FnSum            Fn = "sum"
	FnAvg            Fn = "avg"
	FnMin            Fn = "min"
	FnMax            Fn = "max"
	FnPercentile     Fn = "percentile"
	FnApproxDistinct Fn = "approx_distinct"
)

// Order is one sort key: a group-by field, "bucket", an aggregation name, or
// (for record queries) a record field.
type Order struct {
	By   string `json:"by"`
	Desc bool   `json:"desc,omitempty"`
}

// Error codes of a refused query (machine-readable; the service answers 400
// with them, or 403 for CodeForbidden).
const (
	CodeMalformed    = "malformed_query" // not JSON of the documented shape
	CodeUnknownField = "unknown_field"   // an identifier the record schema does not have
	CodeBadValue     = "bad_value"       // a value of the wrong type or out of range
	CodeBadOp        = "bad_op"          // an operator or function not allowed there
	CodeBadRange     = "bad_range"       // from/to missing, reversed or too long
	CodeTooLarge     = "too_large"       // a bound of Limits exceeded
	CodeForbidden    = "forbidden"       // free SQL without the admin role
)

// Error is a refused query: a code, the JSON path of the offending part
// (e.g. "filters[2].value") and a message for humans.
type Error struct {
	Code    string `json:"code"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Param == "" {
		return e.Code + ": " + e.Message
	}
	return e.Code + ": " + e.Param + ": " + e.Message
}

func errorf(code, param, format string, args ...any) *Error {
	return &Error{Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Decode parses a query strictly: unknown keys, trailing data and bodies
// over lim.MaxBodyBytes are refused.
func Decode(data []byte, lim Limits) (Query, error) {
	var q Query
	if len(data) > lim.MaxBodyBytes {
		return q, errorf(CodeTooLarge, "", "the query is %d bytes, over the limit of %d", len(data), lim.MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return Query{}, errorf(CodeMalformed, "", "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Query{}, errorf(CodeMalformed, "", "trailing data after the query object")
	}
	return q, nil
}
