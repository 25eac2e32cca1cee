package composecheck

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const root = "../.."

func composeFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	return b
}

func absRoot(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(root)
	require.NoError(t, err)
	return r
}

func TestComposeFileIsComplete(t *testing.T) {
	p, err := Load(context.Background(), absRoot(t), "docker-compose.yml", composeFile(t))
	require.NoError(t, err)
	require.Empty(t, Check(p, absRoot(t)))

	// The whole system: every engine and every Hourglass service.
	for _, s := range []string{"kafka", "kafka-topics", "elasticsearch", "kibana", "namenode", "datanode",
		"fluentd", "fluentd-forwarder", "haproxy", "nginx", "prometheus", "alertmanager",
		"setup", "tenants", "ingress", "router", "archiver", "indexer", "logpeek", "query", "lagmon", "metrics-jobs",
		"spark-connect"} {
		require.Contains(t, p.Services, s)
	}
	// Official images at the versions of stack/versions.env.
	require.Equal(t, "apache/kafka:3.9.1", p.Services["kafka"].Image)
	require.Equal(t, "apache/hadoop:3.3.6", p.Services["namenode"].Image)
	require.True(t, strings.HasPrefix(p.Services["elasticsearch"].Image, "docker.elastic.co/elasticsearch/elasticsearch:8."))
	require.Equal(t, strings.Replace(p.Services["elasticsearch"].Image, "elasticsearch/elasticsearch", "kibana/kibana", 1),
		p.Services["kibana"].Image, "Kibana and Elasticsearch of the same version")
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	require.Contains(t, string(dockerfile), "apache/spark:4.0.1-")
	require.Equal(t, "spark", p.Services["metrics-jobs"].Build.Target)
	require.Equal(t, "spark", p.Services["spark-connect"].Build.Target, "the Spark Connect server runs the metric jobs' image")
	require.Equal(t, "hourglass", p.Services["router"].Build.Target)

	// Prometheus scrapes every Hourglass service's admin address and loads the
	// lag monitor's rules file itself.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/compose/prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &prom))
	targets := map[string]string{}
	scraped := map[string]string{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				host, port, _ := strings.Cut(tg, ":")
				targets[host] = sc.JobName
				scraped[host] = port
			}
		}
	}
	admin := adminPorts(p)
	require.ElementsMatch(t, []string{"ingress", "router", "archiver", "indexer", "logpeek", "query", "lagmon", "metrics-jobs"}, slices.Collect(maps.Keys(admin)),
		"the Hourglass services with an admin address")
	for s, port := range admin {
		require.Contains(t, targets, s, "prometheus scrapes %s", s)
		require.Equal(t, "hourglass-"+s, targets[s])
		require.Equal(t, port, scraped[s], "prometheus scrapes %s's admin port", s)
	}
	require.Equal(t, "hourglass-lagmon", targets["lagmon"], "the job name rules.yml's watchdog alert expects")
	var rulesMounted bool
	for _, v := range p.Services["prometheus"].Volumes {
		rulesMounted = rulesMounted || (v.Source == filepath.Join(absRoot(t), "lag-monitor/rules.yml") && strings.HasPrefix(v.Target, "/etc/prometheus/rules/"))
	}
	require.True(t, rulesMounted, "lag-monitor/rules.yml is mounted as is")

	// The APIs are published; admin ports only on the host's loopback.
	require.Empty(t, publicAdminPorts(p))
	for s, port := range map[string]uint32{"logpeek": 8090, "query": 8095} {
		require.True(t, slices.ContainsFunc(p.Services[s].Ports, func(pc types.ServicePortConfig) bool {
			return pc.Target == port && pc.Published == fmt.Sprint(port) && pc.HostIP == ""
		}), "%s publishes its API on :%d", s, port)
	}
}

// adminPorts: the admin address's port of each Hourglass service
// (--listen-addr, as cmd/hourglass names it for every service).
func adminPorts(p *types.Project) map[string]string {
	out := map[string]string{}
	for name, s := range p.Services {
		for _, flag := range []string{"--listen-addr"} {
			if i := slices.Index(s.Command, flag); i >= 0 && i+1 < len(s.Command) {
				if _, port, err := net.SplitHostPort(s.Command[i+1]); err == nil {
					out[name] = port
					break
				}
			}
		}
	}
	return out
}

