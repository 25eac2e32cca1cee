// Package fluentd_test checks the structure of the Fluentd configs. Fluentd
// itself cannot run here (see README.md): these tests parse the files with a
// small reader of Fluentd's config syntax and check the keys the pipeline
// relies on, the routing of every tag the pipeline sends, and that the
// records the ingress's Fluentd sink sends carry the fields the aggregator
// reads.
package fluentd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/forwardtest"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/ingress"
)

// section is one <name arg> ... </name> block of a Fluentd config.
type section struct {
	name, arg string
	params    map[string]string
	children  []*section
}

func (s *section) child(name string) *section {
	for _, c := range s.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (s *section) all(name string) []*section {
	var out []*section
	for _, c := range s.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

// stripComment drops a # comment that is outside double quotes (so
// "#{ENV['X']}" embedded Ruby stays).
func stripComment(line string) string {
	inQuote := false
	for i, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == '#' && !inQuote && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

// parseConfig reads a Fluentd config file into its section tree.
func parseConfig(t *testing.T, path string) *section {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	root := &section{name: "root", params: map[string]string{}}
	stack := []*section{root}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(stripComment(sc.Text()))
		cur := stack[len(stack)-1]
		switch {
		case line == "":
		case strings.HasPrefix(line, "</"):
			name := strings.TrimSuffix(strings.TrimPrefix(line, "</"), ">")
			require.Equal(t, cur.name, name, "%s:%d: </%s> closes <%s>", path, n, name, cur.name)
			stack = stack[:len(stack)-1]
		case strings.HasPrefix(line, "<"):
			require.True(t, strings.HasSuffix(line, ">"), "%s:%d: %q", path, n, line)
			name, arg, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "<"), ">"), " ")
			s := &section{name: name, arg: strings.TrimSpace(arg), params: map[string]string{}}
			cur.children = append(cur.children, s)
			stack = append(stack, s)
		default:
			k, v, _ := strings.Cut(line, " ")
			_, dup := cur.params[k]
			require.False(t, dup, "%s:%d: %s set twice in <%s>", path, n, k, cur.name)
			cur.params[k] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	require.NoError(t, sc.Err())
	require.Len(t, stack, 1, "%s: unclosed <%s>", path, stack[len(stack)-1].name)
	return root
}

// tagMatches implements Fluentd's match patterns: * one tag part, ** zero or
// more parts, {a,b} alternatives, and space-separated patterns.
func tagMatches(pattern, tag string) bool {
	for _, p := range strings.Fields(pattern) {
		if partsMatch(strings.Split(p, "."), strings.Split(tag, ".")) {
			return true
		}
	}
	return false
}

func partsMatch(pat, tag []string) bool {
	if len(pat) == 0 {
		return len(tag) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(tag); i++ {
			if partsMatch(pat[1:], tag[i:]) {
				return true
			}
		}
		return false
	}
	if len(tag) == 0 {
		return false
	}
	ok := pat[0] == "*" || pat[0] == tag[0]
	if strings.HasPrefix(pat[0], "{") && strings.HasSuffix(pat[0], "}") {
		for _, alt := range strings.Split(pat[0][1:len(pat[0])-1], ",") {
			ok = ok || alt == tag[0]
		}
	}
	return ok && partsMatch(pat[1:], tag[1:])
}

// route returns the top-level <match> an event with tag goes to: the first
// whose pattern matches, as Fluentd routes.
func route(t *testing.T, conf *section, tag string) *section {
	t.Helper()
	for _, m := range conf.all("match") {
		if tagMatches(m.arg, tag) {
			return m
		}
	}
	t.Fatalf("no <match> for tag %s", tag)
	return nil
}

func requireParams(t *testing.T, s *section, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := s.params[k]
		require.True(t, ok, "<%s %s> sets %s", s.name, s.arg, k)
		if v != "" {
			require.Equal(t, v, got, "<%s %s> %s", s.name, s.arg, k)
		}
	}
}

// requireDurableBuffer: a file buffer that never gives up.
func requireDurableBuffer(t *testing.T, m *section) {
	t.Helper()
	b := m.child("buffer")
	require.NotNil(t, b, "<match %s> has a <buffer>", m.arg)
	requireParams(t, b, map[string]string{"@type": "file", "path": "", "retry_forever": "true",
		"retry_type": "exponential_backoff", "retry_max_interval": "", "overflow_action": "", "flush_interval": ""})
}

