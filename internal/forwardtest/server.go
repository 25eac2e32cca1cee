package forwardtest

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// Event is one event received by a server.
type Event struct {
	Tag    string
	Time   time.Time
	Record map[string]any
	Chunk  string // the chunk id of the message that carried it ("" without ack)
	Mode   string // message, forward or packed
}

// Store keeps received events across server restarts (the aggregator's
// durable buffer). It is safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	events     []Event
	chunks     map[string]int // chunk id → times stored
	duplicates int            // events stored again under an already stored chunk id
	changed    chan struct{}  // closed and replaced on every change
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{chunks: map[string]int{}, changed: make(chan struct{})}
}

func (s *Store) add(chunk string, evs []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if chunk != "" {
		if s.chunks[chunk] > 0 {
			s.duplicates += len(evs)
		}
		s.chunks[chunk]++
	}
	s.events = append(s.events, evs...)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Events returns a copy of every stored event, in arrival order.
func (s *Store) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Len is the number of stored events, duplicates included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Duplicates is the number of events stored more than once because their
// chunk was resent (an ack that never reached the client).
func (s *Store) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// Changed returns a channel closed at the next change of the store.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Option configures a Server.
type Option func(*Server)

// WithTLS makes the server accept TLS only (in_forward's <transport tls>).
// A client that speaks plain TCP, or that does not trust the certificate,
// fails the TLS handshake and nothing it sent is stored.
func WithTLS(cfg *tls.Config) Option { return func(s *Server) { s.tls = cfg } }

// WithSharedKey makes the server require the forward protocol's shared-key
// handshake (in_forward's <security> with self_hostname and shared_key): it
// sends HELO on every connection, checks the client's PING digest and
// answers PONG with its own digest; a wrong key gets PONG false and the
// connection is closed before any message is read.
func WithSharedKey(selfHostname, sharedKey string) Option {
	return func(s *Server) { s.hostname, s.sharedKey = selfHostname, sharedKey }
}

// Server is a forward-protocol server on one TCP listener.
type Server struct {
	store *Store
	log   *slog.Logger
	ln    net.Listener

	tls       *tls.Config
	hostname  string
	sharedKey string // "": no handshake

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool
	crashIn   int // crash when this many more messages arrived (0: never)
	dropAcks  int // store, then drop the connection instead of acking, this many times
	messages  int
	authFails int
	crashedCh chan struct{}
	wg        sync.WaitGroup
}

// Start listens on addr ("127.0.0.1:0" for any free port, or the address of a
// previous server to restart it) and serves until Close.
func Start(addr string, store *Store, log *slog.Logger, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("forwardtest: listen %s: %w", addr, err)
	}
	s := &Server{store: store, log: log.With("component", "forwardtest", "addr", ln.Addr().String()), ln: ln,
		conns: map[net.Conn]struct{}{}, crashedCh: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if s.tls != nil {
		s.ln = tls.NewListener(ln, s.tls)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Messages is the number of forward-protocol messages received so far.
func (s *Server) Messages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages
}

// CrashAfter makes the server close its listener and every connection when
// the n-th message from now arrives, before storing or acking it (a crash
// before the buffer write). Crashed is closed then.
func (s *Server) CrashAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashIn = n
}

// DropAcks makes the next n acked messages be stored but answered by closing
// the connection instead of the ack (a crash between buffer write and ack):
// the client resends and the store counts duplicates.
func (s *Server) DropAcks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAcks = n
}

// AuthFailures is the number of connections refused by the shared-key
// handshake (a wrong key, or a client that skipped the handshake).
func (s *Server) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFails
}

// Crashed is closed when a CrashAfter fault fired.
func (s *Server) Crashed() <-chan struct{} { return s.crashedCh }

// Close stops the server abruptly: listener and connections are closed, no
// pending ack is sent. It waits for the connection goroutines to end.
func (s *Server) Close() error {
	s.shutdown()
	s.wg.Wait()
	return nil
}

func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// verdict is what to do with one received message.
type verdict int

const (
	verdictAck verdict = iota
	verdictCrash
	verdictDropAck
)

func (s *Server) judge(hasChunk bool) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages++
	if s.crashIn > 0 {
		s.crashIn--
		if s.crashIn == 0 {
			return verdictCrash
		}
	}
	if hasChunk && s.dropAcks > 0 {
		s.dropAcks--
		return verdictDropAck
	}
	return verdictAck
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	r := msgp.NewReader(c)
	w := msgp.NewWriter(c)
	if s.sharedKey != "" {
		if err := s.handshake(r, w); err != nil {
			s.log.Info("handshake failed", "error", err)
			return
		}
	}
	for {
		msg, err := readMessage(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("connection ends", "error", err)
			}
			return
		}
		switch s.judge(msg.chunk != "") {
		case verdictCrash:
			s.log.Info("injected crash before storing", "events", len(msg.events))
			s.shutdown()
			close(s.crashedCh)
			return
		case verdictDropAck:
			s.store.add(msg.chunk, msg.events)
			s.log.Info("injected ack loss after storing", "chunk", msg.chunk)
			return
		}
		s.store.add(msg.chunk, msg.events)
		if msg.chunk == "" {
			continue
		}
		if err := w.WriteMapHeader(1); err == nil {
			_ = w.WriteString("ack")
			_ = w.WriteString(msg.chunk)
		}
		if err := w.Flush(); err != nil {
			s.log.Debug("ack not sent", "error", err)
			return
		}
	}
}

