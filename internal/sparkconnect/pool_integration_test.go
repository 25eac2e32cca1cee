//go:build integration

package sparkconnect

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/hourglass-io/hourglass/internal/poolctl"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// pool is the stack's Spark Connect pool as the tests see it.
type pool struct {
	client *Client
	admin  *poolctl.Admin
	url    string
}

// newPool holds the pool shared with other packages' tests (the query
// service's) for the test; newPoolAlone holds it alone, for tests that kill
// or drain servers, or need sessions spread by leastconn (other packages'
// sessions would skew the count).
func newPool(t *testing.T) *pool {
	t.Helper()
	stacktest.SharePool(t)
	return openPool(t)
}

func newPoolAlone(t *testing.T) *pool {
	t.Helper()
	stacktest.ExclusivePool(t)
	return openPool(t)
}

func openPool(t *testing.T) *pool {
	t.Helper()
	url := stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL")
	admin := &poolctl.Admin{Socket: stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET"), Backend: poolctl.DefaultBackend}
	cfg := DefaultConfig()
	cfg.URL = url
	c, err := New(cfg, nil)
	require.NoError(t, err)
	p := &pool{client: c, admin: admin, url: url}
	p.waitAllUp(t, 3*time.Minute)
	return p
}

// waitAllUp restores the pool if an earlier test left it broken: servers started,
// in rotation (ready), UP in HAProxy.
func (p *pool) waitAllUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	started := false
	for {
		servers, err := p.admin.Servers(ctx, time.Minute)
		if err == nil {
			up := 0
			for _, s := range servers {
				if s.Status == "UP" {
					up++
				} else if s.Status == "DRAIN" || strings.HasPrefix(s.Status, "MAINT") {
					require.NoError(t, p.admin.SetState(ctx, s.Name, "ready"))
				} else if !started && s.Status == "DOWN" {
					restartPool(t)
					started = true
				}
			}
			if up == len(servers) && up >= 2 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool not fully up after %s: %+v (err %v)", timeout, servers, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// restartPool starts whatever pool member is not running (stack.sh up only starts
// missing processes).
func restartPool(t *testing.T) {
	t.Helper()
	script := stacktest.Get(t, "HOURGLASS_STACK_SCRIPT")
	out, err := exec.Command("bash", script, "up", "spark_connect").CombinedOutput()
	require.NoError(t, err, "stack.sh up spark_connect: %s", out)
}

func (p *pool) open(t *testing.T) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := p.client.Open(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// serverOf is the server HAProxy pinned the session to (stick table).
func (p *pool) serverOf(t *testing.T, s *Session) string {
	t.Helper()
	ctx := context.Background()
	entries, err := p.admin.Entries(ctx)
	require.NoError(t, err)
	servers, err := p.admin.Servers(ctx, time.Minute)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Key == s.ID() {
			for _, srv := range servers {
				if srv.ID == e.ServerID {
					return srv.Name
				}
			}
		}
	}
	t.Fatalf("session %s is not in the stick table", s.ID())
	return ""
}

func (p *pool) server(t *testing.T, name string) poolctl.Server {
	t.Helper()
	servers, err := p.admin.Servers(context.Background(), time.Minute)
	require.NoError(t, err)
	for _, s := range servers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no server %s", name)
	return poolctl.Server{}
}

// twoSessionsApart opens sessions until two are pinned to different servers.
func (p *pool) twoSessionsApart(t *testing.T) (a, b *Session, srvA, srvB string) {
	t.Helper()
	a = p.open(t)
	srvA = p.serverOf(t, a)
	for range 6 {
		b = p.open(t)
		if srvB = p.serverOf(t, b); srvB != srvA {
			return a, b, srvA, srvB
		}
	}
	servers, _ := p.admin.Servers(context.Background(), time.Minute)
	t.Fatalf("six new sessions all landed on %s: leastconn does not spread new sessions (servers: %+v)", srvA, servers)
	return
}

func queryInt(t *testing.T, s *Session, q string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl, err := s.SQL(ctx, q)
	require.NoError(t, err, q)
	require.NotNil(t, tbl)
	defer tbl.Release()
	return firstInt(t, tbl)
}

func firstInt(t *testing.T, tbl arrow.Table) int64 {
	t.Helper()
	require.EqualValues(t, 1, tbl.NumRows())
	switch c := tbl.Column(0).Data().Chunk(0).(type) {
	case *array.Int64:
		return c.Value(0)
	case *array.Int32:
		return int64(c.Value(0))
	default:
		t.Fatalf("column type %T", c)
		return 0
	}
}

func TestPoolSessionsStayPinnedAndKeepTempViews(t *testing.T) {
	p := newPoolAlone(t)
	a, b, srvA, srvB := p.twoSessionsApart(t)
	ctx := context.Background()
	require.NoError(t, a.Exec(ctx, "CREATE OR REPLACE TEMP VIEW hg_pin AS SELECT 41 AS v"))
	require.NoError(t, b.Exec(ctx, "CREATE OR REPLACE TEMP VIEW hg_pin AS SELECT 7 AS v"))

	totA, totB := p.server(t, srvA).Total, p.server(t, srvB).Total
	const n = 15
	for i := range n {
		require.EqualValues(t, 41+i, queryInt(t, a, fmt.Sprintf("SELECT v + %d FROM hg_pin", i)), "session A request %d", i)
		require.EqualValues(t, 7+i, queryInt(t, b, fmt.Sprintf("SELECT v + %d FROM hg_pin", i)), "session B request %d", i)
	}
	require.Equal(t, srvA, p.serverOf(t, a), "session A moved")
	require.Equal(t, srvB, p.serverOf(t, b), "session B moved")
	// Each SQL is at least two requests (command, then plan); all on the pinned server.
	require.GreaterOrEqual(t, p.server(t, srvA).Total-totA, 2*n)
	require.GreaterOrEqual(t, p.server(t, srvB).Total-totB, 2*n)
}

func TestPoolNewSessionGoesToLessLoadedServer(t *testing.T) {
	p := newPoolAlone(t)
	a, _, srvA, _ := p.twoSessionsApart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A request that stays in flight without using the CPU: an 8 s sleep.
	done := make(chan error, 1)
	go func() {
		tbl, err := a.SQL(ctx, "SELECT reflect('java.lang.Thread', 'sleep', bigint(8000))")
		if tbl != nil {
			tbl.Release()
		}
		done <- err
	}()
	// Wait until A's query is in flight on its server, then open a new session.
	require.Eventually(t, func() bool { return p.server(t, srvA).InFlight > 0 }, 30*time.Second, 50*time.Millisecond)
	c := p.open(t)
	require.NotEqual(t, srvA, p.serverOf(t, c), "new session went to the busy server")
	require.NoError(t, <-done)
}

func TestPoolInterrupt(t *testing.T) {
	p := newPool(t)
	a := p.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	started := time.Now()
	go func() {
		// Minutes of work on 2 cores unless interrupted.
		tbl, err := a.SQL(ctx, "SELECT count(*) FROM range(200000) x CROSS JOIN range(200000) y")
		if tbl != nil {
			tbl.Release()
		}
		done <- err
	}()
	// Interrupt as soon as the call is sent: the server may not have
	// registered its operation yet, and Interrupt must ask again until it has.
	require.Eventually(t, func() bool { return a.inFlight.Load() > 0 }, 30*time.Second, time.Millisecond)
	ictx, icancel := context.WithTimeout(context.Background(), time.Minute)
	defer icancel()
	require.NoError(t, a.Interrupt(ictx))
	select {
	case err := <-done:
		require.Error(t, err, "the interrupted query should fail")
		t.Logf("interrupted after %s: %v", time.Since(started).Round(time.Millisecond), err)
	case <-time.After(time.Minute):
		t.Fatal("interrupt did not end the query")
	}
	require.EqualValues(t, 1, queryInt(t, a, "SELECT 1"), "the session works after the interrupt")
}

// rawConfigCall calls SparkConnectService/Config on the pool with the given metadata,
// without the package's interceptors.
func rawConfigCall(t *testing.T, url string, md metadata.MD, sessionID string) error {
	t.Helper()
	target, err := parseURL(url)
	require.NoError(t, err)
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	reqT, err := protoregistry.GlobalTypes.FindMessageByName("spark.connect.ConfigRequest")
	require.NoError(t, err)
	respT, err := protoregistry.GlobalTypes.FindMessageByName("spark.connect.ConfigResponse")
	require.NoError(t, err)
	req := reqT.New()
	req.Set(req.Descriptor().Fields().ByName("session_id"), protoreflect.ValueOfString(sessionID))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return conn.Invoke(ctx, "/spark.connect.SparkConnectService/Config", req.Interface(), respT.New().Interface())
}

func TestPoolRefusesRequestsWithoutSessionHeader(t *testing.T) {
	p := newPool(t)
	id := "00112233-4455-6677-8899-aabbccddeeff"
	for _, tc := range []struct {
		name    string
		md      metadata.MD
		refused bool
	}{
		{"no header", nil, true},
		{"empty header", metadata.Pairs(SessionHeader, ""), true},
		{"header of 65 bytes", metadata.Pairs(SessionHeader, strings.Repeat("a", 65)), true},
		{"header of 64 bytes", metadata.Pairs(SessionHeader, strings.Repeat("a", 64)), false},
		{"session id as header", metadata.Pairs(SessionHeader, id), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rawConfigCall(t, p.url, tc.md, id)
			st, _ := status.FromError(err)
			if tc.refused {
				require.Error(t, err)
				require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
				require.True(t, strings.HasPrefix(st.Message(), "hourglass-pool:"), st.Message())
				kind, _ := classify(err)
				require.Equal(t, kindNoHeader, kind)
			} else if err != nil {
				require.False(t, strings.HasPrefix(st.Message(), "hourglass-pool:"), "refused by the pool: %v", err)
			}
		})
	}
}

func pidOf(t *testing.T, name string) int {
	t.Helper()
	home := stacktest.Get(t, "HOURGLASS_HOME")
	b, err := os.ReadFile(filepath.Join(home, "run", "pids", name+".pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func TestPoolServerKilled(t *testing.T) {
	p := newPoolAlone(t)
	a, b, srvA, srvB := p.twoSessionsApart(t)
	ctx := context.Background()
	require.NoError(t, a.Exec(ctx, "CREATE OR REPLACE TEMP VIEW hg_kill AS SELECT 1 AS v"))
	require.NoError(t, b.Exec(ctx, "CREATE OR REPLACE TEMP VIEW hg_kill AS SELECT 2 AS v"))
	t.Cleanup(func() { p.waitAllUp(t, 3*time.Minute) })

	pid := pidOf(t, srvA)
	// spark-submit's JVM is the process group leader's child: kill the whole group,
	// as a crashed host would.
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	killed := time.Now()
	require.Eventually(t, func() bool { return p.server(t, srvA).Status == "DOWN" }, 10*time.Second, 100*time.Millisecond,
		"HAProxy did not mark %s down", srvA)
	t.Logf("%s marked DOWN %s after SIGKILL", srvA, time.Since(killed).Round(time.Millisecond))
	require.Less(t, time.Since(killed), 5*time.Second, "down detection slower than the check window (inter 1s fall 2)")

	// A's session lived on the dead server: a typed error, quickly, not a hang.
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.SQL(qctx, "SELECT v FROM hg_kill")
	require.ErrorIs(t, err, ErrSessionLost, "%v", err)
	require.NoError(t, qctx.Err(), "lost session detected only by the deadline")
	t.Logf("lost session reported after %s: %v", time.Since(start).Round(time.Millisecond), err)
	_, err = a.SQL(qctx, "SELECT 1")
	require.ErrorIs(t, err, ErrSessionLost, "a lost session stays lost")

	// B, on the other server, keeps its state; new sessions go to the survivor.
	require.EqualValues(t, 2, queryInt(t, b, "SELECT v FROM hg_kill"))
	c := p.open(t)
	require.Equal(t, srvB, p.serverOf(t, c))
	require.EqualValues(t, 5, queryInt(t, c, "SELECT 5"))

	// Back up: the restarted server takes new sessions again.
	restartPool(t)
	require.Eventually(t, func() bool { return p.server(t, srvA).Status == "UP" }, time.Minute, 200*time.Millisecond)
	landed := false
	for range 6 {
		if p.serverOf(t, p.open(t)) == srvA {
			landed = true
			break
		}
	}
	require.True(t, landed, "no new session landed on the restarted %s", srvA)
}

func TestPoolDrain(t *testing.T) {
	p := newPoolAlone(t)
	a, _, srvA, srvB := p.twoSessionsApart(t)
	ctx := context.Background()
	require.NoError(t, a.Exec(ctx, "CREATE OR REPLACE TEMP VIEW hg_drain AS SELECT 3 AS v"))
	t.Cleanup(func() { require.NoError(t, p.admin.SetState(context.Background(), srvA, "ready")) })

	const activeWithin = 10 * time.Second
	type result struct {
		rep poolctl.DrainReport
		err error
	}
	done := make(chan result, 1)
	require.EqualValues(t, 3, queryInt(t, a, "SELECT v FROM hg_drain"))
	go func() {
		rep, err := p.admin.Drain(ctx, srvA, time.Minute, 200*time.Millisecond, activeWithin)
		done <- result{rep, err}
	}()
	require.Eventually(t, func() bool { return p.server(t, srvA).Status == "DRAIN" }, 10*time.Second, 50*time.Millisecond)

	// The pinned session keeps answering on the draining server, and keeps it busy.
	for i := range 5 {
		require.EqualValues(t, 3+i, queryInt(t, a, fmt.Sprintf("SELECT v + %d FROM hg_drain", i)))
	}
	require.Equal(t, srvA, p.serverOf(t, a))
	select {
	case r := <-done:
		t.Fatalf("drain reported before the active session went quiet: %+v %v", r.rep, r.err)
	default:
	}
	// No new session lands there.
	for range 4 {
		require.Equal(t, srvB, p.serverOf(t, p.open(t)), "a new session landed on the draining server")
	}
	// Once A is quiet for the active window, the drain reports idle.
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.True(t, r.rep.Idle)
		require.Zero(t, r.rep.InFlight)
		require.Zero(t, r.rep.Active)
		require.GreaterOrEqual(t, r.rep.Sessions, 1, "A is still pinned there")
		t.Logf("drain report: %+v", r.rep)
	case <-time.After(time.Minute):
		t.Fatal("drain did not report")
	}
	// Pinned but idle, A still works on the drained server.
	require.EqualValues(t, 3, queryInt(t, a, "SELECT v FROM hg_drain"))
}

func TestPoolContextDeadline(t *testing.T) {
	p := newPool(t)
	s := p.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.SQL(ctx, "SELECT count(*) FROM range(0, 4000000000)")
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.EqualValues(t, 1, queryInt(t, s, "SELECT 1"), "the session survives a cancelled call")

	// Close releases the session on its server; the session is unusable after.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	require.NoError(t, s.Close(cctx))
	require.NoError(t, s.Close(cctx), "a second close is a no-op")
	_, err = s.SQL(cctx, "SELECT 1")
	require.ErrorIs(t, err, ErrClosed)
}

// pysparkThroughPool is what a PySpark user does: the session header as a
// connection-string parameter (PySpark sends non-reserved parameters as gRPC
// metadata), and the same id as Spark's session id.
const pysparkThroughPool = `
import json, sys
from pyspark.sql import SparkSession
url, sid = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.remote(f"{url}/;session_id={sid};x-hourglass-session={sid}").getOrCreate()
spark.sql("CREATE OR REPLACE TEMP VIEW hg_py AS SELECT 21 AS v")
out = [spark.sql(f"SELECT v * 2 + {i} AS w FROM hg_py").collect()[0]["w"] for i in range(10)]
print(json.dumps({"results": out}))
spark.stop()
`

func TestPoolTempViewFromPySpark(t *testing.T) {
	p := newPool(t)
	python := stacktest.Get(t, "HOURGLASS_PYTHON")
	sid := newUUID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", pysparkThroughPool, p.url, sid).Output()
	var stderr string
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "pyspark: %s", stderr)
	var res struct{ Results []int64 }
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &res), string(out))
	want := make([]int64, 10)
	for i := range want {
		want[i] = 42 + int64(i)
	}
	require.Equal(t, want, res.Results, "the temp view was visible on every request of the session")
	entries, err := p.admin.Entries(context.Background())
	require.NoError(t, err)
	found := false
	for _, e := range entries {
		found = found || e.Key == sid
	}
	require.True(t, found, "PySpark's session %s is not pinned in HAProxy's stick table", sid)
}

