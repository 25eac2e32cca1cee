//go:build integration

package nginx_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/services/ingress"
)

const (
	edgeHost  = "acme.ingest.test"  // tenants.map: acme
	otherHost = "other.ingest.test" // no entry: the default tenant
	apiKey    = "edge-test-key"
	clientIP  = "127.0.0.2" // the client's source address; HAProxy reaches Nginx from 127.0.0.1
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// writeCert writes a self-signed certificate for the edge's host names and
// returns the cert and key paths and a pool trusting it.
func writeCert(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: edgeHost},
		DNSNames:              []string{edgeHost, otherHost},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// runChecked runs a short command (a config check) and fails with its output.
func runChecked(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
}

// startProcess runs a foreground server in its own process group, output to
// logPath, and stops the whole group when the test ends (TERM, then KILL).
func startProcess(t *testing.T, logPath string, env []string, name string, args ...string) {
	t.Helper()
	out, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "start %s", name)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		defer out.Close()
		pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", name, b)
		}
	})
	select {
	case <-exited:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%s exited at start:\n%s", name, b)
	default:
	}
}

// replica is one in-process ingress with a Kafka sink.
type replica struct {
	svc     *ingress.Service
	reg     *prometheus.Registry
	stop    context.CancelFunc
	stopped chan error
	once    sync.Once
}

func startReplica(t *testing.T, brokers, topic, dlq, keysFile string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sink, err := ingress.NewKafkaSink(ingress.KafkaSinkConfig{Brokers: []string{brokers}, Topic: topic, DLQTopic: dlq, Partitions: 3})
	require.NoError(t, err)
	require.NoError(t, sink.EnsureTopics(ctx))
	cfg := ingress.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.KeysFile = keysFile
	cfg.ShutdownTimeout = 5 * time.Second
	r := &replica{reg: prometheus.NewRegistry(), stop: cancel, stopped: make(chan error, 1)}
	r.svc, err = ingress.New(cfg, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), r.reg)
	require.NoError(t, err)
	require.NoError(t, r.svc.Listen())
	go func() {
		err := r.svc.Run(ctx)
		r.stopped <- errors.Join(err, sink.Close())
	}()
	t.Cleanup(r.kill)
	require.Eventually(t, func() bool { return r.svc.Ready(context.Background()) == nil }, 30*time.Second, 100*time.Millisecond)
	return r
}

// kill stops the replica and waits until it is gone (idempotent).
func (r *replica) kill() {
	r.once.Do(func() {
		r.stop()
		<-r.stopped
	})
}

