package record

import (
	"math"
	"strconv"
	"time"
)

// CanonicalHeader is the Kafka header ingress puts on every raw record it
// writes itself, with the value CanonicalVersion: the record's value is then
// the canonical JSON ([Record.AppendJSON]) of a record that passed [Decode].
// A consumer that needs only the record's head ([Head]) may trust such a
// value as it is (the archiver does). A record without it — written by
// another producer, such as Fluentd relaying the node forwarders' lines — is
// decoded and validated.
const (
	CanonicalHeader  = "hourglass-canonical"
	CanonicalVersion = "1"
)

// AppendJSON appends the record's canonical JSON to dst: byte for byte what
// [Record.MarshalJSON] (encoding/json) writes — fields in declaration order,
// empty optional fields omitted, the timestamp in UTC RFC 3339 with
// nanoseconds, numbers and strings formatted as encoding/json formats them —
// without reflection. For records that passed [Decode] or [Record.Validate]
// (finite numbers); ingress writes raw records and the archiver part files
// with it.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"timestamp":"`...)
	dst = r.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","tenant":`...)
	dst = appendJSONString(dst, r.Tenant)
	if r.RequestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst = appendJSONString(dst, r.RequestID)
	}
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, r.Method)
	dst = appendOptString(dst, `,"scheme":`, r.Scheme)
	dst = appendOptString(dst, `,"host":`, r.Host)
	dst = appendOptString(dst, `,"path":`, r.Path)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendInt(dst, r.BytesIn, 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendInt(dst, r.BytesOut, 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendJSONFloat(dst, r.DurationMS)
	if r.RTTMS != nil {
		dst = append(dst, `,"rtt_ms":`...)
		dst = appendJSONFloat(dst, *r.RTTMS)
	}
	if r.UpstreamMS != nil {
		dst = append(dst, `,"upstream_ms":`...)
		dst = appendJSONFloat(dst, *r.UpstreamMS)
	}
	dst = appendOptString(dst, `,"client_ip":`, r.ClientIP)
	dst = appendOptString(dst, `,"user_agent":`, r.UserAgent)
	dst = appendOptString(dst, `,"edge":`, r.Edge)
	dst = appendOptString(dst, `,"protocol":`, r.Protocol)
	return append(dst, '}')
}

func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendJSONString(append(dst, key...), s)
}

// appendJSONFloat formats f as encoding/json does for a float64: the shortest
// representation, in exponent form below 1e-6 and from 1e21 on (with a
// one-digit negative exponent written e-7, not e-07).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