// every <source> and top-level <match> names its plugin and has an @id (for
// the monitoring agent and the logs).
func requireTypedAndNamed(t *testing.T, conf *section) {
	t.Helper()
	for _, s := range append(conf.all("source"), conf.all("match")...) {
		requireParams(t, s, map[string]string{"@type": "", "@id": ""})
	}
}

func nginxAccessLog(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "nginx", "edge.env"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "HG_ACCESS_LOG="); ok {
			return v
		}
	}
	t.Fatal("nginx/edge.env has no HG_ACCESS_LOG")
	return ""
}

func TestForwarder(t *testing.T) {
	conf := parseConfig(t, "forwarder.conf")
	requireTypedAndNamed(t, conf)
	sources := conf.all("source")
	require.Len(t, sources, 1)
	src := sources[0]
	requireParams(t, src, map[string]string{"@type": "tail", "tag": topology.RawTopic, "pos_file": "",
		"path": nginxAccessLog(t), "read_from_head": "true", "follow_inodes": "true"})
	parse := src.child("parse")
	require.NotNil(t, parse)
	requireParams(t, parse, map[string]string{"@type": "json", "time_key": record.FieldTimestamp, "time_type": "string",
		"keep_time_key": "true", "time_format": "%Y-%m-%dT%H:%M:%S.%L%z"})

	m := route(t, conf, src.params["tag"])
	requireParams(t, m, map[string]string{"@type": "forward", "require_ack_response": "true", "ack_response_timeout": ""})
	server := m.child("server")
	require.NotNil(t, server)
	requireParams(t, server, map[string]string{"host": "", "port": ""})
	requireDurableBuffer(t, m)

	errLabel := conf.child("label")
	require.NotNil(t, errLabel)
	require.Equal(t, "@ERROR", errLabel.arg, "unparsable lines are kept, not dropped")
	require.NotEmpty(t, errLabel.all("match"))
}

func TestAggregator(t *testing.T) {
	conf := parseConfig(t, "aggregator.conf")
	requireTypedAndNamed(t, conf)
	sources := conf.all("source")
	require.Len(t, sources, 1)
	requireParams(t, sources[0], map[string]string{"@type": "forward", "port": "24224"})

	raw := route(t, conf, ingress.FluentdRawTag)
	requireParams(t, raw, map[string]string{"@type": "kafka2", "brokers": "", "default_topic": topology.RawTopic,
		"message_key_key": record.FieldTenant, "required_acks": "-1", "max_send_retries": ""})
	require.Equal(t, "json", raw.child("format").params["@type"])
	requireDurableBuffer(t, raw)

	// The DLQ route turns internal/dlq's Fluentd form back into its Kafka message.
	dlqRoute := route(t, conf, ingress.FluentdDLQTag)
	requireParams(t, dlqRoute, map[string]string{"@type": "kafka2", "brokers": "", "default_topic": topology.DLQTopic,
		"message_key_key": dlq.FluentdTenantField, "required_acks": "-1", "headers_from_record": ""})
	var headers map[string]string
	require.NoError(t, json.Unmarshal([]byte(dlqRoute.params["headers_from_record"]), &headers))
	require.Equal(t, map[string]string{dlq.HeaderReason: "$." + dlq.HeaderReason, dlq.HeaderStage: "$." + dlq.HeaderStage}, headers,
		"the DLQ's reason and stage headers")
	format := dlqRoute.child("format")
	requireParams(t, format, map[string]string{"@type": "single_value", "message_key": dlq.FluentdLineField, "add_newline": "false"})
	requireDurableBuffer(t, dlqRoute)

	// The forwarder's tag arrives here too, and the catch-all comes last.
	require.Same(t, raw, route(t, conf, parseConfig(t, "forwarder.conf").all("source")[0].params["tag"]))
	matches := conf.all("match")
	require.Equal(t, "**", matches[len(matches)-1].arg)
}

