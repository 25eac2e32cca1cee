package ingress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Request-level reason codes (records have their own, internal/record's, which
// are also the reasons of their DLQ messages: internal/dlq).
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
	CodeMethod           = "method_not_allowed"
	CodeOverloaded       = "overloaded" // 503: concurrent requests or in-flight bytes over their bound
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

var (
	errInflatedTooLarge = errors.New("inflated body over its limit")
	errBadGzip          = errors.New("corrupt gzip body")
)

// gzipReader marks every error of the gzip stream itself (corrupt data,
// truncation) as errBadGzip, and lets the body's own errors (its size limit)
// through unchanged.
type gzipReader struct{ gz *gzip.Reader }

func (g gzipReader) Read(p []byte) (int, error) {
	n, err := g.gz.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && err != io.EOF && !errors.As(err, &mbe) {
		err = fmt.Errorf("%w: %w", errBadGzip, err)
	}
	return n, err
}

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

// readRecords streams the body of POST /v1/logs and calls take with each
// record as it is read, enforcing every limit of cfg on the way. The slice
// passed to take is only valid during the call: the body is never held whole,
// inflated or not; one line buffer of MaxLineBytes is the only buffer that
// grows with input. It returns the number of records read.
func readRecords(w http.ResponseWriter, r *http.Request, cfg Config, take func([]byte) *requestError) (int, *requestError) {
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
		return 0, reqErr(http.StatusUnsupportedMediaType, CodeUnsupportedType,
			"Content-Type %q: use application/x-ndjson (one record per line) or application/json (an array)", r.Header.Get("Content-Type"))
	}

	body := io.Reader(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return 0, classify(err, cfg, reqErr(http.StatusBadRequest, CodeBadGzip, "body is not gzip: %v", err))
		}
		defer gz.Close()
		gz.Multistream(true)
		body = &cappedReader{r: gzipReader{gz}, n: cfg.MaxInflatedBytes}
	default:
		return 0, reqErr(http.StatusUnsupportedMediaType, CodeUnsupportedEnc, "Content-Encoding %q: only gzip is supported", enc)
	}

	var n int
	var rerr *requestError
	if array {
		n, rerr = readArray(body, cfg, take)
	} else {
		n, rerr = readNDJSON(body, cfg, take)
	}
	if rerr != nil {
		return n, rerr
	}
	if n == 0 {
		return 0, reqErr(http.StatusBadRequest, CodeEmptyBody, "the body holds no record")
	}
	return n, nil
}

// classify turns a read error into the limit it hit, or fallback.
func classify(err error, cfg Config, fallback *requestError) *requestError {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return reqErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "body over %d bytes", cfg.MaxBodyBytes)
	case errors.Is(err, errInflatedTooLarge):
		return reqErr(http.StatusRequestEntityTooLarge, CodeInflatedTooLarge, "decompressed body over %d bytes", cfg.MaxInflatedBytes)
	case errors.Is(err, errBadGzip), errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader),
		errors.Is(err, io.ErrUnexpectedEOF) && fallback.code == CodeBadGzip:
		return reqErr(http.StatusBadRequest, CodeBadGzip, "corrupt gzip body: %v", err)
	}
	return fallback
}

func lineTooLong(i int, cfg Config) *requestError {
	return reqErr(http.StatusRequestEntityTooLarge, CodeLineTooLong, "record %d is over %d bytes", i, cfg.MaxLineBytes)
}

func tooManyRecords(cfg Config) *requestError {
	return reqErr(http.StatusRequestEntityTooLarge, CodeTooManyRecords, "more than %d records", cfg.MaxRecords)
}

