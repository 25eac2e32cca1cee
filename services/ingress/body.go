package ingress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Request-level reason codes (records have their own, from internal/record).
const (
	CodeMissingKey       = "missing_api_key"
	CodeInvalidKey       = "invalid_api_key"
	CodeKeyDisabled      = "api_key_disabled"
	CodeUnsupportedType  = "unsupported_media_type"
	CodeUnsupportedEnc   = "unsupported_content_encoding"
	CodeBodyTooLarge     = "body_too_large"
	CodeInflatedTooLarge = "inflated_body_too_large"
	CodeLineTooLong      = "line_too_long"
	CodeTooManyRecords   = "too_many_records"
	CodeMalformedBody    = "malformed_body"
	CodeBadGzip          = "bad_gzip"
	CodeEmptyBody        = "empty_body"
	CodeRateLimited      = "rate_limited"
	CodeSinkUnavailable  = "sink_unavailable"
	CodeTenantMismatch   = "tenant_mismatch"
	CodeMethod           = "method_not_allowed"
)

// requestError is a request-level failure: an HTTP status and a reason code.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.code + ": " + e.msg }

func reqErr(status int, code, format string, args ...any) *requestError {
	return &requestError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

var errInflatedTooLarge = errors.New("inflated body over its limit")

// cappedReader fails with errInflatedTooLarge as soon as more than n bytes
// were read: a gzip bomb stops at the limit instead of inflating on.
type cappedReader struct {
	r io.Reader
	n int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errInflatedTooLarge
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if c.n < 0 {
		return k, errInflatedTooLarge
	}
	return k, err
}

// readRecords reads the body of POST /v1/logs into one byte slice per
// record, enforcing every limit of cfg while reading.
func readRecords(w http.ResponseWriter, r *http.Request, cfg Config) ([][]byte, *requestError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	var array bool
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines":
	case "application/json":
		array = true
	default:
		return nil, reqErr(http.StatusUnsupportedMediaType, CodeUnsupportedType,
			"Content-Type %q: use application/x-ndjson (one record per line) or application/json (an array)", r.Header.Get("Content-Type"))
	}

	body := io.Reader(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, classify(err, cfg, reqErr(http.StatusBadRequest, CodeBadGzip, "body is not gzip: %v", err))
		}
		defer gz.Close()
		body = &cappedReader{r: gz, n: cfg.MaxInflatedBytes}
	default:
		return nil, reqErr(http.StatusUnsupportedMediaType, CodeUnsupportedEnc, "Content-Encoding %q: only gzip is supported", enc)
	}

	var recs [][]byte
	var rerr *requestError
	if array {
		recs, rerr = readArray(body, cfg)
	} else {
		recs, rerr = readNDJSON(body, cfg)
	}
	if rerr != nil {
		return nil, rerr
	}
	if len(recs) == 0 {
		return nil, reqErr(http.StatusBadRequest, CodeEmptyBody, "the body holds no record")
	}
	return recs, nil
}

// classify turns a read error into the limit it hit, or fallback.
func classify(err error, cfg Config, fallback *requestError) *requestError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return reqErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "body over %d bytes", cfg.MaxBodyBytes)
	case errors.Is(err, errInflatedTooLarge):
		return reqErr(http.StatusRequestEntityTooLarge, CodeInflatedTooLarge, "decompressed body over %d bytes", cfg.MaxInflatedBytes)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF) && fallback.code == CodeBadGzip:
		return reqErr(http.StatusBadRequest, CodeBadGzip, "corrupt gzip body: %v", err)
	}
	return fallback
}

func readNDJSON(body io.Reader, cfg Config) ([][]byte, *requestError) {
	br := bufio.NewReaderSize(body, cfg.MaxLineBytes+2) // room for \r\n
	var recs [][]byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, reqErr(http.StatusRequestEntityTooLarge, CodeLineTooLong, "record %d is over %d bytes", len(recs), cfg.MaxLineBytes)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, classify(err, cfg, reqErr(http.StatusBadRequest, CodeMalformedBody, "reading body: %v", err))
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if len(t) > cfg.MaxLineBytes {
				return nil, reqErr(http.StatusRequestEntityTooLarge, CodeLineTooLong, "record %d is over %d bytes", len(recs), cfg.MaxLineBytes)
			}
			if len(recs) == cfg.MaxRecords {
				return nil, reqErr(http.StatusRequestEntityTooLarge, CodeTooManyRecords, "more than %d records", cfg.MaxRecords)
			}
			recs = append(recs, bytes.Clone(t))
		}
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
	}
}

func readArray(body io.Reader, cfg Config) ([][]byte, *requestError) {
	dec := json.NewDecoder(body)
	malformed := func(err error) *requestError {
		return classify(err, cfg, reqErr(http.StatusBadRequest, CodeMalformedBody, "not a JSON array of records: %v", err))
	}
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, reqErr(http.StatusBadRequest, CodeMalformedBody, "application/json bodies must be an array of records")
	}
	var recs [][]byte
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed(err)
		}
		if len(raw) > cfg.MaxLineBytes {
			return nil, reqErr(http.StatusRequestEntityTooLarge, CodeLineTooLong, "record %d is over %d bytes", len(recs), cfg.MaxLineBytes)
		}
		if len(recs) == cfg.MaxRecords {
			return nil, reqErr(http.StatusRequestEntityTooLarge, CodeTooManyRecords, "more than %d records", cfg.MaxRecords)
		}
		recs = append(recs, raw)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, malformed(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, reqErr(http.StatusBadRequest, CodeMalformedBody, "data after the closing ]")
	}
	return recs, nil
}
