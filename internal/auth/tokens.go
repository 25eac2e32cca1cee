package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Roles a token may have.
const (
	// RoleCustomer reads exactly one tenant (its own).
	RoleCustomer = "customer"
	// RoleDeveloper reads the tenants listed with the token.
	RoleDeveloper = "developer"
	// RoleAdmin reads every tenant and may send free SQL to the query service.
	RoleAdmin = "admin"
)

// MaxTokens bounds the entries of a tokens file.
const MaxTokens = 100_000

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

// IsAdmin reports whether p has the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// Tokens resolves bearer tokens to principals. It is immutable once parsed.
type Tokens struct {
	byDigest DigestMap[Principal]
}

// Load reads and validates a tokens file, reporting every problem.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens %s: %w", path, err)
	}
	return t, nil
}

// Parse parses the content of a tokens file, reporting every problem.
func Parse(data []byte) (*Tokens, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Tokens) > MaxTokens {
		return nil, fmt.Errorf("%d tokens, over the limit of %d", len(f.Tokens), MaxTokens)
	}
	t := &Tokens{}
	var errs []error
	for i, p := range f.Tokens {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("token %d (%s): %s", i, p.Name, fmt.Sprintf(format, args...)))
		}
		if p.Name == "" {
			bad("name is required (it names the holder in the logs)")
		}
		d, ok := ParseDigest(p.SHA256)
		if !ok {
			bad("sha256 must be 64 lower-case hex digits (store the digest, never the token)")
			continue
		}
		switch p.Role {
		case RoleDeveloper, RoleCustomer:
			if len(p.Tenants) == 0 {
				bad("a %s token needs at least one tenant", p.Role)
			}
			if p.Role == RoleCustomer && len(p.Tenants) > 1 {
				bad("a customer token reads exactly one tenant")
			}
			for _, tenant := range p.Tenants {
				if !record.ValidTenant(tenant) {
					bad("tenant %q must match [a-z0-9-]{1,63}", tenant)
				}
			}
		case RoleAdmin:
			if len(p.Tenants) > 0 {
				bad("an admin token reads every tenant: list no tenants")
			}
		default:
			bad("role %q: must be %s, %s or %s", p.Role, RoleCustomer, RoleDeveloper, RoleAdmin)
		}
		if !t.byDigest.Add(d, p) {
			bad("the same token is listed twice")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return t.byDigest.Len() }

// Lookup returns the principal of a presented token. The token is hashed and
// the digest compared in constant time with the stored one
// ([DigestMap.Lookup]).
func (t *Tokens) Lookup(presented string) (Principal, bool) { return t.byDigest.Lookup(presented) }

// MaxTokenBytes bounds a presented token; longer ones are refused unread.
const MaxTokenBytes = 4096

// Bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme is case-insensitive, RFC 9110), and false when there is none
// or it is over MaxTokenBytes.
func Bearer(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > MaxTokenBytes {
		return "", false
	}
	return token, true
}

// Digest is the hex SHA-256 digest of a token, as a tokens file stores it.
func Digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}
