package record

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimeBoundsCheck(t *testing.T) {
	ref := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	b := DefaultTimeBounds()
	require.Equal(t, TimeBounds{MaxFuture: 5 * time.Minute, MaxPast: 7 * 24 * time.Hour}, b)
	require.NoError(t, b.Validate())
	for _, tc := range []struct {
		name string
		ts   time.Time
		msg  string // "" when accepted
	}{
		{"now", ref, ""},
		{"at the future bound", ref.Add(5 * time.Minute), ""},
		{"one ns past the future bound", ref.Add(5*time.Minute + 1), "more than 5m0s after 2026-12-04T12:00:00Z"},
		{"2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "2099-01-01T00:00:00Z is more than 5m0s after"},
		{"at the past bound", ref.Add(-7 * 24 * time.Hour), ""},
		{"one ns past the past bound", ref.Add(-7*24*time.Hour - 1), "more than 168h0m0s before 2026-12-04T12:00:00Z"},
		{"other zone, same instant", ref.In(time.FixedZone("x", 3600)).Add(5 * time.Minute), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Check(tc.ts, ref)
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			require.Len(t, inv.Problems, 1)
			require.Equal(t, FieldTimestamp, inv.Problems[0].Field)
			require.Equal(t, CodeOutOfRange, inv.Reason())
			require.Contains(t, inv.Problems[0].Message, tc.msg)
		})
	}
}

func TestTimeBoundsValidate(t *testing.T) {
	err := TimeBounds{}.Validate()
	require.ErrorContains(t, err, "max-future")
	require.ErrorContains(t, err, "max-past")
	require.ErrorContains(t, TimeBounds{MaxFuture: time.Minute, MaxPast: -1}.Validate(), "max-past")
	// The reason for the default: it must stay below the catalog's smallest
	// allowed lateness, or one record can make every tenant's records late.
	require.Less(t, DefaultTimeBounds().MaxFuture, 10*time.Minute)
}

func TestNumericBounds(t *testing.T) {
	maxMS := strconv.Itoa(MaxMillis)
	maxB := strconv.FormatInt(MaxBytes, 10)
	require.Equal(t, "86400000", maxMS)
	require.Equal(t, "1099511627776", maxB)
	for _, f := range []string{FieldDurationMS, FieldRTTMS, FieldUpstreamMS} {
		t.Run(f, func(t *testing.T) {
			for _, ok := range []string{`0`, `-0`, maxMS, `86399999.999`, `1e-400`} {
				_, _, err := Decode([]byte(with(f, ok)))
				require.NoError(t, err, ok)
			}
			for _, bad := range []string{`86400000.001`, `86400001`, `1e308`, `1e400`, `-1e-9`} {
				requireProblem(t, with(f, bad), f, CodeOutOfRange)
			}
		})
	}
	for _, f := range []string{FieldBytesIn, FieldBytesOut} {
		t.Run(f, func(t *testing.T) {
			_, _, err := Decode([]byte(with(f, maxB)))
			require.NoError(t, err)
			requireProblem(t, with(f, strconv.FormatInt(MaxBytes+1, 10)), f, CodeOutOfRange)
			requireProblem(t, with(f, `9223372036854775807`), f, CodeOutOfRange)
			requireProblem(t, with(f, `-1`), f, CodeOutOfRange)
		})
	}
	// The arithmetic the constants promise.
	require.LessOrEqual(t, uint64(MaxSummedRecords)*uint64(MaxBytes), uint64(1<<63-1), "byte sums fit int64")
	require.Less(t, float64(MaxSummedRecords)*MaxMillis, float64(1<<53), "millisecond sums are exact in a double")

	r := Record{Timestamp: time.Now(), Tenant: "t", Method: "GET", Status: 200, BytesOut: MaxBytes + 1, DurationMS: MaxMillis + 1}
	var inv *InvalidError
	require.ErrorAs(t, r.Validate(), &inv)
	require.Len(t, inv.Problems, 2, "Validate applies the same ranges to Go-built records")
}

func requireProblem(t *testing.T, input, field string, code Code) {
	t.Helper()
	_, _, err := Decode([]byte(input))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv, input)
	require.Equal(t, []want{{field, code}}, problemsOf(inv), input)
}

func problemsOf(inv *InvalidError) []want {
	out := make([]want, len(inv.Problems))
	for i, p := range inv.Problems {
		out[i] = want{p.Field, p.Code}
	}
	return out
}

// withUnknown returns the good record with n distinct unknown keys added.
func withUnknown(n int) string {
	var sb strings.Builder
	sb.WriteString(good[:len(good)-1])
	for i := range n {
		fmt.Fprintf(&sb, `,"x%d":%d`, i, i)
	}
	sb.WriteString("}")
	return sb.String()
}

func TestUnknownFieldsBound(t *testing.T) {
	_, unknown, err := Decode([]byte(withUnknown(MaxUnknownFields)))
	require.NoError(t, err, "at the bound")
	require.Len(t, unknown, MaxUnknownFields)

	_, unknown, err = Decode([]byte(withUnknown(MaxUnknownFields + 1)))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, []want{{"", CodeTooManyFields}}, problemsOf(inv))
	require.Len(t, unknown, MaxUnknownFields, "the names returned stay bounded")

	// Repeating one unknown key is one unknown key.
	rep := good[:len(good)-1] + strings.Repeat(`,"x":1`, 5000) + "}"
	_, unknown, err = Decode([]byte(rep))
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, unknown)

	// 6000 unknown keys (issue 12: 89 ms per record with slices.Contains):
	// rejected, with work linear in the record's size (BenchmarkDecodeManyUnknown)
	// and memory bounded by MaxUnknownFields, not by the number of keys.
	_, _, err = Decode([]byte(withUnknown(6000)))
	require.ErrorAs(t, err, &inv)
	require.Equal(t, CodeTooManyFields, inv.Reason())
	line := []byte(withUnknown(6000))
	allocs := testing.AllocsPerRun(5, func() { _, _, _ = Decode(line) })
	require.Less(t, allocs, 400.0, "keys past the bound are neither copied nor collected")
}

func TestClientIPCanonical(t *testing.T) {
	for in, want := range map[string]string{
		`"2001:0db8:0000::1"`:                       "2001:db8::1",
		`"2001:0db8:0000:0000:0000:0000:0000:0001"`: "2001:db8::1",
		`"2001:DB8::1"`:                             "2001:db8::1",
		`"::ffff:192.0.2.1"`:                        "192.0.2.1",
		`"192.0.2.1"`:                               "192.0.2.1",
		`"::"`:                                      "::",
	} {
		rec, _, err := Decode([]byte(with("client_ip", in)))
		require.NoError(t, err, in)
		require.Equal(t, want, rec.ClientIP, in)
		out, err := json.Marshal(rec)
		require.NoError(t, err)
		again, _, err := Decode(out)
		require.NoError(t, err)
		require.Equal(t, want, again.ClientIP)
	}
	for _, bad := range []string{`"fe80::1%eth0"`, `"192.0.2.1%1"`, `"010.0.0.1"`, `"1.2.3"`, `"[::1]"`, `"::1/128"`, `""`} {
		requireProblem(t, with("client_ip", bad), FieldClientIP, CodeInvalidFormat)
	}
	r := Record{Timestamp: time.Now(), Tenant: "t", Method: "GET", Status: 200, ClientIP: "fe80::1%eth0"}
	require.Error(t, r.Validate())
}