// TestSinkRecordsFitAggregator sends a raw and a DLQ entry through the
// ingress's Fluentd sink to the Go forward server (over TLS, after the
// shared-key handshake) and checks that every
// record field the aggregator config reads is there.
func TestSinkRecordsFitAggregator(t *testing.T) {
	// As shipped: TLS and the shared key.
	pki, err := forwardtest.NewPKI("127.0.0.1")
	require.NoError(t, err)
	ca, err := pki.WriteCA(t.TempDir(), "ca.crt")
	require.NoError(t, err)
	store := forwardtest.NewStore()
	srv, err := forwardtest.Start("127.0.0.1:0", store, slog.New(slog.NewTextHandler(io.Discard, nil)),
		forwardtest.WithTLS(pki.ServerTLS()), forwardtest.WithSharedKey("aggregator", "k"))
	require.NoError(t, err)
	defer srv.Close()
	sink, err := ingress.NewFluentdSink(ingress.FluentdSinkConfig{Addr: srv.Addr(), Conns: 1,
		TLS: true, CAFile: ca, SharedKey: "k", SelfHostname: "ingress"})
	require.NoError(t, err)
	defer sink.Close()
	raw, err := json.Marshal(record.Record{Timestamp: time.Now(), Tenant: "acme", Method: "GET", Status: 200})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, sink.Write(ctx, []ingress.Entry{
		{Stream: ingress.StreamRaw, Tenant: "acme", Value: raw},
		{Stream: ingress.StreamDLQ, Tenant: "acme", Value: []byte("not json"), Reason: "malformed_json"},
	}))

	conf := parseConfig(t, "aggregator.conf")
	for _, ev := range store.Events() {
		m := route(t, conf, ev.Tag)
		require.Contains(t, ev.Record, m.params["message_key_key"], "%s: the Kafka key field", ev.Tag)
		if f := m.child("format"); f.params["@type"] == "single_value" {
			require.Contains(t, ev.Record, f.params["message_key"], "%s: the value field", ev.Tag)
		}
		if h := m.params["headers_from_record"]; h != "" {
			var headers map[string]string
			require.NoError(t, json.Unmarshal([]byte(h), &headers))
			for name, path := range headers {
				require.Contains(t, ev.Record, strings.TrimPrefix(path, "$."), "%s: header %s", ev.Tag, name)
			}
		}
	}
	require.Equal(t, 2, store.Len())
}

// sharedKeyFromSecret: the shared key comes from the environment or a
// mounted secret file, never a literal in a shipped file.
func sharedKeyFromSecret(v string) bool {
	return strings.HasPrefix(v, "#{") && strings.Contains(v, "ENV['FLUENTD_SHARED_KEY']") &&
		strings.Contains(v, "File.read(ENV['FLUENTD_SHARED_KEY_FILE']")
}

// securityProblems lists what makes a config's forward hop writable by
// anyone who reaches it: every forward input needs <transport tls> (a
// certificate, TLS 1.2 at least) and <security> (self_hostname and a shared
// key from a secret); every forward output needs transport tls with the CA,
// host name verification, and the same <security>.
func securityProblems(conf *section) []string {
	var out []string
	security := func(where string, s *section) {
		sec := s.child("security")
		if sec == nil {
			out = append(out, where+": no <security> (shared key)")
			return
		}
		if sec.params["self_hostname"] == "" {
			out = append(out, where+": <security> without self_hostname")
		}
		if !sharedKeyFromSecret(sec.params["shared_key"]) {
			out = append(out, where+": shared_key is not read from FLUENTD_SHARED_KEY / FLUENTD_SHARED_KEY_FILE")
		}
		if sec.params["user_auth"] == "true" {
			out = append(out, where+": user_auth (the ingress's sink does not support it)")
		}
	}
	for _, s := range conf.all("source") {
		if s.params["@type"] != "forward" {
			continue
		}
		where := "<source " + s.params["@id"] + ">"
		security(where, s)
		tr := s.child("transport")
		if tr == nil || tr.arg != "tls" {
			out = append(out, where+": no <transport tls>")
			continue
		}
		for _, k := range []string{"cert_path", "private_key_path"} {
			if tr.params[k] == "" {
				out = append(out, where+": <transport tls> without "+k)
			}
		}
		if v := tr.params["min_version"]; v != "TLS1_2" && v != "TLS1_3" {
			out = append(out, where+": min_version "+v+", want TLS1_2 or later")
		}
		if (tr.params["min_version"] == "") != (tr.params["max_version"] == "") {
			out = append(out, where+": min_version and max_version go together")
		}
		if tr.params["insecure"] == "true" {
			out = append(out, where+": insecure TLS")
		}
	}
	for _, m := range conf.all("match") {
		if m.params["@type"] != "forward" {
			continue
		}
		where := "<match " + m.arg + ">"
		security(where, m)
		if m.params["transport"] != "tls" {
			out = append(out, where+": transport is not tls")
		}
		if m.params["tls_cert_path"] == "" {
			out = append(out, where+": no tls_cert_path (the CA of the aggregator's certificate)")
		}
		if m.params["tls_verify_hostname"] != "true" {
			out = append(out, where+": tls_verify_hostname is not true")
		}
		for _, k := range []string{"tls_insecure_mode", "tls_allow_self_signed_cert"} {
			if m.params[k] == "true" {
				out = append(out, where+": "+k+" true")
			}
		}
	}
	return out
}