// message is one decoded forward-protocol message.
type message struct {
	events []Event
	chunk  string
}

// readMessage reads one message in any of the three modes.
func readMessage(r *msgp.Reader) (message, error) {
	var m message
	n, err := r.ReadArrayHeader()
	if err != nil {
		return m, err
	}
	if n < 2 || n > 4 {
		return m, fmt.Errorf("forward message: array of %d elements", n)
	}
	tag, err := r.ReadString()
	if err != nil {
		return m, fmt.Errorf("forward message: tag: %w", err)
	}
	t, err := r.NextType()
	if err != nil {
		return m, err
	}
	var rest uint32 // elements after the mode-specific part
	var packed []byte
	switch t {
	case msgp.ArrayType: // Forward
		k, err := r.ReadArrayHeader()
		if err != nil {
			return m, err
		}
		for range k {
			ev, err := readEntry(r, tag, "forward")
			if err != nil {
				return m, err
			}
			m.events = append(m.events, ev)
		}
		rest = n - 2
	case msgp.BinType, msgp.StrType: // PackedForward
		if t == msgp.BinType {
			packed, err = r.ReadBytes(nil)
		} else {
			var str string
			str, err = r.ReadString()
			packed = []byte(str)
		}
		if err != nil {
			return m, fmt.Errorf("packed forward: entries: %w", err)
		}
		rest = n - 2
	default: // Message: time, record
		if n < 3 {
			return m, fmt.Errorf("message mode: array of %d elements", n)
		}
		tm, err := readTime(r)
		if err != nil {
			return m, err
		}
		rec, err := readRecord(r)
		if err != nil {
			return m, err
		}
		m.events = append(m.events, Event{Tag: tag, Time: tm, Record: rec, Mode: "message"})
		rest = n - 3
	}
	var compressed string
	if rest == 1 {
		opt, err := r.ReadIntf()
		if err != nil {
			return m, fmt.Errorf("forward message: option: %w", err)
		}
		om, ok := opt.(map[string]any)
		if !ok && opt != nil {
			return m, fmt.Errorf("forward message: option is %T, not a map", opt)
		}
		m.chunk, _ = om["chunk"].(string)
		compressed, _ = om["compressed"].(string)
	} else if rest > 1 {
		return m, fmt.Errorf("forward message: %d trailing elements", rest)
	}
	if packed != nil {
		if compressed == "gzip" {
			if packed, err = gunzipAll(packed); err != nil {
				return m, err
			}
		}
		pr := msgp.NewReader(bytes.NewReader(packed))
		for {
			ev, err := readEntry(pr, tag, "packed")
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return m, fmt.Errorf("packed forward: %w", err)
			}
			m.events = append(m.events, ev)
		}
	}
	for i := range m.events {
		m.events[i].Chunk = m.chunk
	}
	return m, nil
}

// gunzipAll inflates a CompressedPackedForward payload (possibly several
// concatenated gzip members, as the spec allows).
func gunzipAll(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("compressed packed forward: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("compressed packed forward: %w", err)
	}
	return out, nil
}

func readEntry(r *msgp.Reader, tag, mode string) (Event, error) {
	n, err := r.ReadArrayHeader()
	if err != nil {
		return Event{}, err
	}
	if n != 2 {
		return Event{}, fmt.Errorf("entry: array of %d elements, want [time, record]", n)
	}
	tm, err := readTime(r)
	if err != nil {
		return Event{}, err
	}
	rec, err := readRecord(r)
	if err != nil {
		return Event{}, err
	}
	return Event{Tag: tag, Time: tm, Record: rec, Mode: mode}, nil
}

// readTime reads an integer time (seconds) or an EventTime (extension 0).
func readTime(r *msgp.Reader) (time.Time, error) {
	t, err := r.NextType()
	if err != nil {
		return time.Time{}, err
	}
	switch t {
	case msgp.IntType:
		sec, err := r.ReadInt64()
		return time.Unix(sec, 0).UTC(), err
	case msgp.UintType:
		sec, err := r.ReadUint64()
		return time.Unix(int64(sec), 0).UTC(), err
	case msgp.ExtensionType:
		typ, payload, err := r.ReadExtensionRaw()
		if err != nil {
			return time.Time{}, fmt.Errorf("event time: %w", err)
		}
		if typ != 0 || len(payload) != 8 {
			return time.Time{}, fmt.Errorf("event time: extension type %d with %d bytes, want type 0 with 8", typ, len(payload))
		}
		sec := binary.BigEndian.Uint32(payload[:4])
		nsec := binary.BigEndian.Uint32(payload[4:])
		return time.Unix(int64(sec), int64(nsec)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("event time: msgpack %s, want an integer or EventTime", t)
}

func readRecord(r *msgp.Reader) (map[string]any, error) {
	v, err := r.ReadIntf()
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	rec, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("record: msgpack %T, want a map", v)
	}
	return rec, nil
}
