package ingress

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Fluentd tags of the two streams; the aggregator routes them to the Kafka
// topics of the same names (fluentd/aggregator.conf).
const (
	FluentdRawTag = topology.RawTopic // accepted records
	FluentdDLQTag = topology.DLQTopic // rejected records: dlq.Message.FluentdRecord
)

// FluentdSinkConfig configures the Fluentd sink.
type FluentdSinkConfig struct {
	Addr      string        // the aggregator's forward input, host:port (default 127.0.0.1:24224)
	Conns     int           // parallel forward connections (default 4)
	Timeout   time.Duration // dial+handshake, and write+ack-wait timeout of one attempt (default 5s)
	MaxRetry  int           // attempts per entry (default 4)
	RetryWait time.Duration // back-off after a failed attempt, growing ×1.5 (default 200ms)

	// Transport security (fluentd/aggregator.conf: <transport tls> and <security>).
	TLS          bool   // TLS to the aggregator, verifying its certificate
	CAFile       string // PEM CA bundle that signed the aggregator's certificate (default: the system roots)
	ServerName   string // name the certificate must carry (default: the host of Addr)
	SharedKey    string // the aggregator's <security> shared_key; "" skips the HELO/PING/PONG handshake
	SelfHostname string // the name sent in PING; must differ from the aggregator's self_hostname (default: os.Hostname)
}

// MaxFluentdSharedKeyBytes bounds the shared key (Fluentd has no limit; a
// key file of megabytes is a mistake, not a key).
const MaxFluentdSharedKeyBytes = 4096

// ReadFluentdSharedKey reads a shared key file (a Kubernetes Secret or a
// compose secret mounted as a file): surrounding whitespace, such as the
// trailing newline, is not part of the key, as fluentd/aggregator.conf
// strips it too. An empty or oversized key is an error, never "no key".
func ReadFluentdSharedKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("fluentd shared key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFluentdSharedKeyBytes+2)) // + a trailing CRLF
	if err != nil {
		return "", fmt.Errorf("fluentd shared key: read %s: %w", path, err)
	}
	key := strings.TrimSpace(string(b))
	switch {
	case key == "":
		return "", fmt.Errorf("fluentd shared key: %s is empty", path)
	case len(key) > MaxFluentdSharedKeyBytes:
		return "", fmt.Errorf("fluentd shared key: %s holds more than %d bytes", path, MaxFluentdSharedKeyBytes)
	}
	return key, nil
}

// FluentdSink forwards entries to a Fluentd aggregator over the forward
// protocol with acks: accepted records under tag hourglass.logs.raw as the
// record's own fields, rejected ones under hourglass.logs.dlq in
// internal/dlq's Fluentd form, {tenant, reason, stage, line}. Write returns
// only once the aggregator acked every entry.
//
// The hop is authenticated: with TLS the sink verifies the aggregator's
// certificate, and with a shared key both ends prove they know it (the
// forward protocol's HELO/PING/PONG handshake) before any record is sent, so
// only holders of the key can write records for any tenant. The messages are
// encoded with fluent-logger-golang's codec; the connections are the sink's
// own (fluentdconn.go says why).
//
// One connection carries one message at a time and reads its ack before the
// next, so the sink keeps a pool of connections, each used by one Write
// shard at a time. A broken connection is replaced on the next attempt; an
// unacked message is resent with the same chunk id, so an aggregator restart
// may duplicate entries, never lose acknowledged ones.
type FluentdSink struct {
	addr  string
	probe forwardConn // configuration for Ready's probe connections
	pool  chan *forwardConn
	all   []*forwardConn

	closeOnce sync.Once
}

// NewFluentdSink creates the sink. It reads the CA file but does not connect:
// an unreachable aggregator is not an error; /readyz reports it, and requests
// get 503 until it is back.
func NewFluentdSink(cfg FluentdSinkConfig) (*FluentdSink, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:24224"
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 4
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 200 * time.Millisecond
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("fluentd sink: address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("fluentd sink: address %q: bad port", cfg.Addr)
	}
	sec, err := forwardSecurityOf(cfg, host)
	if err != nil {
		return nil, err
	}
	s := &FluentdSink{addr: cfg.Addr, pool: make(chan *forwardConn, cfg.Conns),
		probe: forwardConn{addr: cfg.Addr, sec: sec, timeout: cfg.Timeout, maxRetry: 1, retryWait: cfg.RetryWait}}
	for range cfg.Conns {
		c := &forwardConn{addr: cfg.Addr, sec: sec, timeout: cfg.Timeout, maxRetry: cfg.MaxRetry, retryWait: cfg.RetryWait}
		s.all = append(s.all, c)
		s.pool <- c
	}
	return s, nil
}

