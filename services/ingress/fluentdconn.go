package ingress

import (
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"

	"github.com/hourglass-io/hourglass/internal/retry"
)

// Why the sink owns its connections: fluent-logger-golang v1.10 has the
// forward protocol's message codec (fluent.Message), which the sink uses,
// but its transport can neither trust a private CA nor
// set the server name (its "tls" network takes only InsecureSkipVerify and
// the system roots), does not implement the shared-key handshake
// (HELO/PING/PONG; upstream issues #112, #118, #122), and offers no custom
// dialer or connection. So forwardConn dials, runs TLS and the handshake, and
// writes one message at a time with the library's codec.

// errForwardAuth marks failures that retrying cannot fix (post makes them
// retry.Permanent): the aggregator refused the shared key, could not prove
// it knows it, or its certificate did not verify. The request still fails
// with 503 (the operator fixes the config; clients retry), but the sink does
// not hammer the aggregator.
var errForwardAuth = errors.New("fluentd sink: authentication failed")

// handshakeLimit bounds what the sink reads of a HELO, PONG or ack (each is
// at most a few hundred bytes): a peer that is not an aggregator cannot make
// it allocate.
const handshakeLimit = 64 << 10

// forwardSecurity is the transport security of the hop.
type forwardSecurity struct {
	tls          *tls.Config // nil: plain TCP
	sharedKey    string      // "": no handshake
	selfHostname string      // the name sent in PING
}

// forwardConn is one connection to the aggregator's forward input. It is not
// safe for concurrent use: the sink's pool hands it to one shard at a time.
type forwardConn struct {
	addr      string
	sec       forwardSecurity
	timeout   time.Duration
	maxRetry  int
	retryWait time.Duration

	conn net.Conn
	r    *msgp.Reader
}

// post sends one event in Message mode with a chunk id and waits for its ack.
// A failed attempt closes the connection and is retried on a new one with the
// same chunk id (the aggregator may store it twice, never lose an acked one).
func (c *forwardConn) post(ctx context.Context, tag string, tm time.Time, rec map[string]any) error {
	chunk, err := chunkID()
	if err != nil {
		return err
	}
	msg := fluent.Message{Tag: tag, Time: tm.Unix(), Record: rec, Option: map[string]string{"chunk": chunk}}
	data, err := msg.MarshalMsg(nil)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", tag, err)
	}
	attempt := 0
	b := retry.Backoff{Initial: c.retryWait, Max: 10 * c.retryWait, Factor: 1.5, Attempts: c.maxRetry}
	err = b.Do(ctx, func() error {
		attempt++
		err := c.send(ctx, data, chunk)
		if err == nil {
			return nil
		}
		c.close()
		if errors.Is(err, errForwardAuth) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("attempt %d of %d: %w", attempt, c.maxRetry, err)
	}
	return nil
}

