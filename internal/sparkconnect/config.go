package sparkconnect

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SessionHeader is the gRPC metadata key HAProxy pins sessions by
// (haproxy/spark-connect.cfg: stick on req.hdr(x-hourglass-session)).
const SessionHeader = "x-hourglass-session"

// Bounds of the configuration.
const (
	// MaxRowsLimit is the largest Config.MaxRows: results are collected in memory.
	MaxRowsLimit = 1_000_000
	// MaxAttemptsLimit bounds Config.Attempts.
	MaxAttemptsLimit = 20
)

// Config says how to reach the pool.
type Config struct {
	// URL of the pool, sc://host:port (HOURGLASS_SPARK_CONNECT_POOL). Connection-string
	// parameters (/;key=value) are not accepted: the session header is set per session.
	URL string `yaml:"url"`
	// User is the Spark Connect user id of the sessions.
	User string `yaml:"user"`
	// MaxRows bounds a SQL result (1..MaxRowsLimit).
	MaxRows int `yaml:"max_rows"`
	// Attempts is how often a call refused as UNAVAILABLE is tried in all (1..MaxAttemptsLimit).
	Attempts int `yaml:"attempts"`
	// BackoffMin and BackoffMax bound the exponential wait between attempts.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// DefaultConfig is a pool on the local stack's port with its defaults.
func DefaultConfig() Config {
	return Config{
		URL:        "sc://127.0.0.1:15000",
		User:       "hourglass",
		MaxRows:    10_000,
		Attempts:   6,
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: 2 * time.Second,
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.User == "" {
		errs = append(errs, errors.New("sparkconnect: user is empty"))
	}
	if c.MaxRows < 1 || c.MaxRows > MaxRowsLimit {
		errs = append(errs, fmt.Errorf("sparkconnect: max_rows %d is outside 1..%d", c.MaxRows, MaxRowsLimit))
	}
	if c.Attempts < 1 || c.Attempts > MaxAttemptsLimit {
		errs = append(errs, fmt.Errorf("sparkconnect: attempts %d is outside 1..%d", c.Attempts, MaxAttemptsLimit))
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("sparkconnect: backoff %s..%s: need 0 < backoff_min <= backoff_max", c.BackoffMin, c.BackoffMax))
	}
	return errors.Join(errs...)
}

// parseURL checks an sc://host:port URL and returns host:port.
func parseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("sparkconnect: url %q: %w", raw, err)
	}
	if u.Scheme != "sc" {
		return "", fmt.Errorf("sparkconnect: url %q: scheme must be sc", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("sparkconnect: url %q: only sc://host:port is accepted (the session header is set per session)", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return "", fmt.Errorf("sparkconnect: url %q: need host:port", raw)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("sparkconnect: url %q: port %q is not 1..65535", raw, port)
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port), nil
}

// backoff returns the wait before attempt n+1 (n >= 1): BackoffMin doubled per
// attempt, capped at BackoffMax.
func (c Config) backoff(n int) time.Duration {
	d := c.BackoffMin
	for i := 1; i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}
