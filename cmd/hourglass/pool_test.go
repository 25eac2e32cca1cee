package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakePoolSocket answers the runtime API like HAProxy with two servers, one
// session pinned to s1.
func fakePoolSocket(t *testing.T) (string, func() []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pool")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	var mu sync.Mutex
	var cmds []string
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
			mu.Lock()
			cmds = append(cmds, cmd)
			mu.Unlock()
			switch {
			case cmd == "show stat":
				_, _ = c.Write([]byte("# pxname,svname,scur,stot,status,weight,sid,type,addr,check_status\n" +
					"spark_connect_servers,s1,0,12,UP,1,1,2,127.0.0.1:15002,L4OK\n" +
					"spark_connect_servers,s2,0,7,UP,1,2,2,127.0.0.1:15012,L4OK\n"))
			case strings.HasPrefix(cmd, "show table"):
				_, _ = c.Write([]byte("# table: spark_connect_servers\n0x1: key=k1 use=0 exp=1 server_id=1 gpt0=1\n"))
			case strings.Contains(cmd, "/nope "):
				_, _ = c.Write([]byte("No such server.\n\n"))
			default:
				_, _ = c.Write([]byte("\n"))
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return sock, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), cmds...) }
}

func TestPoolCommand(t *testing.T) {
	sock, sent := fakePoolSocket(t)
	code, out, _ := runArgs("pool", "--admin-socket", sock, "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "SERVER")
	require.Regexp(t, `s1\s+127\.0\.0\.1:15002\s+UP\s+L4OK\s+0\s+1\s+0\s+12`, out)
	require.Regexp(t, `s2\s+127\.0\.0\.1:15012\s+UP\s+L4OK\s+0\s+0\s+0\s+7`, out)

	code, out, _ = runArgs("pool", "--admin-socket", sock, "--json", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"name":"s1"`)

	// The pinned session is long quiet: the drain is idle at the first look.
	code, out, _ = runArgs("pool", "--admin-socket", sock, "drain", "s1")
	require.Equal(t, 0, code)
	require.Contains(t, out, "s1: idle after")
	code, out, _ = runArgs("pool", "--admin-socket", sock, "ready", "s1")
	require.Equal(t, 0, code)
	require.Contains(t, out, "s1 is back in rotation")
	require.Contains(t, sent(), "set server spark_connect_servers/s1 state drain")
	require.Contains(t, sent(), "set server spark_connect_servers/s1 state ready")

	code, _, errOut := runArgs("pool", "--admin-socket", sock, "ready", "nope")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "No such server")
}

func TestPoolCommandUsage(t *testing.T) {
	code, _, errOut := runArgs("pool", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "drain SERVER")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"pool", "--admin-socket", "/x"}, "a subcommand is needed"},
		{"no socket", []string{"pool", "--admin-socket", "", "list"}, "--admin-socket is empty"},
		{"unknown subcommand", []string{"pool", "--admin-socket", "/x", "nuke"}, "unknown subcommand"},
		{"drain without server", []string{"pool", "--admin-socket", "/x", "drain"}, "takes one server name"},
		{"timeout over the bound", []string{"pool", "--admin-socket", "/x", "--timeout", "24h1s", "list"}, "--timeout"},
		{"poll under the bound", []string{"pool", "--admin-socket", "/x", "--poll", "9ms", "list"}, "--poll"},
		{"list with arguments", []string{"pool", "--admin-socket", "/x", "list", "s1"}, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runArgs(tc.args...)
			require.Equal(t, 2, code)
			require.Contains(t, errOut, tc.want)
		})
	}
	// At the bounds: accepted (the socket is missing, so the command itself fails: exit 1).
	code, _, _ = runArgs("pool", "--admin-socket", "/nonexistent.sock", "--timeout", "24h", "--poll", "10ms", "list")
	require.Equal(t, 1, code)
}