// forwardSecurityOf builds the TLS config and handshake settings.
func forwardSecurityOf(cfg FluentdSinkConfig, host string) (forwardSecurity, error) {
	var sec forwardSecurity
	var errs []error
	if len(cfg.SharedKey) > MaxFluentdSharedKeyBytes {
		errs = append(errs, fmt.Errorf("shared key: %d bytes, at most %d", len(cfg.SharedKey), MaxFluentdSharedKeyBytes))
	}
	sec.sharedKey = cfg.SharedKey
	sec.selfHostname = cfg.SelfHostname
	if sec.selfHostname == "" && cfg.SharedKey != "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("self hostname: %w", err))
		}
		sec.selfHostname = h
	}
	if !cfg.TLS && (cfg.CAFile != "" || cfg.ServerName != "") {
		errs = append(errs, errors.New("a CA file or server name is set but TLS is off"))
	}
	if cfg.TLS {
		sec.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cmp.Or(cfg.ServerName, host)}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("CA file: %w", err))
			} else if sec.tls.RootCAs = x509.NewCertPool(); !sec.tls.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("CA file %s: no PEM certificate in it", cfg.CAFile))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return sec, fmt.Errorf("fluentd sink: %w", err)
	}
	return sec, nil
}

// Write forwards entries and returns once every one was acked. It splits a
// large batch over the pooled connections. On error some entries may have
// been delivered: the client's retry may duplicate them, never lose them.
func (s *FluentdSink) Write(ctx context.Context, entries []Entry) error {
	const minShard = 64
	shards := min(cap(s.pool), max(1, len(entries)/minShard))
	size := (len(entries) + shards - 1) / shards
	errs := make([]error, shards)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range shards {
		lo := min(i*size, len(entries))
		hi := min(lo+size, len(entries))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.writeShard(ctx, entries[lo:hi], lo)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// The shards' in-flight I/O ends now (the connections' deadlines
		// follow ctx); wait for them so no shard outlives the Write.
		<-done
		return fmt.Errorf("fluentd sink: write %d entries to %s: %w", len(entries), s.addr, ctx.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fluentd sink: write %d entries to %s: %w", len(entries), s.addr, err)
	}
	return nil
}

func (s *FluentdSink) writeShard(ctx context.Context, entries []Entry, offset int) error {
	if len(entries) == 0 {
		return nil
	}
	var c *forwardConn
	select {
	case c = <-s.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.pool <- c }()
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag, tm, rec, err := fluentdMessage(e)
		if err != nil {
			return fmt.Errorf("entry %d: %w", offset+i, err)
		}
		if err := c.post(ctx, tag, tm, rec); err != nil {
			return fmt.Errorf("entry %d: forward to %s: %w", offset+i, tag, err)
		}
	}
	return nil
}

// fluentdMessage turns an entry into the tag, event time and record map sent
// to Fluentd.
func fluentdMessage(e Entry) (string, time.Time, map[string]any, error) {
	if e.Stream == StreamDLQ {
		m := dlqMessage(e, time.Now())
		return FluentdDLQTag, m.Time, m.FluentdRecord(), nil
	}
	rec, err := recordMap(e.Value)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	tm := time.Now()
	if ts, ok := rec[record.FieldTimestamp].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			tm = t
		}
	}
	return FluentdRawTag, tm, rec, nil
}

// recordMap decodes a canonical record into a map whose integers stay
// integers (json.Number → int64) and other numbers become float64, so the
// aggregator's JSON output has "status":200, never "status":200.0.
func recordMap(value []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("decode canonical record: %w", err)
	}
	for k, v := range rec {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		if i, err := n.Int64(); err == nil {
			rec[k] = i
			continue
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("decode canonical record: field %s: %w", k, err)
		}
		rec[k] = f
	}
	return rec, nil
}

// Ready connects to the aggregator as a write would (TCP, TLS with
// certificate verification, the shared-key handshake) and hangs up, so a
// wrong key or CA shows in /readyz with its reason.
//
// Without a shared key it listens briefly: an aggregator that requires the
// handshake greets every connection with HELO at once.
func (s *FluentdSink) Ready(ctx context.Context) error {
	c := s.probe
	conn, r, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("fluentd sink: aggregator %s: %w", s.addr, err)
	}
	defer conn.Close()
	if c.sec.sharedKey != "" {
		return nil
	}
	if err := conn.SetReadDeadline(time.Now().Add(min(c.timeout, readyListen))); err != nil {
		return fmt.Errorf("fluentd sink: aggregator %s: %w", s.addr, err)
	}
	_, err = readAck(r)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return nil // silence: the aggregator waits for a message, as it should
	}
	return fmt.Errorf("fluentd sink: aggregator %s: before any message: %w", s.addr, err)
}

// readyListen is how long Ready waits for an unexpected greeting.
const readyListen = 250 * time.Millisecond

// Close closes every connection. Call it after the last Write returned.
func (s *FluentdSink) Close() error {
	s.closeOnce.Do(func() {
		for _, c := range s.all {
			c.close()
		}
	})
	return nil
}
