package topology

import (
	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/record"
)

// CanonicalMark is the header ingress puts on every raw record it writes:
// the value is the canonical encoding of a validated record
// (record.CanonicalHeader). Records relayed by Fluentd from the node
// forwarders do not carry it.
func CanonicalMark() kafka.Header {
	return kafka.Header{Key: record.CanonicalHeader, Value: []byte(record.CanonicalVersion)}
}

// IsCanonical reports whether a raw record carries CanonicalMark.
func IsCanonical(hs []kafka.Header) bool {
	for _, h := range hs {
		if h.Key == record.CanonicalHeader {
			return string(h.Value) == record.CanonicalVersion
		}
	}
	return false
}
