package logpeek

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/archive"
)

// Roles a token may have.
const (
	// RoleDeveloper reads the tenants listed with the token.
	RoleDeveloper = "developer"
	// RoleAdmin reads every tenant.
	RoleAdmin = "admin"
)

// The tokens file maps bearer tokens, stored as SHA-256 hex digests (never
// the token itself), to who holds them, a role, and the tenants they read:
//
//	tokens:
//	  - name: alice                 # who: in every query log line
//	    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//	    role: developer             # developer: only the tenants below
//	    tenants: [acme, globex]
//	  - name: sre-oncall
//	    sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9
//	    role: admin                 # admin: every tenant (no tenants list)
//
// Make a digest with: printf %s "$TOKEN" | sha256sum
type tokensFile struct {
	Tokens []Principal `yaml:"tokens"`
}

// Principal is who a token speaks for.
type Principal struct {
	Name    string   `yaml:"name"`
	SHA256  string   `yaml:"sha256"`
	Role    string   `yaml:"role"`
	Tenants []string `yaml:"tenants"`
}

// CanRead reports whether p may read tenant's records.
func (p Principal) CanRead(tenant string) bool {
	return p.Role == RoleAdmin || slices.Contains(p.Tenants, tenant)
}

// Tokens resolves bearer tokens to principals.
type Tokens struct {
	byDigest map[[32]byte]Principal
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LoadTokens reads and validates a tokens file, reporting every problem.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("logpeek: tokens: %w", err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("logpeek: tokens %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens parses the content of a tokens file.
func ParseTokens(data []byte) (*Tokens, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	t := &Tokens{byDigest: map[[32]byte]Principal{}}
	var errs []error
	for i, p := range f.Tokens {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("token %d (%s): %s", i, p.Name, fmt.Sprintf(format, args...)))
		}
		if p.Name == "" {
			bad("name is required (it names the holder in the query log)")
		}
		if !hexDigest.MatchString(p.SHA256) {
			bad("sha256 must be 64 lower-case hex digits (store the digest, never the token)")
			continue
		}
		switch p.Role {
		case RoleDeveloper:
			if len(p.Tenants) == 0 {
				bad("a developer token needs at least one tenant")
			}
			for _, tenant := range p.Tenants {
				if !archive.ValidTenant(tenant) {
					bad("tenant %q must match [a-z0-9-]{1,63}", tenant)
				}
			}
		case RoleAdmin:
			if len(p.Tenants) > 0 {
				bad("an admin token reads every tenant: list no tenants")
			}
		default:
			bad("role %q: must be %s or %s", p.Role, RoleDeveloper, RoleAdmin)
		}
		var d [32]byte
		_, _ = hex.Decode(d[:], []byte(p.SHA256))
		if _, dup := t.byDigest[d]; dup {
			bad("the same token is listed twice")
		}
		t.byDigest[d] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// Lookup returns the principal of a presented token. The token is hashed and
// the digest compared in constant time with the stored one.
func (t *Tokens) Lookup(presented string) (Principal, bool) {
	d := sha256.Sum256([]byte(presented))
	p, ok := t.byDigest[d]
	if !ok {
		return Principal{}, false
	}
	stored, _ := hex.DecodeString(p.SHA256)
	if subtle.ConstantTimeCompare(stored, d[:]) != 1 {
		return Principal{}, false
	}
	return p, true
}
