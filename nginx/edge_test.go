package nginx_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/services/ingress"
)

// logFormat returns the JSON template of the hourglass_json log_format: its
// single-quoted pieces joined.
func logFormat(t *testing.T) string {
	t.Helper()
	conf, err := os.ReadFile("hourglass-log.conf")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(conf), "log_format hourglass_json escape=json")
	require.True(t, ok, "hourglass-log.conf defines log_format hourglass_json escape=json")
	body, _, ok := strings.Cut(rest, "';")
	require.True(t, ok)
	var b strings.Builder
	for _, piece := range regexp.MustCompile(`'([^']*)`).FindAllStringSubmatch(body+"'", -1) {
		if strings.TrimSpace(piece[1]) != "" {
			b.WriteString(piece[1])
		}
	}
	return b.String()
}

// TestLogFormatIsTheRecordSchema: the access log's keys are exactly the
// record's fields, in canonical order, quoted exactly when the schema's type
// is a string.
func TestLogFormatIsTheRecordSchema(t *testing.T) {
	format := logFormat(t)
	require.True(t, strings.HasPrefix(format, "{") && strings.HasSuffix(format, "}"), format)
	pairs := regexp.MustCompile(`"([a-z_]+)":("?)\$([a-z0-9_]+)("?)`).FindAllStringSubmatch(format, -1)
	fields := record.Fields()
	require.Len(t, pairs, len(fields), "one key per record field: %s", format)
	for i, f := range fields {
		p := pairs[i]
		require.Equal(t, f.Name, p[1], "field %d", i)
		quoted := p[2] == `"`
		require.Equal(t, quoted, p[4] == `"`, "%s: balanced quotes", f.Name)
		switch f.Type {
		case record.TypeInt, record.TypeFloat:
			require.False(t, quoted, "%s is a JSON number in the schema", f.Name)
		default:
			require.True(t, quoted, "%s is a JSON string in the schema", f.Name)
		}
	}
}

// TestTemplatePlaceholders: every placeholder of the template has a
// production value in edge.env and edge.env has nothing else.
func TestTemplatePlaceholders(t *testing.T) {
	tmpl, err := os.ReadFile("nginx.conf.template")
	require.NoError(t, err)
	env := readEnvFile(t, "edge.env")
	used := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(string(tmpl), -1) {
		used[m[1]] = true
		require.Contains(t, env, m[1], "edge.env gives ${%s} a production value", m[1])
	}
	for k := range env {
		require.True(t, used[k], "edge.env's %s is not used by the template", k)
	}
	rendered := render(t, string(tmpl), env)
	require.NotContains(t, rendered, "${HG_")
}

// TestLimitsMatchIngress: Nginx refuses what the ingress would refuse.
func TestLimitsMatchIngress(t *testing.T) {
	tmpl, err := os.ReadFile("nginx.conf.template")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*client_max_body_size\s+(\d+)m;`).FindStringSubmatch(string(tmpl))
	require.NotNil(t, m, "client_max_body_size in megabytes")
	mb, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	require.Equal(t, ingress.DefaultConfig().MaxBodyBytes, mb<<20, "client_max_body_size = ingress --max-body-bytes")
	for _, want := range []string{"proxy_http_version 1.1;", `proxy_set_header Connection "";`, "keepalive 64;",
		"proxy_next_upstream error timeout non_idempotent;", "real_ip_header proxy_protocol;", "proxy_protocol;"} {
		require.Contains(t, string(tmpl), want)
	}
}

// TestSiteExamples: the example tenants map names valid tenants, and every
// example upstream has passive health parameters.
func TestSiteExamples(t *testing.T) {
	tenantRE := regexp.MustCompile(record.TenantPattern)
	tenants, err := os.ReadFile("tenants.map.example")
	require.NoError(t, err)
	var n int
	for _, line := range strings.Split(string(tenants), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(strings.TrimSuffix(line, ";"))
		require.Len(t, f, 2, line)
		require.Regexp(t, tenantRE, f[1], line)
		n++
	}
	require.Positive(t, n)
	ups, err := os.ReadFile("upstreams.conf.example")
	require.NoError(t, err)
	for _, line := range strings.Split(string(ups), "\n") {
		if strings.HasPrefix(line, "server ") {
			require.Contains(t, line, "max_fails=")
			require.Contains(t, line, "fail_timeout=")
		}
	}
}
