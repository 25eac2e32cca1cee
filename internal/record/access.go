package record

import (
	"encoding/json"
	"strconv"
	"time"
)

// Number returns the value of a numeric field (int or float type) and whether
// it is present. Int fields and bytes counters are always present.
func (r *Record) Number(name string) (float64, bool) {
	switch name {
	case FieldStatus:
		return float64(r.Status), r.Status != 0
	case FieldBytesIn:
		return float64(r.BytesIn), true
	case FieldBytesOut:
		return float64(r.BytesOut), true
	case FieldDurationMS:
		return r.DurationMS, true
	case FieldRTTMS:
		if r.RTTMS == nil {
			return 0, false
		}
		return *r.RTTMS, true
	case FieldUpstreamMS:
		if r.UpstreamMS == nil {
			return 0, false
		}
		return *r.UpstreamMS, true
	}
	return 0, false
}

// Text returns the value of a string or IP field and whether it is present
// (non-empty).
func (r *Record) Text(name string) (string, bool) {
	var s string
	switch name {
	case FieldTenant:
		s = r.Tenant
	case FieldRequestID:
		s = r.RequestID
	case FieldMethod:
		s = r.Method
	case FieldScheme:
		s = r.Scheme
	case FieldHost:
		s = r.Host
	case FieldPath:
		s = r.Path
	case FieldClientIP:
		s = r.ClientIP
	case FieldUserAgent:
		s = r.UserAgent
	case FieldEdge:
		s = r.Edge
	case FieldProtocol:
		s = r.Protocol
	}
	return s, s != ""
}

// ProjectionHead is how every projection whose first field is the timestamp
// begins: AppendProjection writes `{"timestamp":"`, then the time in RFC 3339
// UTC (time.RFC3339Nano: no escapes, ends in Z), then `"`. The metric job
// reads a record's event time from it without parsing the JSON.
const ProjectionHead = `{"` + FieldTimestamp + `":"`

// AppendProjection appends a JSON object holding only the named fields (in the
// given order) to dst. Absent optional fields are omitted. It is how the
// router writes projected records to the metric topics; the result decodes
// with [Decode] when the projection includes the required fields, and with
// any JSON reader otherwise.
func (r *Record) AppendProjection(dst []byte, names []string) []byte {
	dst = append(dst, '{')
	first := true
	key := func(name string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, name...) // field names are plain ASCII
		dst = append(dst, '"', ':')
	}
	for _, name := range names {
		f, ok := Lookup(name)
		if !ok {
			continue
		}
		switch f.Type {
		case TypeTimestamp:
			key(name)
			dst = append(dst, '"')
			dst = r.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, '"')
		case TypeInt:
			if v, ok := r.Number(name); ok {
				key(name)
				dst = strconv.AppendInt(dst, int64(v), 10)
			}
		case TypeFloat:
			if v, ok := r.Number(name); ok {
				key(name)
				dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
			}
		case TypeString, TypeIP:
			if v, ok := r.Text(name); ok {
				key(name)
				dst = appendJSONString(dst, v)
			}
		}
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string. Plain printable ASCII, the
// common case, is copied; anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // cannot fail for a string
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
