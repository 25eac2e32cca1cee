package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// The secrets files of Hourglass (the bearer tokens here, the ingress API
// keys in services/ingress) store the SHA-256 digest of each secret, never the
// secret. Their formats differ (what a secret stands for, whether upper-case
// hex is accepted, what is refused); the digest's form and the lookup of a
// presented secret are shared and live here.

// ParseDigest parses a SHA-256 digest as a secrets file stores it: exactly 64
// lower-case hex digits (printf %s "$SECRET" | sha256sum). ok is false for any
// other string, a plain secret included.
func ParseDigest(s string) (d [32]byte, ok bool) {
	if len(s) != 2*len(d) {
		return d, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return d, false
		}
	}
	_, err := hex.Decode(d[:], []byte(s))
	return d, err == nil
}

// DigestMap maps the SHA-256 digests of secrets to what each secret stands
// for (a principal, a tenant). The zero value is empty and ready for Add. Fill
// it before sharing it: Add must not run concurrently with anything; Lookup
// and Len may run concurrently with each other.
type DigestMap[V any] struct {
	m map[[32]byte]digestEntry[V]
}

type digestEntry[V any] struct {
	digest [32]byte
	v      V
}

// Add maps digest d to v. It reports false, and keeps the value already
// there, when d is mapped already (the same secret listed twice).
func (m *DigestMap[V]) Add(d [32]byte, v V) bool {
	if _, dup := m.m[d]; dup {
		return false
	}
	if m.m == nil {
		m.m = map[[32]byte]digestEntry[V]{}
	}
	m.m[d] = digestEntry[V]{digest: d, v: v}
	return true
}

// Len is the number of digests.
func (m *DigestMap[V]) Len() int { return len(m.m) }

// Lookup returns what a presented secret stands for. The secret is hashed, the
// map searched by its digest, and the stored digest compared with it in
// constant time: no step looks at the secret itself, so timing tells nothing
// about how much of a stored secret the presented one shares.
func (m *DigestMap[V]) Lookup(secret string) (V, bool) {
	d := sha256.Sum256([]byte(secret))
	e, ok := m.m[d]
	if !ok || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		var zero V
		return zero, false
	}
	return e.v, true
}
