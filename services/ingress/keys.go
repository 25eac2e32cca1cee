package ingress

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/record"
)

// The keys file maps API keys, stored as SHA-256 hex digests, to tenants:
//
//	keys:
//	  - tenant: acme
//	    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	    name: acme-edge-1          # optional, for logs
//	    disabled: false            # optional: a disabled key gets 403
//
// Make a digest with: printf %s "$KEY" | sha256sum (upper-case hex digits
// are accepted too). The digests and the lookup are internal/auth's
// ([auth.ParseDigest], [auth.DigestMap]), shared with the bearer tokens of
// log-peek and the query service; the format and its messages are this file's.
type keysFile struct {
	Keys []keyEntry `yaml:"keys"`
}

type keyEntry struct {
	Tenant   string `yaml:"tenant"`
	SHA256   string `yaml:"sha256"`
	Name     string `yaml:"name"`
	Disabled bool   `yaml:"disabled"`
}

// keyring looks up API keys; it is never changed once read, and is replaced
// whole on reload.
type keyring = auth.DigestMap[keyEntry]

// Keys holds the current keyring and swaps in reloaded ones.
type Keys struct {
	cur atomic.Pointer[keyring]
}

// LoadKeys reads and validates a keys file.
func LoadKeys(path string) (*Keys, error) {
	kr, err := readKeyring(path)
	if err != nil {
		return nil, err
	}
	k := &Keys{}
	k.cur.Store(kr)
	return k, nil
}

// Reload replaces the keyring; on error the old one stays in force.
func (k *Keys) Reload(path string) error {
	kr, err := readKeyring(path)
	if err != nil {
		return err
	}
	k.cur.Store(kr)
	return nil
}

// Len is the number of keys.
func (k *Keys) Len() int { return k.cur.Load().Len() }

// Lookup returns the entry for a presented key. The presented key is hashed
// and the digest compared in constant time with the stored one.
func (k *Keys) Lookup(presented string) (keyEntry, bool) { return k.cur.Load().Lookup(presented) }

func readKeyring(path string) (*keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	var f keysFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("keys: parse %s: %w", path, err)
	}
	kr := &keyring{}
	var problems []string
	for i, e := range f.Keys {
		e.SHA256 = strings.ToLower(e.SHA256)
		bad := false
		if !record.ValidTenant(e.Tenant) {
			problems = append(problems, fmt.Sprintf("key %d: tenant %q must match [a-z0-9-]{1,63}", i, e.Tenant))
			bad = true
		}
		d, ok := auth.ParseDigest(e.SHA256)
		if !ok {
			problems = append(problems, fmt.Sprintf("key %d (%s): sha256 must be 64 hex digits (store the digest, never the key)", i, e.Tenant))
			bad = true
		}
		if bad {
			continue
		}
		if !kr.Add(d, e) {
			problems = append(problems, fmt.Sprintf("key %d (%s): the same key is listed twice", i, e.Tenant))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("keys: %s: %s", path, strings.Join(problems, "; "))
	}
	return kr, nil
}
