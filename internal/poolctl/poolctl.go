// Package poolctl operates the Spark Connect pool through HAProxy's runtime API (the
// admin socket of haproxy/spark-connect.cfg): list the servers with their state and
// sessions, drain one (new sessions go elsewhere, pinned sessions keep working, wait
// until it is idle), bring it back. `hourglass pool` is its command line.
//
// Sessions are counted from the backend's stick table: every entry is one session id
// (x-hourglass-session) pinned to a server, and its gpt0 holds the unix time of the
// session's last request. A session is active when its last request is more recent
// than the active window; a server is idle when it has no request in flight and no
// active session.
package poolctl

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultBackend is the backend of haproxy/spark-connect.cfg.
const DefaultBackend = "spark_connect_servers"

// maxResponse bounds what is read from the socket for one command.
const maxResponse = 64 << 20

// ErrDrainTimeout: the server was still busy when the drain's timeout passed.
var ErrDrainTimeout = errors.New("poolctl: drain timed out before the server was idle")

// Admin talks to one HAProxy admin socket.
type Admin struct {
	Socket  string // path of the stats socket (level admin), or tcp://host:port
	Backend string // the pool's backend
	Now     func() time.Time
}

// Server is one pool member as HAProxy sees it.
type Server struct {
	Name        string `json:"name"`
	ID          int    `json:"id"`
	Addr        string `json:"addr"`
	Status      string `json:"status"` // UP, DOWN, DRAIN, MAINT, "UP 1/2", ...
	CheckStatus string `json:"check_status"`
	Weight      int    `json:"weight"`
	InFlight    int    `json:"in_flight"`      // requests being served now (scur)
	Total       int    `json:"total_requests"` // requests served since start (stot)
	Sessions    int    `json:"sessions"`       // session ids pinned to it (stick table)
	Active      int    `json:"active_sessions"`
}

// Idle: no request in flight and no active session.
func (s Server) Idle() bool { return s.InFlight == 0 && s.Active == 0 }

// Entry is one stick-table entry: a session id pinned to a server.
type Entry struct {
	Key      string
	ServerID int
	LastSeen time.Time // from gpt0; zero when unknown
}

