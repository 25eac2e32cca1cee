package poolctl

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

func TestParseStat(t *testing.T) {
	servers, err := ParseStat(readTestdata(t, "show-stat.csv"), DefaultBackend)
	require.NoError(t, err)
	require.Len(t, servers, 2)
	require.Equal(t, Server{Name: "spark-connect-1", ID: 1, Addr: "127.0.0.1:15002", Status: "UP", CheckStatus: "L4OK",
		Weight: 1, Total: 17}, servers[0])
	require.Equal(t, "spark-connect-2", servers[1].Name)
	require.Equal(t, 2, servers[1].ID)

	for _, tc := range []struct{ name, text, backend, want string }{
		{"unknown backend", readTestdata(t, "show-stat.csv"), "nope", "has no servers"},
		{"not a stat answer", "Unknown command.\n", DefaultBackend, "has no pxname column"},
		{"empty", "", DefaultBackend, "answered nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStat(tc.text, tc.backend)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseTable(t *testing.T) {
	entries, err := ParseTable(readTestdata(t, "show-table.txt"))
	require.NoError(t, err)
	require.Len(t, entries, 3)
	require.Equal(t, Entry{Key: "0b08ebd8-25f7-401c-9c9b-83873933639d", ServerID: 2, LastSeen: time.Unix(1796354251, 0)}, entries[0])

	// A key with spaces (any header value) and an entry without gpt0.
	entries, err = ParseTable("0x1: key=a b use=0 exp=10 server_id=1 server_key=s1\n")
	require.NoError(t, err)
	require.Equal(t, []Entry{{Key: "a b", ServerID: 1}}, entries)

	_, err = ParseTable("Unknown table name.\n")
	require.ErrorContains(t, err, "Unknown table")
	_, err = ParseTable("garbage\n")
	require.ErrorContains(t, err, "unexpected line")
}

func TestCountSessions(t *testing.T) {
	now := time.Unix(1000, 0)
	servers := []Server{{Name: "a", ID: 1}, {Name: "b", ID: 2}}
	CountSessions(servers, []Entry{
		{Key: "s1", ServerID: 1, LastSeen: now},
		{Key: "s2", ServerID: 1, LastSeen: now.Add(-time.Minute)}, // exactly at the window: active
		{Key: "s3", ServerID: 1, LastSeen: now.Add(-time.Minute - time.Second)},
		{Key: "s4", ServerID: 2}, // no last-seen: pinned, not active
		{Key: "s5", ServerID: 9}, // unknown server: ignored
	}, now.Add(-time.Minute))
	require.Equal(t, 3, servers[0].Sessions)
	require.Equal(t, 2, servers[0].Active)
	require.Equal(t, 1, servers[1].Sessions)
	require.Equal(t, 0, servers[1].Active)
	require.False(t, servers[0].Idle())
	require.True(t, servers[1].Idle())
}

// fakeHAProxy answers runtime API commands on a unix socket.
type fakeHAProxy struct {
	mu       sync.Mutex
	answer   func(cmd string) string
	commands []string
}

func startFake(t *testing.T, answer func(cmd string) string) (*fakeHAProxy, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "poolctl")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	f := &fakeHAProxy{answer: answer}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			cmd := strings.TrimSpace(line)
			f.mu.Lock()
			f.commands = append(f.commands, cmd)
			ans := f.answer(cmd)
			f.mu.Unlock()
			_, _ = c.Write([]byte(ans))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f, sock
}

func (f *fakeHAProxy) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

const statHeader = "# pxname,svname,scur,stot,status,weight,sid,type,addr,check_status\n"

func TestSetState(t *testing.T) {
	f, sock := startFake(t, func(cmd string) string {
		if strings.Contains(cmd, "/nope ") {
			return "No such server.\n\n"
		}
		return "\n"
	})
	a := &Admin{Socket: sock, Backend: DefaultBackend}
	ctx := context.Background()
	require.NoError(t, a.SetState(ctx, "spark-connect-1", "drain"))
	require.NoError(t, a.SetState(ctx, "spark-connect-1", "ready"))
	require.ErrorContains(t, a.SetState(ctx, "nope", "drain"), "No such server")
	require.ErrorContains(t, a.SetState(ctx, "spark-connect-1", "down"), "want ready, drain or maint")
	require.ErrorContains(t, a.SetState(ctx, "a;shutdown", "ready"), "only letters")
	require.ErrorContains(t, a.SetState(ctx, strings.Repeat("a", 65), "ready"), "1 to 64")
	require.NoError(t, a.SetState(ctx, strings.Repeat("a", 64), "ready"))
	_, err := a.Command(ctx, "show stat\nshutdown")
	require.ErrorContains(t, err, "not allowed")
	require.Equal(t, []string{
		"set server spark_connect_servers/spark-connect-1 state drain",
		"set server spark_connect_servers/spark-connect-1 state ready",
		"set server spark_connect_servers/nope state drain",
		"set server spark_connect_servers/" + strings.Repeat("a", 64) + " state ready",
	}, f.sent())
}

func TestDrainWaitsUntilIdle(t *testing.T) {
	now := time.Unix(10_000, 0)
	var mu sync.Mutex
	looks := 0
	_, sock := startFake(t, func(cmd string) string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd == "show stat":
			looks++
			inflight := "0"
			if looks <= 2 { // busy for the first two looks
				inflight = "1"
			}
			return statHeader +
				"spark_connect_servers,s1," + inflight + ",5,DRAIN,0,1,2,127.0.0.1:1,L4OK\n" +
				"spark_connect_servers,s2,0,5,UP,1,2,2,127.0.0.1:2,L4OK\n"
		case strings.HasPrefix(cmd, "show table"):
			// One session pinned to s1, quiet for two minutes.
			return "# table: x\n0x1: key=k use=0 exp=1 server_id=1 gpt0=9880\n"
		default:
			return "\n"
		}
	})
	a := &Admin{Socket: sock, Backend: DefaultBackend, Now: func() time.Time { return now }}
	rep, err := a.Drain(context.Background(), "s1", 10*time.Second, 10*time.Millisecond, time.Minute)
	require.NoError(t, err)
	require.True(t, rep.Idle)
	require.Equal(t, 1, rep.Sessions)
	require.Zero(t, rep.Active)
	require.Equal(t, 3, looks)

	// An active session keeps it busy: the drain times out and says why.
	now = time.Unix(9_900, 0)
	rep, err = a.Drain(context.Background(), "s1", 100*time.Millisecond, 10*time.Millisecond, time.Minute)
	require.ErrorIs(t, err, ErrDrainTimeout)
	require.False(t, rep.Idle)
	require.Equal(t, 1, rep.Active)

	_, err = a.Drain(context.Background(), "missing", time.Second, 10*time.Millisecond, time.Minute)
	require.ErrorContains(t, err, "not in backend")
}

func TestCommandWithoutSocket(t *testing.T) {
	a := &Admin{Socket: filepath.Join(t.TempDir(), "none.sock"), Backend: DefaultBackend}
	_, err := a.Servers(context.Background(), time.Minute)
	require.ErrorContains(t, err, "connect to admin socket")
}

func TestCommandOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- ""
			return
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("\n"))
		c.Close()
		done <- strings.TrimSpace(line)
	}()
	defer ln.Close()
	a := &Admin{Socket: "tcp://" + ln.Addr().String(), Backend: DefaultBackend}
	require.NoError(t, a.SetState(context.Background(), "s1", "ready"))
	require.Equal(t, "set server spark_connect_servers/s1 state ready", <-done)
}