func readNDJSON(body io.Reader, cfg Config, take func([]byte) *requestError) (int, *requestError) {
	br := bufio.NewReaderSize(body, cfg.MaxLineBytes+2) // room for \r\n
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return n, lineTooLong(n, cfg)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, classify(err, cfg, reqErr(http.StatusBadRequest, CodeMalformedBody, "reading body: %v", err))
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if len(t) > cfg.MaxLineBytes {
				return n, lineTooLong(n, cfg)
			}
			if n == cfg.MaxRecords {
				return n, tooManyRecords(cfg)
			}
			if rerr := take(t); rerr != nil {
				return n, rerr
			}
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
	}
}

// readArray splits a JSON array into its elements without decoding them:
// each element goes to take as raw bytes (record.Decode judges it), and no
// element may grow past MaxLineBytes, so a huge element fails at the limit
// instead of being buffered whole (as encoding/json's Decoder would).
func readArray(body io.Reader, cfg Config, take func([]byte) *requestError) (int, *requestError) {
	s := arrayScanner{br: bufio.NewReaderSize(body, 32<<10), max: cfg.MaxLineBytes}
	malformed := func(format string, args ...any) *requestError {
		return reqErr(http.StatusBadRequest, CodeMalformedBody, "not a JSON array of records: "+format, args...)
	}
	readErr := func(err error) *requestError {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return classify(err, cfg, malformed("%v", err))
	}
	c, err := s.next()
	if errors.Is(err, io.EOF) {
		return 0, nil // empty body
	}
	if err != nil {
		return 0, readErr(err)
	}
	if c != '[' {
		return 0, reqErr(http.StatusBadRequest, CodeMalformedBody, "application/json bodies must be an array of records")
	}
	n := 0
	if c, err = s.next(); err != nil {
		return n, readErr(err)
	}
	for c != ']' {
		if c == ',' {
			return n, malformed("empty element at %d", n)
		}
		elem, err := s.value(c)
		if errors.Is(err, errElementTooLarge) {
			return n, lineTooLong(n, cfg)
		}
		if err != nil {
			return n, readErr(err)
		}
		if n == cfg.MaxRecords {
			return n, tooManyRecords(cfg)
		}
		if rerr := take(elem); rerr != nil {
			return n, rerr
		}
		n++
		if c, err = s.next(); err != nil {
			return n, readErr(err)
		}
		switch c {
		case ',':
			if c, err = s.next(); err != nil {
				return n, readErr(err)
			}
			if c == ']' {
				return n, malformed("trailing comma")
			}
		case ']':
		default:
			return n, malformed("expected , or ] after element %d, found %q", n-1, c)
		}
	}
	if _, err := s.next(); !errors.Is(err, io.EOF) {
		if err != nil {
			return n, readErr(err)
		}
		return n, malformed("data after the closing ]")
	}
	return n, nil
}

var errElementTooLarge = errors.New("array element over its limit")

// arrayScanner reads JSON structure byte by byte from a buffered reader.
type arrayScanner struct {
	br  *bufio.Reader
	buf []byte // the current element; reused
	max int
}

// next returns the next byte that is not JSON whitespace.
func (s *arrayScanner) next() (byte, error) {
	for {
		c, err := s.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// value reads the rest of the value that starts with c and returns its bytes
// (valid until the next call). It finds where the value ends (strings,
// nesting) and leaves checking its syntax to the record decoder.
func (s *arrayScanner) value(c byte) ([]byte, error) {
	s.buf = append(s.buf[:0], c)
	depth, inString, escaped := 0, false, false
	switch c {
	case '"':
		inString = true
	case '{', '[':
		depth = 1
	default: // a scalar: up to the next delimiter
		for {
			c, err := s.br.ReadByte()
			if err != nil {
				return nil, err
			}
			if c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				_ = s.br.UnreadByte()
				return s.buf, nil
			}
			if s.buf = append(s.buf, c); len(s.buf) > s.max {
				return nil, errElementTooLarge
			}
		}
	}
	for inString || depth > 0 {
		c, err := s.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if s.buf = append(s.buf, c); len(s.buf) > s.max {
			return nil, errElementTooLarge
		}
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return s.buf, nil
}
