package record

import (
	"bytes"
	"time"
)

var (
	headTimestamp = []byte(`{"timestamp":"`)
	headTenant    = []byte(`","tenant":"`)
)

// Head reads the timestamp and tenant of a record in the canonical form
// MarshalJSON writes — its first two members, in that order — without
// decoding the rest: how readers of the archive (which holds only canonical
// records) skip the records a query does not want. ok is false for any
// other form (members reordered, escapes in the tenant, a timestamp that
// does not parse): decode such a line with Decode.
func Head(line []byte) (ts time.Time, tenant string, ok bool) {
	rest, found := bytes.CutPrefix(line, headTimestamp)
	if !found {
		return time.Time{}, "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}, "", false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	if err != nil {
		return time.Time{}, "", false
	}
	rest, found = bytes.CutPrefix(rest[end:], headTenant)
	if !found {
		return time.Time{}, "", false
	}
	end = bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return time.Time{}, "", false
	}
	return ts, string(rest[:end]), true
}