// send writes one encoded message and reads its ack, connecting first if
// needed. I/O ends at the attempt's timeout or when ctx ends.
func (c *forwardConn) send(ctx context.Context, data []byte, chunk string) error {
	if c.conn == nil {
		conn, r, err := c.connect(ctx)
		if err != nil {
			return err
		}
		c.conn, c.r = conn, r
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := c.conn.SetDeadline(c.deadline(ctx)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := c.conn.Write(data); err != nil {
		return fmt.Errorf("send to %s: %w", c.addr, err)
	}
	ack, err := readAck(c.r)
	if err != nil {
		return fmt.Errorf("read ack from %s: %w", c.addr, err)
	}
	if ack != chunk {
		return fmt.Errorf("read ack from %s: ack %q for chunk %q", c.addr, ack, chunk)
	}
	return nil
}

func (c *forwardConn) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(c.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// connect dials the aggregator, runs the TLS handshake (verifying its
// certificate) and the forward protocol's shared-key handshake.
func (c *forwardConn) connect(ctx context.Context) (net.Conn, *msgp.Reader, error) {
	dctx, cancel := context.WithDeadline(ctx, c.deadline(ctx))
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(dctx, "tcp", c.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", c.addr, err)
	}
	if c.sec.tls != nil {
		tc := tls.Client(conn, c.sec.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			if isTLSMismatch(err) {
				err = fmt.Errorf("%w: %w", errForwardAuth, err)
			}
			return nil, nil, fmt.Errorf("TLS handshake with %s (is its forward input <transport tls>?): %w", c.addr, err)
		}
		conn = tc
	}
	r := msgp.NewReader(conn)
	if c.sec.sharedKey != "" {
		stop := context.AfterFunc(dctx, func() { _ = conn.SetDeadline(time.Now()) })
		err := func() error {
			defer stop()
			if err := conn.SetDeadline(c.deadline(dctx)); err != nil {
				return err
			}
			return handshake(conn, r, c.sec)
		}()
		if err != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("shared-key handshake with %s: %w", c.addr, err)
		}
	}
	return conn, r, nil
}

// isTLSMismatch: the certificate did not verify, or the peer does not speak
// TLS at all. Neither goes away by retrying.
func isTLSMismatch(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var ierr x509.CertificateInvalidError
	var rerr tls.RecordHeaderError
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr) ||
		errors.As(err, &rerr)
}

// handshake runs the client side of the forward protocol's authentication
// (Forward Protocol Specification v1, "Handshake Messages"):
//
//	server → HELO  ["HELO", {"nonce": n, "auth": salt or "", "keepalive": bool}]
//	client → PING  ["PING", self_hostname, shared_key_salt,
//	                sha512_hex(shared_key_salt + self_hostname + nonce + shared_key), "", ""]
//	server → PONG  ["PONG", ok, reason, server_hostname,
//	                sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)]
//
// Both sides prove they know the key; user authentication (a non-empty
// "auth" salt) is not supported.
func handshake(conn net.Conn, r *msgp.Reader, sec forwardSecurity) error {
	helo, err := readHandshake(r, "HELO", 2)
	if err != nil {
		return fmt.Errorf("%w (is the aggregator's <security> section configured?)", err)
	}
	opts, ok := helo[1].(map[string]any)
	if !ok {
		return fmt.Errorf("HELO options are %T, want a map", helo[1])
	}
	nonce, ok := bytesOf(opts["nonce"])
	if !ok || len(nonce) == 0 {
		return errors.New("HELO without a nonce")
	}
	if auth, _ := bytesOf(opts["auth"]); len(auth) > 0 {
		return fmt.Errorf("%w: the aggregator requires user authentication (<security> user_auth), which the sink does not support", errForwardAuth)
	}
	var saltBytes [16]byte
	if _, err := rand.Read(saltBytes[:]); err != nil {
		return fmt.Errorf("shared key salt: %w", err)
	}
	salt := hex.EncodeToString(saltBytes[:])
	w := msgp.NewWriter(conn)
	_ = w.WriteArrayHeader(6)
	_ = w.WriteString("PING")
	_ = w.WriteString(sec.selfHostname)
	_ = w.WriteString(salt)
	_ = w.WriteString(sharedKeyDigest(salt, sec.selfHostname, nonce, sec.sharedKey))
	_ = w.WriteString("")
	_ = w.WriteString("")
	if err := w.Flush(); err != nil {
		return fmt.Errorf("send PING: %w", err)
	}
	pong, err := readHandshake(r, "PONG", 5)
	if err != nil {
		return err
	}
	if ok, _ := pong[1].(bool); !ok {
		reason, _ := pong[2].(string)
		return fmt.Errorf("%w: the aggregator refused the sink: %q (check --fluentd-shared-key-file)", errForwardAuth, reason)
	}
	host, _ := pong[3].(string)
	digest, _ := pong[4].(string)
	if host == sec.selfHostname {
		return fmt.Errorf("%w: the aggregator's self_hostname equals the sink's (%q): set a distinct --fluentd-hostname", errForwardAuth, host)
	}
	want := sharedKeyDigest(salt, host, nonce, sec.sharedKey)
	if subtle.ConstantTimeCompare([]byte(digest), []byte(want)) != 1 {
		return fmt.Errorf("%w: the aggregator %q did not prove it knows the shared key", errForwardAuth, host)
	}
	return nil
}

// sharedKeyDigest is sha512_hex(salt + hostname + nonce + shared_key).
func sharedKeyDigest(salt, hostname string, nonce []byte, key string) string {
	h := sha512.New()
	h.Write([]byte(salt))
	h.Write([]byte(hostname))
	h.Write(nonce)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// readHandshake reads one handshake message: an array of n elements whose
// first is kind.
func readHandshake(r *msgp.Reader, kind string, n int) ([]any, error) {
	v, err := readObject(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != n {
		return nil, fmt.Errorf("read %s: got %s", kind, describe(v))
	}
	if s, _ := arr[0].(string); s != kind {
		return nil, fmt.Errorf("read %s: got %s", kind, describe(v))
	}
	return arr, nil
}

// readAck reads the server's answer to a message: {"ack": chunk}. A HELO or
// PONG instead means the two ends disagree about the handshake.
func readAck(r *msgp.Reader) (string, error) {
	v, err := readObject(r)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case map[string]any:
		ack, ok := v["ack"].(string)
		if !ok {
			return "", fmt.Errorf("got a map without a string \"ack\"")
		}
		return ack, nil
	case []any:
		if len(v) > 0 && (v[0] == "HELO" || v[0] == "PONG") {
			return "", fmt.Errorf("%w: the aggregator requires the shared-key handshake (it sent %s): set --fluentd-shared-key-file", errForwardAuth, v[0])
		}
	}
	return "", fmt.Errorf("got %s, want an ack map", describe(v))
}

// readObject reads the next msgpack object whole, refusing one larger than
// handshakeLimit before allocating for it (msgp would otherwise allocate
// whatever length a header claims).
func readObject(r *msgp.Reader) (any, error) {
	buf := limitedBuffer{limit: handshakeLimit}
	if _, err := r.CopyNext(&buf); err != nil {
		return nil, err
	}
	v, _, err := msgp.ReadIntfBytes(buf.b)
	return v, err
}

type limitedBuffer struct {
	b     []byte
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.limit {
		return 0, fmt.Errorf("message larger than %d bytes", l.limit)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

func bytesOf(v any) ([]byte, bool) {
	switch b := v.(type) {
	case []byte:
		return b, true
	case string:
		return []byte(b), true
	}
	return nil, false
}

// describe names a received value for an error message without echoing it
// whole.
func describe(v any) string {
	if arr, ok := v.([]any); ok && len(arr) > 0 {
		if s, ok := arr[0].(string); ok && len(s) <= 16 {
			return fmt.Sprintf("a %d-element array starting with %q", len(arr), s)
		}
		return fmt.Sprintf("a %d-element array", len(arr))
	}
	return fmt.Sprintf("a msgpack %T", v)
}

// chunkID is a unique chunk id for the ack option: 16 random bytes, base64.
func chunkID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("chunk id: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

func (c *forwardConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r = nil, nil
	}
}