// Command sends one runtime API command and returns the answer.
func (a *Admin) Command(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\n;") {
		return "", fmt.Errorf("poolctl: command %q: newlines and ';' are not allowed", cmd)
	}
	var d net.Dialer
	network, addr := "unix", a.Socket
	if rest, ok := strings.CutPrefix(a.Socket, "tcp://"); ok {
		network, addr = "tcp", rest
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("poolctl: connect to admin socket %s: %w", a.Socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("poolctl: %s: %w", cmd, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxResponse+1))
	if err != nil {
		return "", fmt.Errorf("poolctl: %s: read answer: %w", cmd, err)
	}
	if len(b) > maxResponse {
		return "", fmt.Errorf("poolctl: %s: answer larger than %d bytes", cmd, maxResponse)
	}
	return string(b), nil
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Servers lists the backend's servers with their sessions; a session is active when
// its last request is within activeWithin.
func (a *Admin) Servers(ctx context.Context, activeWithin time.Duration) ([]Server, error) {
	stat, err := a.Command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	servers, err := ParseStat(stat, a.Backend)
	if err != nil {
		return nil, err
	}
	entries, err := a.Entries(ctx)
	if err != nil {
		return nil, err
	}
	CountSessions(servers, entries, a.now().Add(-activeWithin))
	return servers, nil
}

// Entries returns the backend's stick-table entries.
func (a *Admin) Entries(ctx context.Context) ([]Entry, error) {
	out, err := a.Command(ctx, "show table "+a.Backend)
	if err != nil {
		return nil, err
	}
	return ParseTable(out)
}

// SetState sets a server's admin state: ready, drain or maint.
func (a *Admin) SetState(ctx context.Context, server, state string) error {
	switch state {
	case "ready", "drain", "maint":
	default:
		return fmt.Errorf("poolctl: state %q: want ready, drain or maint", state)
	}
	if err := validName(server); err != nil {
		return err
	}
	out, err := a.Command(ctx, fmt.Sprintf("set server %s/%s state %s", a.Backend, server, state))
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(out); msg != "" {
		return fmt.Errorf("poolctl: set server %s/%s state %s: %s", a.Backend, server, state, msg)
	}
	return nil
}

func validName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("poolctl: server name %q: need 1 to 64 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("poolctl: server name %q: only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// DrainReport is what a drain ended with.
type DrainReport struct {
	Server   string        `json:"server"`
	Idle     bool          `json:"idle"`
	Waited   time.Duration `json:"waited_ns"`
	InFlight int           `json:"in_flight"`
	Active   int           `json:"active_sessions"`
	Sessions int           `json:"pinned_sessions"`
}

// Drain puts a server in drain state (no new sessions; pinned sessions keep
// working) and waits until it is idle or timeout passes (ErrDrainTimeout, with the
// report of the last look).
func (a *Admin) Drain(ctx context.Context, server string, timeout, poll, activeWithin time.Duration) (DrainReport, error) {
	start := a.now()
	rep := DrainReport{Server: server}
	if err := a.SetState(ctx, server, "drain"); err != nil {
		return rep, err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		servers, err := a.Servers(ctx, activeWithin)
		if err != nil {
			return rep, err
		}
		s, ok := find(servers, server)
		if !ok {
			return rep, fmt.Errorf("poolctl: server %s is not in backend %s", server, a.Backend)
		}
		rep.InFlight, rep.Active, rep.Sessions = s.InFlight, s.Active, s.Sessions
		rep.Waited = a.now().Sub(start)
		if s.Idle() {
			rep.Idle = true
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-deadline.C:
			return rep, fmt.Errorf("%w: %s has %d requests in flight and %d active sessions after %s",
				ErrDrainTimeout, server, rep.InFlight, rep.Active, timeout)
		case <-time.After(poll):
		}
	}
}

func find(servers []Server, name string) (Server, bool) {
	for _, s := range servers {
		if s.Name == name {
			return s, true
		}
	}
	return Server{}, false
}

// ParseStat reads `show stat` CSV and returns the servers of backend, in id order.
func ParseStat(text, backend string) ([]Server, error) {
	text = strings.TrimPrefix(text, "# ")
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("poolctl: parse show stat: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("poolctl: show stat answered nothing")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, need := range []string{"pxname", "svname", "scur", "stot", "status", "weight", "sid", "type"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("poolctl: show stat has no %s column (is this HAProxy's stats socket?)", need)
		}
	}
	get := func(row []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return ""
		}
		return row[i]
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	var out []Server
	for _, row := range rows[1:] {
		if get(row, "pxname") != backend || get(row, "type") != "2" { // 2 = server
			continue
		}
		out = append(out, Server{
			Name: get(row, "svname"), ID: atoi(get(row, "sid")), Addr: get(row, "addr"),
			Status: get(row, "status"), CheckStatus: get(row, "check_status"),
			Weight: atoi(get(row, "weight")), InFlight: atoi(get(row, "scur")), Total: atoi(get(row, "stot")),
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("poolctl: backend %s has no servers in show stat", backend)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ParseTable reads `show table <name>` output.
func ParseTable(text string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "Unknown") || strings.HasPrefix(line, "No such") {
			return nil, fmt.Errorf("poolctl: show table: %s", line)
		}
		_, rest, ok := strings.Cut(line, ": key=")
		if !ok {
			return nil, fmt.Errorf("poolctl: show table: unexpected line %q", line)
		}
		key, attrs, _ := strings.Cut(rest, " use=")
		e := Entry{Key: key}
		for _, f := range strings.Fields(attrs) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "server_id":
				e.ServerID, _ = strconv.Atoi(v)
			case "gpt0":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
					e.LastSeen = time.Unix(n, 0)
				}
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// CountSessions fills Sessions and Active of each server from the stick table:
// active sessions made a request at or after activeSince.
func CountSessions(servers []Server, entries []Entry, activeSince time.Time) {
	idx := map[int]int{}
	for i := range servers {
		idx[servers[i].ID] = i
		servers[i].Sessions, servers[i].Active = 0, 0
	}
	for _, e := range entries {
		i, ok := idx[e.ServerID]
		if !ok {
			continue
		}
		servers[i].Sessions++
		if !e.LastSeen.Before(activeSince) {
			servers[i].Active++
		}
	}
}