// publicAdminPorts lists every admin port published beyond the host's loopback.
func publicAdminPorts(p *types.Project) []string {
	var out []string
	for name, port := range adminPorts(p) {
		for _, pc := range p.Services[name].Ports {
			if fmt.Sprint(pc.Target) == port && pc.HostIP != "127.0.0.1" {
				out = append(out, fmt.Sprintf("service %s publishes its admin port %s on %q", name, port, pc.HostIP))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Broken inputs: each edit of the real compose file must be caught.
func TestComposeCheckCatchesBrokenInput(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"missing config file", "./deploy/compose/prometheus.yml:", "./deploy/compose/prometheus-gone.yml:",
			"service prometheus: bind mount deploy/compose/prometheus-gone.yml → /etc/prometheus/prometheus.yml: source does not exist"},
		{"missing keys file", "./deploy/ingress-keys.example.yaml:", "./deploy/ingress-keys.yaml:",
			"service ingress: bind mount deploy/ingress-keys.yaml"},
		{"missing dependency", "    depends_on: [nginx]\n", "",
			"service haproxy talks to nginx (nginx:8443 in environment) but does not depend on it"},
		{"unpinned image", "prom/alertmanager:v0.27.0", "prom/alertmanager", `service alertmanager: image "prom/alertmanager" is not pinned`},
		{"latest image", "image: haproxy:2.6", "image: haproxy:latest", `service haproxy: image "haproxy:latest" is not pinned`},
		{"unknown build target", "target: spark}", "target: sparky}", `no stage "sparky"`},
		{"nginx without ingress", "      ingress: {condition: service_started}\n", "",
			"service nginx talks to ingress (ingress:8080 in nginx-upstreams.conf) but does not depend on it"},
		{"query without spark-connect", "      spark-connect: {condition: service_started}\n", "",
			"service query talks to spark-connect (spark-connect:15002 in command) but does not depend on it"},
		{"missing query tokens file", "./deploy/query-tokens.example.yaml:", "./deploy/query-tokens.yaml:",
			"service query: bind mount deploy/query-tokens.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig := string(composeFile(t))
			require.Contains(t, orig, tc.old)
			edited := strings.Replace(orig, tc.old, tc.new, 1)
			p, err := Load(context.Background(), absRoot(t), "docker-compose.yml", []byte(edited))
			require.NoError(t, err)
			errs := Check(p, absRoot(t))
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			require.Contains(t, strings.Join(all, "\n"), tc.want)
		})
	}
	for svc, port := range map[string]string{"query": "9108", "lagmon": "9107"} {
		t.Run(svc+" admin port public", func(t *testing.T) {
			orig := string(composeFile(t))
			loopback := fmt.Sprintf(`"127.0.0.1:%s:%s"`, port, port)
			require.Contains(t, orig, loopback)
			edited := strings.Replace(orig, loopback, fmt.Sprintf(`"%s:%s"`, port, port), 1)
			p, err := Load(context.Background(), absRoot(t), "docker-compose.yml", []byte(edited))
			require.NoError(t, err)
			require.Equal(t, []string{fmt.Sprintf(`service %s publishes its admin port %s on ""`, svc, port)}, publicAdminPorts(p))
		})
	}
	t.Run("missing env file", func(t *testing.T) {
		edited := strings.Replace(string(composeFile(t)), "./nginx/edge.env", "./nginx/edge-gone.env", 1)
		_, err := Load(context.Background(), absRoot(t), "docker-compose.yml", []byte(edited))
		require.ErrorContains(t, err, "edge-gone.env")
	})
	t.Run("invalid compose", func(t *testing.T) {
		edited := strings.Replace(string(composeFile(t)), "    restart: unless-stopped\n", "    restart: unless-stopped\n    restrat: always\n", 1)
		_, err := Load(context.Background(), absRoot(t), "docker-compose.yml", []byte(edited))
		require.ErrorContains(t, err, "restrat")
	})
}

func TestPinned(t *testing.T) {
	for img, want := range map[string]bool{
		"nginx:1.22": true, "nginx": false, "nginx:latest": false, "localhost:5000/x": false,
		"localhost:5000/x:1": true, "x@sha256:abc": true,
	} {
		require.Equal(t, want, pinned(img), img)
	}
}
