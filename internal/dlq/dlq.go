package dlq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Header names of a DLQ message.
const (
	HeaderReason = "reason"
	HeaderError  = "error"
	HeaderSource = "source"
	HeaderStage  = "stage"
)

// Field names of the Fluentd form of a DLQ message ([Message.FluentdRecord]);
// reason and stage are named as their headers.
const (
	FluentdTenantField = "tenant" // the aggregator's message_key_key
	FluentdLineField   = "line"   // the aggregator's single_value message_key
)

// MaxErrorBytes bounds the error header.
const MaxErrorBytes = 1024

// Reason is the machine-readable cause of a DLQ message.
type Reason string

// Reasons of stages, beside the record-level ones ([RecordReason]).
const (
	// ReasonInternal: ingress could not re-encode a record it had validated
	// (a bug); the line is kept rather than dropped.
	ReasonInternal Reason = "internal"
	// ReasonIndexRejected: the search cluster refused the document for good
	// (a mapping conflict, say), not for a transient cause.
	ReasonIndexRejected Reason = "index_rejected"
)

// RecordReason is the reason of a record refused by validation: its
// record.Code, unchanged.
func RecordReason(c record.Code) Reason { return Reason(c) }

// ReasonOf is the reason of a record that failed record.Decode or a
// record.TimeBounds check: the code of its first problem, or malformed_json
// when err lists no problem.
func ReasonOf(err error) Reason {
	var inv *record.InvalidError
	if errors.As(err, &inv) && inv.Reason() != "" {
		return RecordReason(inv.Reason())
	}
	return RecordReason(record.CodeMalformedJSON)
}

// Stage is the pipeline stage that refused a record.
type Stage string

const (
	StageIngress Stage = "ingress"
	StageRouter  Stage = "router"
	StageIndexer Stage = "indexer"
)

// Source is where a refused record was read from Kafka.
type Source struct {
	Topic     string
	Partition int
	Offset    int64
}

// SourceOf is the position of m.
func SourceOf(m kafka.Message) Source {
	return Source{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
}

// IsZero reports whether s names no position.
func (s Source) IsZero() bool { return s == Source{} }

// String is the source header's form: <topic>/<partition>/<offset>.
func (s Source) String() string {
	return s.Topic + "/" + strconv.Itoa(s.Partition) + "/" + strconv.FormatInt(s.Offset, 10)
}

// ParseSource reads the source header's form back.
func ParseSource(v string) (Source, error) {
	// Topic names cannot hold '/', but read from the right all the same.
	rest, off, ok1 := cutLast(v, "/")
	topic, part, ok2 := cutLast(rest, "/")
	if !ok1 || !ok2 || topic == "" {
		return Source{}, fmt.Errorf("dlq: source %q: want <topic>/<partition>/<offset>", v)
	}
	p, err := strconv.Atoi(part)
	if err != nil || p < 0 {
		return Source{}, fmt.Errorf("dlq: source %q: bad partition", v)
	}
	o, err := strconv.ParseInt(off, 10, 64)
	if err != nil || o < 0 {
		return Source{}, fmt.Errorf("dlq: source %q: bad offset", v)
	}
	return Source{Topic: topic, Partition: p, Offset: o}, nil
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Message is one DLQ message.
type Message struct {
	Reason Reason
	Stage  Stage
	Error  string // optional; cut to MaxErrorBytes when rendered
	Source Source // optional (zero: none)
	Key    []byte // the original key
	Value  []byte // the refused bytes, unchanged
	Time   time.Time
}

// Refused is the DLQ message of a record read from Kafka (m) that stage
// refused at time at: m's key and value unchanged, its position as the
// source, and err, when not nil, as the error.
func Refused(m kafka.Message, stage Stage, reason Reason, err error, at time.Time) Message {
	msg := Message{Reason: reason, Stage: stage, Source: SourceOf(m), Key: m.Key, Value: m.Value, Time: at}
	if err != nil {
		msg.Error = err.Error()
	}
	return msg
}

// Kafka renders m for topic (empty when the writer names the topic).
func (m Message) Kafka(topic string) kafka.Message {
	h := make([]kafka.Header, 0, 4)
	h = append(h, kafka.Header{Key: HeaderReason, Value: []byte(m.Reason)})
	if m.Error != "" {
		h = append(h, kafka.Header{Key: HeaderError, Value: []byte(truncate(m.Error, MaxErrorBytes))})
	}
	if !m.Source.IsZero() {
		h = append(h, kafka.Header{Key: HeaderSource, Value: []byte(m.Source.String())})
	}
	h = append(h, kafka.Header{Key: HeaderStage, Value: []byte(m.Stage)})
	return kafka.Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h, Time: m.Time}
}

// FluentdRecord renders m as the record sent to Fluentd under the DLQ tag,
// {tenant, reason, stage, line}; the key is the tenant. The aggregator maps
// reason and stage to headers; error and source have no place there (ingress,
// the one Fluentd producer, has neither).
func (m Message) FluentdRecord() map[string]any {
	return map[string]any{
		FluentdTenantField: string(m.Key),
		HeaderReason:       string(m.Reason),
		HeaderStage:        string(m.Stage),
		FluentdLineField:   string(m.Value),
	}
}

// Parse reads a DLQ message back. It fails without reason or stage, or with
// a malformed source; unknown headers and reasons are accepted.
func Parse(km kafka.Message) (Message, error) {
	m := Message{Key: km.Key, Value: km.Value, Time: km.Time}
	var source string
	seen := map[string]bool{}
	for _, h := range km.Headers {
		if seen[h.Key] {
			continue // the first of a repeated header counts
		}
		seen[h.Key] = true
		switch h.Key {
		case HeaderReason:
			m.Reason = Reason(h.Value)
		case HeaderStage:
			m.Stage = Stage(h.Value)
		case HeaderError:
			m.Error = string(h.Value)
		case HeaderSource:
			source = string(h.Value)
		}
	}
	var errs []error
	if m.Reason == "" {
		errs = append(errs, errors.New("no reason header"))
	}
	if m.Stage == "" {
		errs = append(errs, errors.New("no stage header"))
	}
	if source != "" {
		s, err := ParseSource(source)
		if err != nil {
			errs = append(errs, err)
		}
		m.Source = s
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("dlq: message %s/%d/%d: %w", km.Topic, km.Partition, km.Offset, err)
	}
	return m, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
