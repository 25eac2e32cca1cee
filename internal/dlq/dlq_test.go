package dlq

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
)

var at = time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)

// headers lists a message's headers as key=value, in order.
func headers(m kafka.Message) []string {
	var out []string
	for _, h := range m.Headers {
		out = append(out, h.Key+"="+string(h.Value))
	}
	return out
}

// TestWire pins the bytes each producer puts on the wire: header names,
// values and order are the contract readers (and the Fluentd aggregator's
// headers_from_record) rely on.
func TestWire(t *testing.T) {
	raw := kafka.Message{Topic: "hourglass.logs.raw", Partition: 4, Offset: 1234, Key: []byte("acme"), Value: []byte(`{"status":"x"}`)}
	for _, tc := range []struct {
		name  string
		msg   Message
		topic string
		want  []string
	}{
		{"ingress", Message{Reason: RecordReason(record.CodeWrongType), Stage: StageIngress, Key: []byte("acme"), Value: []byte(`{"status":"x"}`), Time: at},
			"hourglass.logs.dlq", []string{"reason=wrong_type", "stage=ingress"}},
		{"router", Refused(raw, StageRouter, RecordReason(record.CodeOutOfRange), errors.New("timestamp: out_of_range: too far"), at),
			"hourglass.logs.dlq", []string{"reason=out_of_range", "error=timestamp: out_of_range: too far", "source=hourglass.logs.raw/4/1234", "stage=router"}},
		{"indexer", Refused(raw, StageIndexer, ReasonIndexRejected, nil, at),
			"", []string{"reason=index_rejected", "source=hourglass.logs.raw/4/1234", "stage=indexer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			km := tc.msg.Kafka(tc.topic)
			require.Equal(t, tc.want, headers(km))
			require.Equal(t, tc.topic, km.Topic)
			require.Equal(t, "acme", string(km.Key), "the original key")
			require.Equal(t, `{"status":"x"}`, string(km.Value), "the refused bytes, unchanged")
			require.Equal(t, at, km.Time)

			got, err := Parse(km)
			require.NoError(t, err)
			require.Equal(t, tc.msg, got, "Parse gives back what Kafka rendered")
		})
	}
}

func TestFluentdRecord(t *testing.T) {
	m := Message{Reason: RecordReason(record.CodeTenantMismatch), Stage: StageIngress, Key: []byte("acme"), Value: []byte(`{"tenant":"globex"}`)}
	require.Equal(t, map[string]any{"tenant": "acme", "reason": "tenant_mismatch", "stage": "ingress", "line": `{"tenant":"globex"}`},
		m.FluentdRecord())
}

func TestReasonOf(t *testing.T) {
	_, _, err := record.Decode([]byte(`{"status":"x"}`))
	require.Error(t, err)
	var inv *record.InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, Reason(inv.Problems[0].Code), ReasonOf(err), "the first problem's code")
	require.Equal(t, Reason("out_of_range"), ReasonOf(fmt.Errorf("check: %w", &record.InvalidError{Problems: []record.Problem{{Code: record.CodeOutOfRange}}})))
	require.Equal(t, Reason("malformed_json"), ReasonOf(errors.New("something else")))
	require.Equal(t, Reason("malformed_json"), ReasonOf(&record.InvalidError{}))
}

func TestErrorTruncated(t *testing.T) {
	long := strings.Repeat("é", MaxErrorBytes) // two bytes each
	for _, prefix := range []string{"", "x"} { // with "x" the cut falls inside a character
		km := Message{Reason: ReasonInternal, Stage: StageIngress, Error: prefix + long}.Kafka("")
		got, err := Parse(km)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got.Error), MaxErrorBytes)
		require.GreaterOrEqual(t, len(got.Error), MaxErrorBytes-1)
		require.True(t, utf8.ValidString(got.Error), "never half a character")
	}
	short := Message{Reason: ReasonInternal, Stage: StageIngress, Error: "short"}.Kafka("")
	require.Equal(t, []string{"reason=internal", "error=short", "stage=ingress"}, headers(short))
}

func TestParse(t *testing.T) {
	h := func(kv ...string) []kafka.Header {
		var out []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		headers []kafka.Header
		want    Message
		err     string
	}{
		{"ingress via fluentd", h("reason", "missing", "stage", "ingress"),
			Message{Reason: "missing", Stage: StageIngress}, ""},
		{"unknown header and reason", h("stage", "router", "x-trace", "1", "reason", "some_new_reason"),
			Message{Reason: "some_new_reason", Stage: StageRouter}, ""},
		{"first of a repeated header", h("reason", "missing", "reason", "too_long", "stage", "router"),
			Message{Reason: "missing", Stage: StageRouter}, ""},
		{"topic with dots and dashes", h("reason", "index_rejected", "source", "test.raw-1.x/0/0", "stage", "indexer"),
			Message{Reason: ReasonIndexRejected, Stage: StageIndexer, Source: Source{Topic: "test.raw-1.x"}}, ""},
		{"no reason", h("stage", "router"), Message{}, "no reason header"},
		{"no stage", h("reason", "missing"), Message{}, "no stage header"},
		{"bad source", h("reason", "missing", "stage", "router", "source", "raw/x/1"), Message{}, "bad partition"},
		{"short source", h("reason", "missing", "stage", "router", "source", "raw/1"), Message{}, "want <topic>/<partition>/<offset>"},
		{"negative offset", h("reason", "missing", "stage", "router", "source", "raw/1/-2"), Message{}, "bad offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(kafka.Message{Headers: tc.headers})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseSource(f *testing.F) {
	f.Add("hourglass.logs.raw/3/42")
	f.Add("a/b/c")
	f.Add("//")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSource(v)
		if err != nil {
			return
		}
		back, err := ParseSource(s.String())
		require.NoError(t, err)
		require.Equal(t, s, back)
	})
}