// requests is how many /v1/logs requests the replica answered.
func (r *replica) requests(t *testing.T) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "hourglass_ingress_requests_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestEdge drives HAProxy → Nginx (TLS) → two ingress replicas → Kafka with
// the real binaries.
func TestEdge(t *testing.T) {
	haproxyBin := stacktest.Get(t, "HOURGLASS_HAPROXY_BIN")
	nginxBin := stacktest.Get(t, "HOURGLASS_NGINX_BIN")
	brokers := stacktest.Brokers(t)
	topic, dlq := stacktest.UniqueName("test-edge-raw"), stacktest.UniqueName("test-edge-dlq")
	stacktest.DeleteTopicsOnCleanup(t, brokers, topic, dlq)
	dir := t.TempDir()

	// Two ingress replicas sharing one keys file.
	d := sha256.Sum256([]byte(apiKey))
	keysFile := filepath.Join(dir, "keys.yaml")
	require.NoError(t, os.WriteFile(keysFile, []byte("keys:\n  - {tenant: acme, sha256: "+hex.EncodeToString(d[:])+"}\n"), 0o600))
	replicas := []*replica{startReplica(t, brokers, topic, dlq, keysFile), startReplica(t, brokers, topic, dlq, keysFile)}

	// Nginx, rendered from the shipped template and log format.
	certPath, keyPath, pool := writeCert(t, dir)
	nginxPort, healthPort, haproxyPort := freePort(t), freePort(t), freePort(t)
	prefix := filepath.Join(dir, "nginx")
	require.NoError(t, os.MkdirAll(filepath.Join(prefix, "temp"), 0o755))
	accessLog := filepath.Join(prefix, "access.json")
	user := "nobody"
	if os.Geteuid() == 0 {
		user = "root root" // workers must reach the test's 0700 temp dir
	}
	var ups strings.Builder
	for _, r := range replicas {
		fmt.Fprintf(&ups, "server %s max_fails=2 fail_timeout=5s;\n", r.svc.Addr())
	}
	conf := writeNginxConf(t, prefix, nginxSite{
		Vars: map[string]string{
			"HG_USER": user, "HG_PID": filepath.Join(prefix, "nginx.pid"), "HG_ERROR_LOG": filepath.Join(prefix, "error.log"),
			"HG_TEMP_DIR": filepath.Join(prefix, "temp"), "HG_LISTEN": "127.0.0.1:" + strconv.Itoa(nginxPort),
			"HG_HEALTH_LISTEN": "127.0.0.1:" + strconv.Itoa(healthPort), "HG_HEALTH_LOG": filepath.Join(prefix, "health.log"),
			"HG_TLS_CERT": certPath, "HG_TLS_KEY": keyPath, "HG_REAL_IP_FROM": "127.0.0.1", "HG_ACCESS_LOG": accessLog,
		},
		Tenants:   "default hourglass-edge;\n" + edgeHost + " acme;\n",
		Upstreams: ups.String(),
	})
	runChecked(t, nil, nginxBin, "-t", "-q", "-p", prefix, "-c", conf)
	startProcess(t, filepath.Join(dir, "nginx.out"), nil, nginxBin, "-p", prefix, "-c", conf, "-g", "daemon off;")

	// HAProxy, the shipped config as is, parameters from the environment.
	haEnv := []string{"HG_HAPROXY_BIND=127.0.0.1:" + strconv.Itoa(haproxyPort),
		"HG_NGINX_ADDR=127.0.0.1:" + strconv.Itoa(nginxPort), "HG_NGINX_HEALTH=" + strconv.Itoa(healthPort)}
	haCfg, err := filepath.Abs("../haproxy/haproxy.cfg")
	require.NoError(t, err)
	runChecked(t, haEnv, haproxyBin, "-c", "-q", "-f", haCfg)
	startProcess(t, filepath.Join(dir, "haproxy.out"), haEnv, haproxyBin, "-db", "-f", haCfg)

	// The client dials HAProxy from 127.0.0.2, whatever the URL's host.
	haAddr := "127.0.0.1:" + strconv.Itoa(haproxyPort)
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, haAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(client.CloseIdleConnections)
	base := func(host string) string { return "https://" + host + ":" + strconv.Itoa(haproxyPort) }

	// HAProxy is up and its health checks reach Nginx's health server.
	require.Eventually(t, func() bool {
		resp, err := client.Get(base(edgeHost) + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	}, 20*time.Second, 100*time.Millisecond, "a request through HAProxy and Nginx")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(prefix, "health.log"))
		return bytes.Contains(b, []byte("GET /nginx-health"))
	}, 10*time.Second, 100*time.Millisecond, "HAProxy's health checks reach Nginx")

	// post sends n records with ids prefix-0..n-1 and returns the status.
	sent := map[string]bool{}
	now := time.Now().UTC().Format(time.RFC3339Nano) // ingress bounds event time around its clock
	post := func(id string, n int) int {
		var body bytes.Buffer
		for i := range n {
			rid := fmt.Sprintf("%s-%d", id, i)
			fmt.Fprintf(&body, `{"timestamp":%q,"method":"GET","path":"/p","status":200,"duration_ms":2.5,"request_id":%q}`+"\n", now, rid)
			sent[rid] = true
		}
		req, err := http.NewRequest(http.MethodPost, base(edgeHost)+"/v1/logs", &body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := client.Do(req)
		require.NoError(t, err, "POST %s", id)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST %s: %s", id, b)
		return resp.StatusCode
	}

	const before, after, perRequest = 20, 30, 5
	for i := range before {
		post(fmt.Sprintf("before-%d", i), perRequest)
	}
	for i, r := range replicas {
		require.Positive(t, r.requests(t), "replica %d served requests (round robin over both)", i)
	}

	// Odd requests that the access log must still write as valid records.
	odd := func(method, host, target, ua string, body io.Reader) int {
		req, err := http.NewRequest(method, base(host)+target, body)
		require.NoError(t, err)
		req.Header.Set("User-Agent", ua)
		resp, err := client.Do(req)
		if err != nil {
			return 0 // e.g. a stream reset after an early 413; the log line is what counts
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNotFound, odd(http.MethodGet, edgeHost, "/a%3Fb/%FF/c?q=1&r=%22", "we\"ird\\agent é "+strings.Repeat("x", 2000), nil))
	require.Equal(t, http.StatusNotFound, odd(http.MethodGet, otherHost, "/", "", nil))
	tooBig := odd(http.MethodPost, edgeHost, "/v1/logs", "big", bytes.NewReader(make([]byte, ingress.DefaultConfig().MaxBodyBytes+1)))
	require.Contains(t, []int{0, http.StatusRequestEntityTooLarge}, tooBig)

	// One replica dies: traffic keeps flowing through the other.
	deadAddr := replicas[0].svc.Addr()
	replicas[0].kill()
	survivorBefore := replicas[1].requests(t)
	for i := range after {
		post(fmt.Sprintf("after-%d", i), perRequest)
	}
	require.Equal(t, float64(after), replicas[1].requests(t)-survivorBefore, "the survivor served every later request")
	errLog, err := os.ReadFile(filepath.Join(prefix, "error.log"))
	require.NoError(t, err)
	require.Contains(t, string(errLog), `upstream: "http://`+deadAddr+`/v1/logs"`,
		"Nginx tried the dead replica and passed the POST on (proxy_next_upstream)")

	// Every accepted record is in Kafka (a retried POST may add a duplicate).
	inKafka := map[string]int{}
	for _, m := range stacktest.ReadAll(t, brokers, topic) {
		rec, _, err := record.Decode(m.Value)
		require.NoError(t, err)
		require.Equal(t, "acme", rec.Tenant)
		require.Equal(t, "acme", string(m.Key))
		inKafka[rec.RequestID]++
	}
	var dups int
	for id := range sent {
		require.Positive(t, inKafka[id], "record %s was accepted but is not in Kafka", id)
		dups += inKafka[id] - 1
	}
	require.Len(t, inKafka, len(sent))

	// Nginx's access log: every line a valid record; the client's address survived.
	wantLines := before + after + 4 // + the readiness GET(s), the odd GET twice and the 413
	var lines [][]byte
	require.Eventually(t, func() bool {
		lines = readLines(t, accessLog)
		return len(lines) >= wantLines
	}, 15*time.Second, 100*time.Millisecond, "the access log is flushed (flush=1s)")
	var posts, notFound, tooLarge, otherTenant int
	for _, line := range lines {
		rec, unknown, err := record.Decode(line)
		require.NoError(t, err, "access log line: %s", line)
		require.Empty(t, unknown, "%s", line)
		require.Equal(t, clientIP, rec.ClientIP, "the client's address, not HAProxy's: %s", line)
		require.Equal(t, "https", rec.Scheme)
		require.NotNil(t, rec.RTTMS, "%s", line)
		require.NotEmpty(t, rec.RequestID)
		require.NotEmpty(t, rec.Protocol)
		require.NotEmpty(t, rec.Edge)
		require.Regexp(t, `^\{"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)"`, string(line), "RFC 3339 with milliseconds")
		switch {
		case rec.Host == otherHost:
			require.Equal(t, "hourglass-edge", rec.Tenant)
			otherTenant++
			continue
		case rec.Host == edgeHost:
			require.Equal(t, "acme", rec.Tenant)
		default:
			t.Fatalf("unexpected host: %s", line)
		}
		switch rec.Status {
		case http.StatusAccepted:
			require.Equal(t, "POST", rec.Method)
			require.Equal(t, "/v1/logs", rec.Path)
			require.NotNil(t, rec.UpstreamMS, "%s", line)
			require.Positive(t, rec.BytesIn)
			posts++
		case http.StatusNotFound:
			require.Nil(t, rec.UpstreamMS, "no upstream for a 404 of Nginx: %s", line)
			notFound++
		case http.StatusRequestEntityTooLarge:
			tooLarge++
		default:
			t.Fatalf("unexpected status: %s", line)
		}
	}
	require.Equal(t, before+after, posts)
	require.Equal(t, 1, otherTenant)
	require.Equal(t, 1, tooLarge, "client_max_body_size refuses a body over the ingress's limit")
	require.GreaterOrEqual(t, notFound, 2)
	t.Logf("%d POSTs through HAProxy → Nginx → ingress (%d after a replica died): %d records in Kafka (%d duplicates); %d access log lines, all valid records from %s",
		before+after, after, len(sent), dups, len(lines), clientIP)
	t.Logf("sample access log line: %s", lines[len(lines)-1])
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	require.NoError(t, sc.Err())
	return out
}
