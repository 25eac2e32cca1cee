package record

// Type is the JSON type of a record field as seen by validation, the catalog
// compiler (filters, Spark schemas) and the Elasticsearch mappings.
type Type string

const (
	TypeString    Type = "string"
	TypeInt       Type = "int"       // JSON integer, 64-bit
	TypeFloat     Type = "float"     // JSON number, finite
	TypeTimestamp Type = "timestamp" // RFC 3339 string
	TypeIP        Type = "ip"        // IPv4 or IPv6 literal string
)

// Field describes one field of the traffic record.
type Field struct {
	Name     string
	Type     Type
	Required bool
	Doc      string
}

// Field names: the only place they are spelled out.
const (
	FieldTimestamp  = "timestamp"
	FieldTenant     = "tenant"
	FieldRequestID  = "request_id"
	FieldMethod     = "method"
	FieldScheme     = "scheme"
	FieldHost       = "host"
	FieldPath       = "path"
	FieldStatus     = "status"
	FieldBytesIn    = "bytes_in"
	FieldBytesOut   = "bytes_out"
	FieldDurationMS = "duration_ms"
	FieldRTTMS      = "rtt_ms"
	FieldUpstreamMS = "upstream_ms"
	FieldClientIP   = "client_ip"
	FieldUserAgent  = "user_agent"
	FieldEdge       = "edge"
	FieldProtocol   = "protocol"
)

// fields lists every field of the record in canonical order (an array: its
// length is a constant, at most 32 for fieldSet).
var fields = [...]Field{
	{FieldTimestamp, TypeTimestamp, true, "event time of the request, RFC 3339, normalized to UTC"},
	{FieldTenant, TypeString, true, "customer the request belongs to, [a-z0-9-]{1,63}; set by ingress from the API key"},
	{FieldRequestID, TypeString, false, "request id assigned at the edge, at most 128 bytes"},
	{FieldMethod, TypeString, true, "HTTP method, an RFC 9110 token of at most 32 bytes"},
	{FieldScheme, TypeString, false, "http or https"},
	{FieldHost, TypeString, false, "Host header, at most 255 bytes"},
	{FieldPath, TypeString, false, "request path without query string, starts with /, at most 8 KiB"},
	{FieldStatus, TypeInt, true, "HTTP status code, 100-599"},
	{FieldBytesIn, TypeInt, false, "request bytes received, 0 to MaxBytes (1 TiB)"},
	{FieldBytesOut, TypeInt, false, "response bytes sent, 0 to MaxBytes (1 TiB)"},
	{FieldDurationMS, TypeFloat, true, "request processing time in milliseconds, 0 to MaxMillis (one day)"},
	{FieldRTTMS, TypeFloat, false, "client TCP round-trip time in milliseconds (nginx $tcpinfo_rtt/1000), 0 to MaxMillis"},
	{FieldUpstreamMS, TypeFloat, false, "upstream response time in milliseconds, 0 to MaxMillis"},
	{FieldClientIP, TypeIP, false, "client IP address, canonical form (RFC 5952 IPv6, IPv4-mapped as IPv4, no zone)"},
	{FieldUserAgent, TypeString, false, "User-Agent header, at most 1 KiB"},
	{FieldEdge, TypeString, false, "name of the edge node that served the request, at most 64 bytes"},
	{FieldProtocol, TypeString, false, "protocol as nginx reports it, e.g. HTTP/1.1, at most 16 bytes"},
}

// Fields returns every field of the record in canonical order. The slice is a
// copy: callers may keep or modify it.
func Fields() []Field {
	return append([]Field(nil), fields[:]...)
}

// Lookup returns the field named name.
func Lookup(name string) (Field, bool) {
	for _, f := range fields[:] {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}
