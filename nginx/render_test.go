package nginx_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// placeholderRE matches the template's ${HG_*} placeholders (envsubst syntax).
var placeholderRE = regexp.MustCompile(`\$\{(HG_[A-Z0-9_]+)\}`)

// readEnvFile reads KEY=VALUE lines (edge.env).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q is not KEY=VALUE", path, line)
		env[k] = v
	}
	require.NoError(t, sc.Err())
	return env
}

// render replaces every ${HG_*} placeholder of the template with its value,
// as envsubst does, failing on a placeholder without a value.
func render(t *testing.T, template string, vars map[string]string) string {
	t.Helper()
	var missing []string
	out := placeholderRE.ReplaceAllStringFunc(template, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	require.Empty(t, missing, "placeholders without a value")
	return out
}

// nginxSite is what a deployment supplies around the shipped files.
type nginxSite struct {
	Vars      map[string]string // the ${HG_*} values
	Tenants   string            // tenants.map
	Upstreams string            // upstreams.conf
}

// writeNginxConf renders the edge's Nginx configuration into dir and returns
// the path of nginx.conf.
func writeNginxConf(t *testing.T, dir string, site nginxSite) string {
	t.Helper()
	tmpl, err := os.ReadFile("nginx.conf.template")
	require.NoError(t, err)
	logConf, err := os.ReadFile("hourglass-log.conf")
	require.NoError(t, err)
	conf := filepath.Join(dir, "nginx.conf")
	for name, body := range map[string]string{
		conf:                                     render(t, string(tmpl), site.Vars),
		filepath.Join(dir, "hourglass-log.conf"): string(logConf),
		filepath.Join(dir, "tenants.map"):        site.Tenants,
		filepath.Join(dir, "upstreams.conf"):     site.Upstreams,
	} {
		require.NoError(t, os.WriteFile(name, []byte(body), 0o644))
	}
	return conf
}
