package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestAdmin(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hourglass_test_things_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	a := NewAdmin("127.0.0.1:0", reg)
	require.NoError(t, a.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Serve(ctx) }()
	base := "http://" + a.Addr()

	code, body := get(t, base+"/healthz")
	require.Equal(t, 200, code)
	require.Equal(t, "ok\n", body)
	code, body = get(t, base+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "hourglass_test_things_total 3")

	code, _ = get(t, base+"/readyz")
	require.Equal(t, 200, code)
	var broken error = errors.New("kafka unreachable")
	a.AddCheck("sink", func(context.Context) error { return broken })
	code, body = get(t, base+"/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "sink: kafka unreachable")
	broken = nil
	code, _ = get(t, base+"/readyz")
	require.Equal(t, 200, code)

	http.DefaultClient.CloseIdleConnections()
	cancel()
	require.NoError(t, <-done)
}

func TestNewLogger(t *testing.T) {
	_, err := NewLogger(io.Discard, "loud")
	require.Error(t, err)
	l, err := NewLogger(io.Discard, "debug")
	require.NoError(t, err)
	require.NotNil(t, l)
}
