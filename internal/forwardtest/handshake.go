package forwardtest

import (
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tinylib/msgp/msgp"
)

// handshake is the server side of the forward protocol's authentication
// (Forward Protocol Specification v1, "Handshake Messages"), as in_forward
// does it with a <security> section:
//
//	server → HELO  ["HELO", {"nonce": 16 random bytes, "auth": "", "keepalive": true}]
//	client → PING  ["PING", client_hostname, shared_key_salt,
//	                sha512_hex(shared_key_salt + client_hostname + nonce + shared_key), username, password_digest]
//	server → PONG  ["PONG", true, "", server_hostname,
//	                sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)]
//	            or ["PONG", false, reason, "", ""] and the connection is closed.
//
// User authentication (user_auth) is not implemented: "auth" is empty.
func (s *Server) handshake(r *msgp.Reader, w *msgp.Writer) error {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	_ = w.WriteArrayHeader(2)
	_ = w.WriteString("HELO")
	_ = w.WriteMapHeader(3)
	_ = w.WriteString("nonce")
	_ = w.WriteBytes(nonce[:]) // in_forward's nonce is binary (msgpack bin)
	_ = w.WriteString("auth")
	_ = w.WriteString("")
	_ = w.WriteString("keepalive")
	_ = w.WriteBool(true)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("send HELO: %w", err)
	}

	salt, hostname, digest, err := readPing(r)
	if err != nil {
		s.refused()
		s.pong(w, false, "invalid ping message", "")
		return err
	}
	want := digestOf(salt, hostname, nonce[:], s.sharedKey)
	if subtle.ConstantTimeCompare([]byte(digest), []byte(want)) != 1 {
		s.refused()
		s.pong(w, false, "shared_key mismatch", "")
		return fmt.Errorf("shared_key mismatch from %q", hostname)
	}
	s.pong(w, true, "", digestOf(salt, s.hostname, nonce[:], s.sharedKey))
	return w.Flush()
}

func (s *Server) refused() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authFails++
}

func (s *Server) pong(w *msgp.Writer, ok bool, reason, digest string) {
	host := ""
	if ok {
		host = s.hostname
	}
	_ = w.WriteArrayHeader(5)
	_ = w.WriteString("PONG")
	_ = w.WriteBool(ok)
	_ = w.WriteString(reason)
	_ = w.WriteString(host)
	_ = w.WriteString(digest)
	_ = w.Flush()
}

// readPing reads ["PING", hostname, salt, digest, username, password_digest].
func readPing(r *msgp.Reader) (salt, hostname, digest string, err error) {
	v, err := r.ReadIntf()
	if err != nil {
		return "", "", "", fmt.Errorf("read PING: %w", err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 6 || arr[0] != "PING" {
		return "", "", "", errors.New("read PING: not a 6-element PING array (a client that skipped the handshake?)")
	}
	str := func(i int) string {
		switch x := arr[i].(type) {
		case string:
			return x
		case []byte:
			return string(x)
		}
		return ""
	}
	return str(2), str(1), str(3), nil
}

func digestOf(salt, hostname string, nonce []byte, key string) string {
	h := sha512.New()
	h.Write([]byte(salt))
	h.Write([]byte(hostname))
	h.Write(nonce)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