// TestForwardHopIsSecured: no shipped config has a forward input or output
// without TLS and the shared key, and both ends read the key the same way.
func TestForwardHopIsSecured(t *testing.T) {
	confs, err := filepath.Glob("*.conf")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"aggregator.conf", "forwarder.conf"}, confs, "a new config is checked here too")
	keys := map[string]string{}
	for _, name := range confs {
		conf := parseConfig(t, name)
		require.Empty(t, securityProblems(conf), name)
		for _, s := range append(conf.all("source"), conf.all("match")...) {
			if sec := s.child("security"); sec != nil {
				keys[name] = sec.params["shared_key"]
			}
		}
	}
	require.Len(t, keys, 2, "the aggregator's input and the forwarder's output are both secured")
	require.Equal(t, keys["aggregator.conf"], keys["forwarder.conf"], "both ends read the same key")

	agg := parseConfig(t, "aggregator.conf").all("source")[0]
	require.Equal(t, "TLS1_2", agg.child("transport").params["min_version"])
	fwd := route(t, parseConfig(t, "forwarder.conf"), topology.RawTopic)
	requireParams(t, fwd, map[string]string{"transport": "tls", "tls_verify_hostname": "true", "tls_cert_path": ""})
}

// TestSecurityProblemsFindsOpenHops: the check above fails on each way a
// forward hop can be left open.
func TestSecurityProblemsFindsOpenHops(t *testing.T) {
	const key = `"#{ENV['FLUENTD_SHARED_KEY'] || File.read(ENV['FLUENTD_SHARED_KEY_FILE'] || '/k').strip}"`
	const goodSecurity = "<security>\nself_hostname agg\nshared_key " + key + "\n</security>\n"
	const goodTransport = "<transport tls>\ncert_path /c\nprivate_key_path /k\nmin_version TLS1_2\nmax_version TLS1_3\n</transport>\n"
	source := func(body string) string { return "<source>\n@type forward\n@id in\n" + body + "</source>\n" }
	match := func(body string) string { return "<match **>\n@type forward\n@id out\n" + body + "</match>\n" }
	const goodOut = "transport tls\ntls_cert_path /ca\ntls_verify_hostname true\n"
	tests := []struct {
		name, conf, want string
	}{
		{"secured input", source(goodTransport + goodSecurity), ""},
		{"secured output", match(goodOut + goodSecurity), ""},
		{"plain input", source("port 24224\n"), "no <security>"},
		{"no TLS", source(goodSecurity), "no <transport tls>"},
		{"transport tcp", source("<transport tcp>\n</transport>\n" + goodSecurity), "no <transport tls>"},
		{"no key", source(goodTransport + "<security>\nself_hostname agg\n</security>\n"), "shared_key is not read"},
		{"literal key", source(goodTransport + "<security>\nself_hostname agg\nshared_key secret\n</security>\n"), "shared_key is not read"},
		{"no cert", source("<transport tls>\nmin_version TLS1_2\nmax_version TLS1_3\n</transport>\n" + goodSecurity), "without cert_path"},
		{"TLS 1.1", source("<transport tls>\ncert_path /c\nprivate_key_path /k\nmin_version TLS1_1\nmax_version TLS1_3\n</transport>\n" + goodSecurity), "min_version TLS1_1"},
		{"insecure", source("<transport tls>\ncert_path /c\nprivate_key_path /k\nmin_version TLS1_2\nmax_version TLS1_3\ninsecure true\n</transport>\n" + goodSecurity), "insecure TLS"},
		{"plain output", match(goodSecurity), "transport is not tls"},
		{"output without hostname check", match("transport tls\ntls_cert_path /ca\ntls_verify_hostname false\n" + goodSecurity), "tls_verify_hostname"},
		{"output without key", match(goodOut), "no <security>"},
		{"output insecure", match(goodOut + "tls_insecure_mode true\n" + goodSecurity), "tls_insecure_mode true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.conf")
			require.NoError(t, os.WriteFile(path, []byte(tc.conf), 0o600))
			problems := securityProblems(parseConfig(t, path))
			if tc.want == "" {
				require.Empty(t, problems)
				return
			}
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "\n"), tc.want)
		})
	}
}
