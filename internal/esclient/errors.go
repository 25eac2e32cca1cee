package esclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Error is a non-2xx answer of the cluster.
type Error struct {
	What     string // what was being done, e.g. "create index logs-1"
	Status   int    // HTTP status
	Type     string // the server's error type, e.g. "resource_already_exists_exception"
	Reason   string // the server's reason, or the start of the body when it has none
	CausedBy string // "type: reason" of the underlying cause, when given
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d %s", e.What, e.Status, http.StatusText(e.Status))
	if e.Type != "" {
		b.WriteString(": " + e.Type)
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.CausedBy != "" {
		b.WriteString(" (caused by " + e.CausedBy + ")")
	}
	return b.String()
}

// HasStatus reports whether err is, or wraps, an *Error with the given HTTP status.
func HasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Check turns the result of an esapi request into an error:
// a transport error wrapped with what, or an *Error for a non-2xx answer (whose
// body Check reads and closes). On nil the caller owns res.Body and must close it.
func Check(res *esapi.Response, err error, what string) error {
	if err != nil {
		if res != nil && res.Body != nil {
			res.Body.Close()
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if res == nil {
		return fmt.Errorf("%s: no response", what)
	}
	if !res.IsError() {
		return nil
	}
	var body []byte
	if res.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	return decodeError(what, res.StatusCode, body)
}

// cause is the "error" object of Elasticsearch and OpenSearch; some endpoints
// send a plain string instead.
type cause struct {
	Type     string `json:"type"`
	Reason   string `json:"reason"`
	CausedBy *cause `json:"caused_by"`
}

func (c *cause) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		c.Reason = s
		return nil
	}
	type plain cause
	return json.Unmarshal(b, (*plain)(c))
}

func (c *cause) String() string {
	if c == nil {
		return ""
	}
	if c.Type == "" {
		return c.Reason
	}
	return c.Type + ": " + c.Reason
}

func decodeError(what string, status int, body []byte) *Error {
	e := &Error{What: what, Status: status}
	var doc struct {
		Error *cause `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil && doc.Error != nil {
		e.Type, e.Reason = doc.Error.Type, doc.Error.Reason
		e.CausedBy = doc.Error.CausedBy.String()
		return e
	}
	e.Reason = strings.TrimSpace(string(body))
	if len(e.Reason) > 500 {
		e.Reason = e.Reason[:500] + "..."
	}
	return e
}
