package logpeek

import (
	"fmt"

	"github.com/hourglass-io/hourglass/internal/auth"
)

// The token format, its parser and the constant-time check are owned by
// internal/auth (shared with the query service); these names keep
// logpeek's API.

// Roles a token may have.
const (
	// RoleDeveloper reads the tenants listed with the token.
	RoleDeveloper = auth.RoleDeveloper
	// RoleAdmin reads every tenant.
	RoleAdmin = auth.RoleAdmin
)

// Principal is who a token speaks for.
type Principal = auth.Principal

// Tokens resolves bearer tokens to principals.
type Tokens = auth.Tokens

// LoadTokens reads and validates a tokens file (see internal/auth for the
// format), reporting every problem.
func LoadTokens(path string) (*Tokens, error) {
	t, err := auth.Load(path)
	if err != nil {
		return nil, fmt.Errorf("logpeek: %w", err)
	}
	return t, nil
}

// ParseTokens parses the content of a tokens file.
func ParseTokens(data []byte) (*Tokens, error) { return auth.Parse(data) }