func newUUID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func TestPoolHAProxyConfigAndMetrics(t *testing.T) {
	bin := stacktest.Get(t, "HOURGLASS_HAPROXY_BIN")
	cfg, err := filepath.Abs(filepath.Join("..", "..", "haproxy", "spark-connect.cfg"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "-c", "-f", cfg)
	cmd.Env = append(os.Environ(), "SC_POOL_BIND=127.0.0.1:25000", "SC_POOL_STATS_BIND=127.0.0.1:25001",
		"SC_POOL_ADMIN_SOCKET="+filepath.Join(t.TempDir(), "admin.sock"),
		"SC_SERVER_1=127.0.0.1:15002", "SC_SERVER_2=127.0.0.1:15012")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), "WARNING", "haproxy -c warns: %s", out)

	// The running pool exposes HAProxy's metrics for Prometheus, per server.
	newPool(t)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get(stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL_METRICS"))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{
		`haproxy_server_status{proxy="spark_connect_servers",server="spark-connect-1",state="UP"} 1`,
		`haproxy_server_current_sessions{proxy="spark_connect_servers",server="spark-connect-2"}`,
		`haproxy_sticktable_used{name="spark_connect_servers"`,
	} {
		require.Contains(t, string(body), want)
	}
}

func TestPoolMaxRows(t *testing.T) {
	p := newPool(t)
	cfg := DefaultConfig()
	cfg.URL, cfg.MaxRows = p.url, 3
	c, err := New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := c.Open(ctx)
	require.NoError(t, err)
	defer s.Close(ctx)
	tbl, err := s.SQL(ctx, "SELECT id FROM range(3)")
	require.NoError(t, err, "at the bound")
	require.EqualValues(t, 3, tbl.NumRows())
	tbl.Release()
	_, err = s.SQL(ctx, "SELECT id FROM range(4)")
	require.ErrorIs(t, err, ErrTooManyRows)
	tbl, err = s.SQL(ctx, "SELECT id FROM range(0)")
	require.NoError(t, err)
	if tbl != nil {
		require.Zero(t, tbl.NumRows())
		tbl.Release()
	}
}
