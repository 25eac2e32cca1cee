package forwardtest

import (
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
)

// client is a hand-written forward client for the server's tests: it speaks
// the handshake step by step so each refusal can be observed.
type client struct {
	t    *testing.T
	conn net.Conn
	w    *msgp.Writer
	r    *msgp.Reader
}

func dial(t *testing.T, addr string, tlsCfg *tls.Config) *client {
	t.Helper()
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tlsCfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return &client{t: t, conn: c, w: msgp.NewWriter(c), r: msgp.NewReader(c)}
}

func (c *client) readArray() []any {
	c.t.Helper()
	v, err := c.r.ReadIntf()
	require.NoError(c.t, err)
	arr, ok := v.([]any)
	require.True(c.t, ok, "%#v", v)
	return arr
}

func digest(parts ...[]byte) string {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ping reads HELO and answers PING with key; it returns the nonce and salt.
func (c *client) ping(hostname, key string) (nonce []byte, salt string) {
	c.t.Helper()
	helo := c.readArray()
	require.Equal(c.t, "HELO", helo[0])
	opts := helo[1].(map[string]any)
	nonce, ok := opts["nonce"].([]byte)
	require.True(c.t, ok, "the nonce is binary, as in_forward sends it")
	require.Len(c.t, nonce, 16)
	require.Equal(c.t, "", opts["auth"], "no user authentication")
	salt = "0123456789abcdef"
	require.NoError(c.t, c.w.WriteArrayHeader(6))
	for _, s := range []string{"PING", hostname, salt,
		digest([]byte(salt), []byte(hostname), nonce, []byte(key)), "", ""} {
		require.NoError(c.t, c.w.WriteString(s))
	}
	require.NoError(c.t, c.w.Flush())
	return nonce, salt
}

func (c *client) send(chunk string) {
	c.t.Helper()
	require.NoError(c.t, c.w.WriteArrayHeader(4))
	require.NoError(c.t, c.w.WriteString("t"))
	require.NoError(c.t, c.w.WriteInt64(time.Now().Unix()))
	require.NoError(c.t, c.w.WriteMapHeader(1))
	require.NoError(c.t, c.w.WriteString("n"))
	require.NoError(c.t, c.w.WriteInt(1))
	option(c.t, c.w, "chunk", chunk)
	require.NoError(c.t, c.w.Flush())
}

func TestTLSAndSharedKey(t *testing.T) {
	pki, err := NewPKI("127.0.0.1")
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pki.CAPEM))
	trusted := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	store := NewStore()
	srv, err := Start("127.0.0.1:0", store, quiet(), WithTLS(pki.ServerTLS()), WithSharedKey("aggregator", "s3cret"))
	require.NoError(t, err)
	defer srv.Close()

	t.Run("right key", func(t *testing.T) {
		c := dial(t, srv.Addr(), trusted)
		nonce, salt := c.ping("ingress-1", "s3cret")
		pong := c.readArray()
		require.Equal(t, []any{"PONG", true, "", "aggregator",
			digest([]byte(salt), []byte("aggregator"), nonce, []byte("s3cret"))}, pong,
			"the server proves it knows the key, with its own hostname")
		c.send("ok-1")
		require.Equal(t, "ok-1", readAck(t, c.r))
		require.Equal(t, 1, store.Len())
	})
	t.Run("wrong key", func(t *testing.T) {
		c := dial(t, srv.Addr(), trusted)
		c.ping("ingress-1", "guess")
		require.Equal(t, []any{"PONG", false, "shared_key mismatch", "", ""}, c.readArray())
		_, err := c.r.ReadIntf()
		require.Error(t, err, "the server hung up")
		require.Equal(t, 1, srv.AuthFailures())
	})
	t.Run("no handshake", func(t *testing.T) {
		c := dial(t, srv.Addr(), trusted)
		c.send("sneak")
		require.Equal(t, "HELO", c.readArray()[0])
		require.Equal(t, []any{"PONG", false, "invalid ping message", "", ""}, c.readArray())
		require.Equal(t, 2, srv.AuthFailures())
	})
	t.Run("plain TCP", func(t *testing.T) {
		c := dial(t, srv.Addr(), nil)
		c.send("plain")
		_, err := c.r.ReadIntf()
		require.Error(t, err, "a TLS server answers no plain message")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", srv.Addr(),
			&tls.Config{MinVersion: tls.VersionTLS12}) // system roots: the test CA is not among them
		var verr *tls.CertificateVerificationError
		require.ErrorAs(t, err, &verr)
	})
	require.Equal(t, 1, store.Len(), "nothing but the authenticated client's message was stored")
}
