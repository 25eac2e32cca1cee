package ingress

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/forwardtest"
)

const (
	testSharedKey  = "the-shared-key"
	aggregatorName = "aggregator-0"
)

// securePKI is a CA and an aggregator certificate for 127.0.0.1 and the
// name "fluentd-aggregator", with the CA written to a file.
func securePKI(t *testing.T) (*forwardtest.PKI, string) {
	t.Helper()
	pki, err := forwardtest.NewPKI("127.0.0.1", "fluentd-aggregator")
	require.NoError(t, err)
	ca, err := pki.WriteCA(t.TempDir(), "ca.crt")
	require.NoError(t, err)
	return pki, ca
}

// secureSinkConfig is the configuration the shipped deployments use: TLS
// with the operator's CA, and the shared key.
func secureSinkConfig(addr, caFile string) FluentdSinkConfig {
	return FluentdSinkConfig{Addr: addr, Conns: 2, Timeout: 2 * time.Second, MaxRetry: 3, RetryWait: 20 * time.Millisecond,
		TLS: true, CAFile: caFile, SharedKey: testSharedKey, SelfHostname: "ingress-0"}
}

// TestFluentdSinkTLSSharedKey: over TLS, after the handshake, every entry is
// acked and stored, and the readiness probe runs the same handshake.
func TestFluentdSinkTLSSharedKey(t *testing.T) {
	pki, ca := securePKI(t)
	store := forwardtest.NewStore()
	srv, err := forwardtest.Start("127.0.0.1:0", store, fluentdQuiet(),
		forwardtest.WithTLS(pki.ServerTLS()), forwardtest.WithSharedKey(aggregatorName, testSharedKey))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	sink, err := NewFluentdSink(secureSinkConfig(srv.Addr(), ca))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sink.Ready(ctx))
	var entries []Entry
	for i := range 200 {
		entries = append(entries, rawEntry(t, fmt.Sprintf("tls-%d", i)))
	}
	require.NoError(t, sink.Write(ctx, entries))
	require.Equal(t, len(entries), store.Len(), "Write returned: every entry is stored")
	ids := map[string]bool{}
	for _, ev := range store.Events() {
		require.NotEmpty(t, ev.Chunk, "every message asked for an ack")
		ids[ev.Record["request_id"].(string)] = true
	}
	require.Len(t, ids, len(entries))
	require.Zero(t, srv.AuthFailures())

	// The server name may differ from the dialled host (a Service IP).
	cfg := secureSinkConfig(srv.Addr(), ca)
	cfg.ServerName = "fluentd-aggregator"
	named, err := NewFluentdSink(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = named.Close() })
	require.NoError(t, named.Write(ctx, entries[:1]))
	require.Equal(t, len(entries)+1, store.Len())
}

