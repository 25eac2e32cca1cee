package sparkconnect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/spark-connect-go/spark/sparkerrors"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// spark-connect-go registers the protocol's message types.
	_ "github.com/apache/spark-connect-go/spark/sql"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"ipv6", func(c *Config) { c.URL = "sc://[::1]:15000" }, ""},
		{"max rows at the bound", func(c *Config) { c.MaxRows = MaxRowsLimit }, ""},
		{"max rows over the bound", func(c *Config) { c.MaxRows = MaxRowsLimit + 1 }, "max_rows"},
		{"max rows zero", func(c *Config) { c.MaxRows = 0 }, "max_rows"},
		{"attempts at the bound", func(c *Config) { c.Attempts = MaxAttemptsLimit }, ""},
		{"attempts over the bound", func(c *Config) { c.Attempts = MaxAttemptsLimit + 1 }, "attempts"},
		{"attempts zero", func(c *Config) { c.Attempts = 0 }, "attempts"},
		{"backoff inverted", func(c *Config) { c.BackoffMax = c.BackoffMin / 2 }, "backoff"},
		{"backoff zero", func(c *Config) { c.BackoffMin = 0 }, "backoff"},
		{"no user", func(c *Config) { c.User = "" }, "user"},
		{"wrong scheme", func(c *Config) { c.URL = "http://127.0.0.1:15000" }, "scheme must be sc"},
		{"no port", func(c *Config) { c.URL = "sc://127.0.0.1" }, "host:port"},
		{"bad port", func(c *Config) { c.URL = "sc://127.0.0.1:70000" }, "port"},
		{"parameters", func(c *Config) { c.URL = "sc://127.0.0.1:15000/;x-hourglass-session=a" }, "only sc://host:port"},
		{"empty", func(c *Config) { c.URL = "" }, "scheme must be sc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Every problem is reported, not only the first.
	err := Config{URL: "x"}.Validate()
	for _, want := range []string{"scheme", "user", "max_rows", "attempts", "backoff"} {
		require.ErrorContains(t, err, want)
	}
}

func TestBackoff(t *testing.T) {
	cfg := Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, cfg.backoff(n))
	}
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second}, got)
}

func TestClassify(t *testing.T) {
	changed := "[INVALID_HANDLE.SESSION_CHANGED] The handle abc is invalid. The existing Spark server driver instance has restarted. Please reconnect."
	for _, tc := range []struct {
		name string
		err  error
		want errKind
	}{
		{"grpc unavailable", status.Error(codes.Unavailable, "connection refused"), kindUnavailable},
		{"wrapped unavailable", fmt.Errorf("execute: %w", status.Error(codes.Unavailable, "503")), kindUnavailable},
		{"session changed in message", status.Error(codes.Internal, changed), kindLost},
		{"session changed as spark error", sparkerrors.WithType(&sparkerrors.SparkError{Code: codes.Internal,
			ErrorClass: "INVALID_HANDLE.SESSION_CHANGED", Message: "handle invalid"}, sparkerrors.ExecutionError), kindLost},
		{"session closed", status.Error(codes.Internal, "[INVALID_HANDLE.SESSION_CLOSED] closed"), kindLost},
		{"pool refusal", status.Error(codes.InvalidArgument, "hourglass-pool: missing x-hourglass-session header"), kindNoHeader},
		{"other invalid argument", status.Error(codes.InvalidArgument, "bad plan"), kindOther},
		{"analysis error", status.Error(codes.Internal, "[TABLE_OR_VIEW_NOT_FOUND] hg"), kindOther},
		{"plain error", errors.New("boom"), kindOther},
		{"not opened", errNotOpened, kindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := classify(tc.err)
			require.Equal(t, tc.want, got)
		})
	}
}

func newMessage(t *testing.T, name string) protoreflect.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	require.NoError(t, err)
	return mt.New()
}

func TestTrackerSetsHeaderAndObservedServerSession(t *testing.T) {
	tr := &tracker{}
	// A stream before the first (unary) call has no session id to send.
	_, err := tr.stream(context.Background(), nil, nil, "/x", nil)
	require.ErrorIs(t, err, errNotOpened)

	req := newMessage(t, "spark.connect.ConfigRequest")
	req.Set(req.Descriptor().Fields().ByName(fieldSessionID), protoreflect.ValueOfString("sid-1"))
	ctx, err := tr.before(context.Background(), req.Interface())
	require.NoError(t, err)
	md, _ := metadata.FromOutgoingContext(ctx)
	require.Equal(t, []string{"sid-1"}, md.Get(SessionHeader))
	obs, ok := getString(req.Interface(), fieldObservedServerSide)
	require.True(t, ok)
	require.Empty(t, obs, "nothing observed yet")

	resp := newMessage(t, "spark.connect.ConfigResponse")
	resp.Set(resp.Descriptor().Fields().ByName(fieldServerSideSession), protoreflect.ValueOfString("server-A"))
	tr.after(resp.Interface())
	// A later different server-side id does not replace the first: the server must reject it.
	resp2 := newMessage(t, "spark.connect.ConfigResponse")
	resp2.Set(resp2.Descriptor().Fields().ByName(fieldServerSideSession), protoreflect.ValueOfString("server-B"))
	tr.after(resp2.Interface())

	req2 := newMessage(t, "spark.connect.ExecutePlanRequest")
	req2.Set(req2.Descriptor().Fields().ByName(fieldSessionID), protoreflect.ValueOfString("other"))
	ctx, err = tr.before(context.Background(), req2.Interface())
	require.NoError(t, err)
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Equal(t, []string{"sid-1"}, md.Get(SessionHeader), "the header keeps the session's first id")
	obs, _ = getString(req2.Interface(), fieldObservedServerSide)
	require.Equal(t, "server-A", obs)

	// A header already present is not duplicated.
	ctx, err = tr.before(metadata.AppendToOutgoingContext(context.Background(), SessionHeader, "sid-1"), req2.Interface())
	require.NoError(t, err)
	md, _ = metadata.FromOutgoingContext(ctx)
	require.Len(t, md.Get(SessionHeader), 1)

	// Messages without the fields are left alone.
	require.False(t, setString("not a message", fieldSessionID, "x"))
	_, ok = getString(newMessage(t, "spark.connect.UserContext").Interface(), fieldServerSideSession)
	require.False(t, ok)
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{}, nil)
	require.Error(t, err)
	c, err := New(DefaultConfig(), nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:15000", c.target)
}

func TestOpenFailsFastWithoutPool(t *testing.T) {
	// Nothing listens on port 1: every attempt is UNAVAILABLE; the error says so
	// after the configured attempts, well within the deadline.
	cfg := DefaultConfig()
	cfg.URL = "sc://127.0.0.1:1"
	cfg.Attempts = 3
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 20*time.Millisecond
	c, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Open(ctx)
	require.ErrorIs(t, err, ErrUnavailable)
	require.True(t, strings.Contains(err.Error(), "after 3 attempts"), err.Error())

	// With a deadline shorter than the backoff, the context's error wins.
	cfg.Attempts, cfg.BackoffMin, cfg.BackoffMax = 10, time.Second, time.Second
	c, err = New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Open(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}
