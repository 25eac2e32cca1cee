package ingress

import (
	"context"
	"time"

	"github.com/hourglass-io/hourglass/internal/dlq"
)

// Stream says where an entry goes.
type Stream int

const (
	StreamRaw Stream = iota // accepted records: hourglass.logs.raw
	StreamDLQ               // rejected records: hourglass.logs.dlq
)

// Entry is one record handed to a sink.
type Entry struct {
	Stream Stream
	Tenant string
	Value  []byte     // the canonical record (raw) or the line as received (DLQ)
	Reason dlq.Reason // DLQ: why the record was rejected
}

// dlqMessage is the DLQ message of a rejected entry, refused at time at.
func dlqMessage(e Entry, at time.Time) dlq.Message {
	return dlq.Message{Reason: e.Reason, Stage: dlq.StageIngress, Key: []byte(e.Tenant), Value: e.Value, Time: at}
}

// Sink takes entries durably. Write returns nil only after the downstream
// confirmed every entry; any error means the request fails with 503 and the
// client retries (entries of a failed Write may or may not have been stored).
type Sink interface {
	Write(ctx context.Context, entries []Entry) error
	// Ready reports whether the sink can take data now.
	Ready(ctx context.Context) error
	Close() error
}