// TestFluentdSinkRefused: every way the two ends can disagree fails the
// Write with an error that names the cause, fails /readyz the same way, and
// stores nothing. Refusals a retry cannot fix are not retried.
func TestFluentdSinkRefused(t *testing.T) {
	pki, ca := securePKI(t)
	_, otherCA := securePKI(t)
	secure := []forwardtest.Option{forwardtest.WithTLS(pki.ServerTLS()), forwardtest.WithSharedKey(aggregatorName, testSharedKey)}
	tests := []struct {
		name      string
		server    []forwardtest.Option
		sink      func(cfg *FluentdSinkConfig)
		want      string // in the error
		permanent bool   // not retried
		refusals  int    // handshakes the server refused for one Write
	}{
		{name: "wrong shared key", server: secure, sink: func(c *FluentdSinkConfig) { c.SharedKey = "guess" },
			want: `the aggregator refused the sink: "shared_key mismatch"`, permanent: true, refusals: 1},
		{name: "no shared key at the sink", server: secure, sink: func(c *FluentdSinkConfig) { c.SharedKey = "" },
			want: "the aggregator requires the shared-key handshake (it sent HELO)", permanent: true, refusals: 1},
		{name: "aggregator without the key", server: []forwardtest.Option{forwardtest.WithTLS(pki.ServerTLS())},
			sink: func(*FluentdSinkConfig) {}, want: "read HELO"},
		{name: "aggregator with another key", server: []forwardtest.Option{forwardtest.WithTLS(pki.ServerTLS()),
			forwardtest.WithSharedKey(aggregatorName, "other")}, sink: func(*FluentdSinkConfig) {},
			want: "shared_key mismatch", permanent: true, refusals: 1},
		{name: "same self_hostname", server: secure, sink: func(c *FluentdSinkConfig) { c.SelfHostname = aggregatorName },
			want: "self_hostname equals the sink's", permanent: true},
		{name: "wrong CA", server: secure, sink: func(c *FluentdSinkConfig) { c.CAFile = otherCA },
			want: "certificate signed by unknown authority", permanent: true},
		{name: "wrong server name", server: secure, sink: func(c *FluentdSinkConfig) { c.ServerName = "elsewhere" },
			want: "not elsewhere", permanent: true},
		{name: "plain TCP to a TLS aggregator", server: secure,
			sink: func(c *FluentdSinkConfig) { c.TLS, c.CAFile = false, "" }, want: "read "},
		{name: "TLS to a plain aggregator", server: []forwardtest.Option{forwardtest.WithSharedKey(aggregatorName, testSharedKey)},
			sink: func(*FluentdSinkConfig) {}, want: "TLS handshake with", permanent: true, refusals: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := forwardtest.NewStore()
			srv, err := forwardtest.Start("127.0.0.1:0", store, fluentdQuiet(), tc.server...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
			cfg := secureSinkConfig(srv.Addr(), ca)
			cfg.Timeout = 500 * time.Millisecond
			tc.sink(&cfg)
			sink, err := NewFluentdSink(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sink.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = sink.Write(ctx, []Entry{rawEntry(t, "refused")})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, tc.permanent, strings.Contains(err.Error(), "attempt 1 of 3"), "retried: %v", err)
			// The server counts a refusal after answering it; a client that
			// hung up first (TLS to plain) may be ahead of the count.
			require.Eventually(t, func() bool { return srv.AuthFailures() == tc.refusals }, 5*time.Second, 10*time.Millisecond,
				"refused handshakes: %d", srv.AuthFailures())
			require.Zero(t, store.Len(), "nothing was stored")

			err = sink.Ready(ctx)
			require.Error(t, err, "/readyz fails with the same cause")
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestIngressFluentdRefusedIs503: through the whole intake, an aggregator
// that refuses the sink is a 503 with Retry-After (retryable: the operator
// fixes the key or CA), never a 2xx; with the right key the same aggregator
// takes the record.
func TestIngressFluentdRefusedIs503(t *testing.T) {
	pki, ca := securePKI(t)
	_, otherCA := securePKI(t)
	store := forwardtest.NewStore()
	srv, err := forwardtest.Start("127.0.0.1:0", store, fluentdQuiet(),
		forwardtest.WithTLS(pki.ServerTLS()), forwardtest.WithSharedKey(aggregatorName, testSharedKey))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })

	for _, tc := range []struct {
		name string
		edit func(*FluentdSinkConfig)
		want int
	}{
		{"wrong shared key", func(c *FluentdSinkConfig) { c.SharedKey = "guess" }, http.StatusServiceUnavailable},
		{"wrong CA", func(c *FluentdSinkConfig) { c.CAFile = otherCA }, http.StatusServiceUnavailable},
		{"plain TCP", func(c *FluentdSinkConfig) { c.TLS, c.CAFile = false, "" }, http.StatusServiceUnavailable},
		{"right key and CA", func(*FluentdSinkConfig) {}, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureSinkConfig(srv.Addr(), ca)
			cfg.Timeout = 500 * time.Millisecond
			tc.edit(&cfg)
			sink, err := NewFluentdSink(cfg)
			require.NoError(t, err)
			post, readyz := startFluentdIngress(t, sink)
			before := store.Len()
			status, retryAfter := post("id-" + strings.ReplaceAll(tc.name, " ", "-"))
			require.Equal(t, tc.want, status)
			if tc.want == http.StatusAccepted {
				require.Equal(t, http.StatusOK, readyz())
				require.Equal(t, before+1, store.Len(), "the 202'd record is at the aggregator")
				return
			}
			require.Equal(t, "1", retryAfter)
			require.Equal(t, http.StatusServiceUnavailable, readyz())
			require.Equal(t, before, store.Len())
		})
	}
}

func TestFluentdSinkConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name string
		cfg  FluentdSinkConfig
		want string
	}{
		{"CA without TLS", FluentdSinkConfig{CAFile: notPEM}, "TLS is off"},
		{"server name without TLS", FluentdSinkConfig{ServerName: "x"}, "TLS is off"},
		{"missing CA file", FluentdSinkConfig{TLS: true, CAFile: filepath.Join(dir, "nope")}, "CA file"},
		{"CA file without PEM", FluentdSinkConfig{TLS: true, CAFile: notPEM}, "no PEM certificate"},
		{"shared key over the bound", FluentdSinkConfig{SharedKey: strings.Repeat("k", MaxFluentdSharedKeyBytes+1)}, "at most 4096"},
		{"bad address", FluentdSinkConfig{Addr: "no-port"}, "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFluentdSink(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	s, err := NewFluentdSink(FluentdSinkConfig{SharedKey: strings.Repeat("k", MaxFluentdSharedKeyBytes)})
	require.NoError(t, err, "a key at the bound")
	require.NoError(t, s.Close())
}

func TestReadFluentdSharedKey(t *testing.T) {
	dir := t.TempDir()
	atBound := strings.Repeat("k", MaxFluentdSharedKeyBytes)
	for _, tc := range []struct {
		name, content, want, err string
	}{
		{"trailing newline", "s3cret\n", "s3cret", ""},
		{"CRLF", "s3cret\r\n", "s3cret", ""},
		{"at the bound, with a newline", atBound + "\r\n", atBound, ""},
		{"one over the bound", atBound + "k", "", "more than 4096 bytes"},
		{"far over the bound", strings.Repeat("k", 1<<20), "", "more than 4096 bytes"},
		{"empty", "\n", "", "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			key, err := ReadFluentdSharedKey(path)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, key)
		})
	}
	_, err := ReadFluentdSharedKey(filepath.Join(dir, "missing"))
	require.Error(t, err)
}
