package forwardtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// eventTime appends a forward-protocol EventTime (extension 0).
func eventTime(w *msgp.Writer, t time.Time) error {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(t.Unix()))
	binary.BigEndian.PutUint32(b[4:], uint32(t.Nanosecond()))
	return w.WriteExtension(&msgp.RawExtension{Type: 0, Data: b[:]})
}

func entry(t *testing.T, w *msgp.Writer, tm time.Time, n int) {
	t.Helper()
	require.NoError(t, w.WriteArrayHeader(2))
	require.NoError(t, eventTime(w, tm))
	require.NoError(t, w.WriteMapHeader(1))
	require.NoError(t, w.WriteString("n"))
	require.NoError(t, w.WriteInt(n))
}

func option(t *testing.T, w *msgp.Writer, kv ...string) {
	t.Helper()
	require.NoError(t, w.WriteMapHeader(uint32(len(kv)/2)))
	for i := 0; i < len(kv); i += 2 {
		require.NoError(t, w.WriteString(kv[i]))
		require.NoError(t, w.WriteString(kv[i+1]))
	}
}

func readAck(t *testing.T, r *msgp.Reader) string {
	t.Helper()
	v, err := r.ReadIntf()
	require.NoError(t, err)
	m, ok := v.(map[string]any)
	require.True(t, ok, "ack is a map: %#v", v)
	return m["ack"].(string)
}

// TestModes sends one message in each mode on one connection and checks the
// stored events and the acks.
func TestModes(t *testing.T) {
	store := NewStore()
	srv, err := Start("127.0.0.1:0", store, quiet())
	require.NoError(t, err)
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	w, r := msgp.NewWriter(c), msgp.NewReader(c)
	tm := time.Date(2026, 11, 21, 10, 0, 0, 123_000_000, time.UTC)

	// Message mode, integer time, no option: stored, no ack.
	require.NoError(t, w.WriteArrayHeader(3))
	require.NoError(t, w.WriteString("m.noack"))
	require.NoError(t, w.WriteInt64(tm.Unix()))
	require.NoError(t, w.WriteMapHeader(1))
	require.NoError(t, w.WriteString("n"))
	require.NoError(t, w.WriteInt(0))
	// Message mode with chunk.
	require.NoError(t, w.WriteArrayHeader(4))
	require.NoError(t, w.WriteString("m"))
	require.NoError(t, eventTime(w, tm))
	require.NoError(t, w.WriteMapHeader(1))
	require.NoError(t, w.WriteString("n"))
	require.NoError(t, w.WriteInt(1))
	option(t, w, "chunk", "c-message")
	require.NoError(t, w.Flush())
	require.Equal(t, "c-message", readAck(t, r))

	// Forward mode: two entries.
	require.NoError(t, w.WriteArrayHeader(3))
	require.NoError(t, w.WriteString("f"))
	require.NoError(t, w.WriteArrayHeader(2))
	entry(t, w, tm, 2)
	entry(t, w, tm, 3)
	option(t, w, "chunk", "c-forward", "size", "2")
	require.NoError(t, w.Flush())
	require.Equal(t, "c-forward", readAck(t, r))

	// PackedForward and CompressedPackedForward.
	var packed bytes.Buffer
	pw := msgp.NewWriter(&packed)
	entry(t, pw, tm, 4)
	entry(t, pw, tm, 5)
	require.NoError(t, pw.Flush())
	require.NoError(t, w.WriteArrayHeader(3))
	require.NoError(t, w.WriteString("p"))
	require.NoError(t, w.WriteBytes(packed.Bytes()))
	option(t, w, "chunk", "c-packed")
	require.NoError(t, w.Flush())
	require.Equal(t, "c-packed", readAck(t, r))

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(packed.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, w.WriteArrayHeader(3))
	require.NoError(t, w.WriteString("pz"))
	require.NoError(t, w.WriteBytes(gz.Bytes()))
	option(t, w, "chunk", "c-gzip", "compressed", "gzip")
	require.NoError(t, w.Flush())
	require.Equal(t, "c-gzip", readAck(t, r))

	evs := store.Events()
	require.Len(t, evs, 8)
	want := []struct {
		tag, mode, chunk string
		n                int64
	}{
		{"m.noack", "message", "", 0}, {"m", "message", "c-message", 1},
		{"f", "forward", "c-forward", 2}, {"f", "forward", "c-forward", 3},
		{"p", "packed", "c-packed", 4}, {"p", "packed", "c-packed", 5},
		{"pz", "packed", "c-gzip", 4}, {"pz", "packed", "c-gzip", 5},
	}
	for i, w := range want {
		require.Equal(t, w.tag, evs[i].Tag, i)
		require.Equal(t, w.mode, evs[i].Mode, i)
		require.Equal(t, w.chunk, evs[i].Chunk, i)
		require.Equal(t, w.n, evs[i].Record["n"], i)
	}
	require.Equal(t, tm.Truncate(time.Second), evs[0].Time, "integer time has second precision")
	require.Equal(t, tm, evs[1].Time, "EventTime keeps nanoseconds")
	require.Zero(t, store.Duplicates())
}

// TestFaults checks the injected failures: a dropped ack stores and closes,
// a resend of the chunk counts as duplicate, and a crash stores nothing.
func TestFaults(t *testing.T) {
	store := NewStore()
	srv, err := Start("127.0.0.1:0", store, quiet())
	require.NoError(t, err)
	defer srv.Close()
	send := func(chunk string) (string, error) {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		w, r := msgp.NewWriter(c), msgp.NewReader(c)
		require.NoError(t, w.WriteArrayHeader(3))
		require.NoError(t, w.WriteString("t"))
		require.NoError(t, w.WriteArrayHeader(1))
		entry(t, w, time.Now(), 1)
		option(t, w, "chunk", chunk)
		require.NoError(t, w.Flush())
		v, err := r.ReadIntf()
		if err != nil {
			return "", err
		}
		return v.(map[string]any)["ack"].(string), nil
	}
	srv.DropAcks(1)
	_, err = send("a")
	require.Error(t, err, "no ack: the connection is closed")
	require.Equal(t, 1, store.Len(), "stored before the lost ack")
	ack, err := send("a")
	require.NoError(t, err)
	require.Equal(t, "a", ack)
	require.Equal(t, 1, store.Duplicates())

	srv.CrashAfter(1)
	_, err = send("b")
	require.Error(t, err)
	<-srv.Crashed()
	require.Equal(t, 2, store.Len(), "a crash before the buffer write stores nothing")
	_, err = send("c")
	require.Error(t, err, "the crashed server accepts nothing")

	again, err := Start(srv.Addr(), store, quiet())
	require.NoError(t, err, "restart on the same address")
	defer again.Close()
	srv = again
	ack, err = send("b")
	require.NoError(t, err)
	require.Equal(t, "b", ack)
	require.Equal(t, 3, store.Len())
}
