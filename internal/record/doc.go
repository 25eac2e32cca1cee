// Package record owns the traffic record: the one JSON object per L7 request
// that flows from the edge (Nginx's access log, the ingress API) through Kafka
// to every sink. No other package defines these field names.
//
// # Contract
//
// A record is a JSON object with snake_case keys (see [Fields] for the full list,
// their types and which are required). Decoding is strict about what it keeps
// and lenient about what it ignores:
//
//   - every problem is reported, not only the first, each as a [Problem] with the
//     field name and a machine-readable [Code];
//   - unknown keys are dropped and their names returned, so callers can count them;
//     more than [MaxUnknownFields] distinct unknown keys make the record invalid
//     ([CodeTooManyFields], a record-level problem without a field);
//   - numbers are bounded so every aggregate stays finite and exact:
//     milliseconds 0..[MaxMillis], bytes 0..[MaxBytes], status 100..599;
//   - client_ip is canonicalized (RFC 5952 text for IPv6, IPv4-mapped addresses
//     as IPv4); zones are invalid;
//   - timestamps are RFC 3339 with any offset and are normalized to UTC;
//   - tenant is checked for shape here; that it matches the caller's API key is
//     the ingress's business;
//   - event time is not bounded by Decode, which also reads archived records:
//     whoever takes records in (ingress against its clock, the router against
//     the Kafka timestamp) calls [TimeBounds.Check], because one Spark watermark
//     serves every tenant (see [TimeBounds]).
//
// A record that decodes without problems re-encodes with [Record.MarshalJSON]
// to the canonical form (UTC timestamp, optional fields omitted when absent),
// and decoding the canonical form gives back an equal record.
package record
