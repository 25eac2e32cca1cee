// Package auth owns the bearer tokens of Hourglass's HTTP APIs (log-peek and
// the query service): one file format, one parser, one constant-time check.
//
// The tokens file maps bearer tokens, stored as SHA-256 hex digests (never
// the token itself), to who holds them, a role, and the tenants they read:
//
//	tokens:
//	  - name: alice                 # who: in every log line
//	    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//	    role: developer             # developer: the tenants below
//	    tenants: [acme, globex]
//	  - name: acme-dashboard
//	    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	    role: customer              # customer: exactly one tenant
//	    tenants: [acme]
//	  - name: sre-oncall
//	    sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9
//	    role: admin                 # admin: every tenant (no tenants list), free SQL
//
// Make a digest with: printf %s "$TOKEN" | sha256sum
//
// A presented token is hashed and the digest compared in constant time with
// the stored one; the file never holds a usable secret.
package auth
