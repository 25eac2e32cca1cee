package lagmon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Config is the lag monitor's configuration. Every field can come from the
// YAML config file (keys as in the yaml tags); flags and HOURGLASS_LAGMON_*
// variables override the file (see cmd/hourglass/lagmon.go).
type Config struct {
	// ConfigFile is the YAML file this configuration was read from (watched
	// for changes); empty when there is none.
	ConfigFile string `yaml:"-"`

	Brokers     []string `yaml:"brokers"` // Kafka bootstrap brokers (not reloadable)
	CatalogPath string   `yaml:"catalog"` // metric catalog; empty: no catalog groups, no freshness

	PollInterval time.Duration `yaml:"poll_interval"`   // how often offsets are read
	Window       time.Duration `yaml:"window"`          // status and rate window
	SLA          time.Duration `yaml:"sla"`             // time-lag SLA of groups that are not metric jobs
	Horizon      time.Duration `yaml:"at_risk_horizon"` // AT_RISK when the forecast crosses the SLA within this

	// Allow: regular expressions of further groups to watch (the catalog's
	// groups are always watched). Deny: groups never watched, catalog or not.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// SLAOverrides set the time-lag SLA of the groups matching a pattern;
	// the first match wins over the catalog's freshness SLA and the default.
	SLAOverrides []SLAOverride `yaml:"sla_overrides"`
	// AutoOffsetReset is where a group starts reading a partition it never
	// committed (Kafka's auto.offset.reset): earliest (the default; every
	// Hourglass consumer starts there) or latest. It decides the lag of such
	// a partition: end − log start for earliest, unknown for latest.
	// AutoOffsetResetOverrides set it for the groups matching a pattern
	// (first match wins).
	AutoOffsetReset          status.Reset    `yaml:"auto_offset_reset"`
	AutoOffsetResetOverrides []ResetOverride `yaml:"auto_offset_reset_overrides"`

	// IsolationLevel is how a group reads transactional topics (Kafka's
	// isolation.level, which the broker does not tell): read_committed (the
	// default) reads up to the last stable offset, so the records of an open
	// transaction are not its lag (OPEN_TRANSACTION reports them);
	// read_uncommitted reads up to the high watermark. IsolationLevelOverrides
	// set it for the groups matching a pattern (first match wins). On topics
	// without transactions both give the same lag.
	IsolationLevel          Isolation           `yaml:"isolation_level"`
	IsolationLevelOverrides []IsolationOverride `yaml:"isolation_level_overrides"`
	// OpenTxnAfter: a transaction open longer than this (the age of its
	// first record) holding back a read_committed group is OPEN_TRANSACTION.
	OpenTxnAfter time.Duration `yaml:"open_transaction_after"`

	ESURLs            []string      `yaml:"es_urls"`            // Elasticsearch/OpenSearch; empty: no freshness
	FreshnessInterval time.Duration `yaml:"freshness_interval"` // how often freshness and job runs are read
	JobRunsIndex      string        `yaml:"job_runs_index"`     // batch job runs
	JobPeriod         time.Duration `yaml:"job_period"`         // a run longer than this needs more resources
	JobLookback       time.Duration `yaml:"job_lookback"`       // runs started within this are checked
	// InputMargin: a window holding a metric's input is due this long after
	// window + allowed lateness (trigger, batch and refresh delays); a tenant
	// whose due window is missing is AT_RISK (input_ahead_of_windows).
	InputMargin time.Duration `yaml:"input_margin"`
	// DroppedLookback: late and out-of-range records are summed over this;
	// DroppedTenants: tenants with their own series, the rest as "_other".
	DroppedLookback time.Duration `yaml:"dropped_lookback"`
	DroppedTenants  int           `yaml:"dropped_tenants"`

	AlertmanagerURLs []string        `yaml:"alertmanager_urls"` // base URLs; alerts go to <url>/api/v2/alerts
	WebhookURLs      []string        `yaml:"webhook_urls"`      // generic JSON webhooks
	AlertResend      time.Duration   `yaml:"alert_resend"`      // firing alerts are re-sent to Alertmanager this often
	AlertOn          []status.Status `yaml:"alert_on"`          // statuses that fire an alert
	ExternalURL      string          `yaml:"external_url"`      // this monitor's URL, for alert links

	History        time.Duration `yaml:"history"`         // how much history the status page charts
	ReloadInterval time.Duration `yaml:"reload_interval"` // how often the config and catalog files are checked
}

// SLAOverride sets the SLA of the groups matching Group (a regular expression).
type SLAOverride struct {
	Group string        `yaml:"group"`
	SLA   time.Duration `yaml:"sla"`
}

// ResetOverride sets the start position of the groups matching Group (a
// regular expression).
type ResetOverride struct {
	Group string       `yaml:"group"`
	Reset status.Reset `yaml:"auto_offset_reset"`
}

// Isolation is a consumer's isolation.level.
type Isolation int

const (
	ReadCommitted Isolation = iota
	ReadUncommitted
)

var isolationNames = [...]string{"read_committed", "read_uncommitted"}

func (i Isolation) String() string {
	if i < 0 || int(i) >= len(isolationNames) {
		return fmt.Sprintf("Isolation(%d)", int(i))
	}
	return isolationNames[i]
}

// MarshalText writes the level by name.
func (i Isolation) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText reads "read_committed" or "read_uncommitted".
func (i *Isolation) UnmarshalText(b []byte) error {
	for n, name := range isolationNames {
		if name == string(b) {
			*i = Isolation(n)
			return nil
		}
	}
	return fmt.Errorf("unknown isolation level %q: want read_committed or read_uncommitted", b)
}

// IsolationOverride sets the isolation level of the groups matching Group
// (a regular expression).
type IsolationOverride struct {
	Group     string    `yaml:"group"`
	Isolation Isolation `yaml:"isolation_level"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Brokers:           []string{"127.0.0.1:9092"},
		CatalogPath:       "metrics-jobs/catalog.yaml",
		PollInterval:      15 * time.Second,
		Window:            5 * time.Minute,
		SLA:               time.Hour,
		Horizon:           30 * time.Minute,
		AutoOffsetReset:   status.Earliest,
		IsolationLevel:    ReadCommitted,
		OpenTxnAfter:      time.Minute,
		FreshnessInterval: time.Minute,
		JobRunsIndex:      catalog.JobRunsIndex,
		JobPeriod:         time.Hour,
		JobLookback:       6 * time.Hour,
		InputMargin:       5 * time.Minute,
		DroppedLookback:   time.Hour,
		DroppedTenants:    20,
		AlertResend:       time.Minute,
		AlertOn:           []status.Status{status.DataLoss, status.Breach, status.Stop, status.Stall, status.AtRisk, status.OpenTransaction},
		History:           6 * time.Hour,
		ReloadInterval:    2 * time.Second,
	}
}

// LoadFile overlays the YAML file at path on base. Unknown keys are errors.
func LoadFile(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("lagmon: read config %s: %w", path, err)
	}
	cfg := base
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file sets nothing
		return base, fmt.Errorf("lagmon: config %s: %w", path, err)
	}
	cfg.ConfigFile = path
	return cfg, nil
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one is required"))
	}
	if c.PollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("poll-interval %s: must be at least 100ms", c.PollInterval))
	}
	if c.Window < 2*c.PollInterval {
		errs = append(errs, fmt.Errorf("window %s: must be at least two poll intervals (%s)", c.Window, 2*c.PollInterval))
	}
	if c.SLA <= 0 {
		errs = append(errs, fmt.Errorf("sla %s: must be > 0", c.SLA))
	}
	if c.Horizon < 0 {
		errs = append(errs, fmt.Errorf("at-risk-horizon %s: must be >= 0", c.Horizon))
	}
	for _, p := range append(append([]string{}, c.Allow...), c.Deny...) {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("group pattern %q: %w", p, err))
		}
	}
	for _, o := range c.SLAOverrides {
		if _, err := regexp.Compile(o.Group); err != nil {
			errs = append(errs, fmt.Errorf("sla_overrides group %q: %w", o.Group, err))
		}
		if o.SLA <= 0 {
			errs = append(errs, fmt.Errorf("sla_overrides %q: sla %s must be > 0", o.Group, o.SLA))
		}
	}
	for _, o := range c.AutoOffsetResetOverrides {
		if _, err := regexp.Compile(o.Group); err != nil {
			errs = append(errs, fmt.Errorf("auto_offset_reset_overrides group %q: %w", o.Group, err))
		}
	}
	for _, o := range c.IsolationLevelOverrides {
		if _, err := regexp.Compile(o.Group); err != nil {
			errs = append(errs, fmt.Errorf("isolation_level_overrides group %q: %w", o.Group, err))
		}
	}
	if c.IsolationLevel != ReadCommitted && c.IsolationLevel != ReadUncommitted {
		errs = append(errs, fmt.Errorf("isolation-level %s: want read_committed or read_uncommitted", c.IsolationLevel))
	}
	if c.OpenTxnAfter < 0 {
		errs = append(errs, fmt.Errorf("open-transaction-after %s: must be >= 0", c.OpenTxnAfter))
	}
	if c.AutoOffsetReset != status.Earliest && c.AutoOffsetReset != status.Latest {
		errs = append(errs, fmt.Errorf("auto-offset-reset %s: want earliest or latest", c.AutoOffsetReset))
	}
	for _, u := range append(append(append([]string{}, c.ESURLs...), c.AlertmanagerURLs...), c.WebhookURLs...) {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("URL %q: want http(s)://host[:port][/path]", u))
		}
	}
	if len(c.ESURLs) > 0 && c.FreshnessInterval <= 0 {
		errs = append(errs, fmt.Errorf("freshness-interval %s: must be > 0", c.FreshnessInterval))
	}
	if c.JobPeriod <= 0 || c.JobLookback <= 0 {
		errs = append(errs, errors.New("job_period and job_lookback must be > 0"))
	}
	if c.InputMargin < 0 {
		errs = append(errs, fmt.Errorf("input_margin %s: must be >= 0", c.InputMargin))
	}
	if c.DroppedLookback < time.Minute || c.DroppedLookback > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("dropped_lookback %s: must be between 1m and 168h", c.DroppedLookback))
	}
	if c.DroppedTenants < 1 || c.DroppedTenants > MaxDroppedTenants {
		errs = append(errs, fmt.Errorf("dropped_tenants %d: must be between 1 and %d", c.DroppedTenants, MaxDroppedTenants))
	}
	if c.AlertResend <= 0 {
		errs = append(errs, fmt.Errorf("alert-resend %s: must be > 0", c.AlertResend))
	}
	if c.History < c.PollInterval {
		errs = append(errs, fmt.Errorf("history %s: must be at least one poll interval", c.History))
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("reload-interval %s: must be > 0", c.ReloadInterval))
	}
	return errors.Join(errs...)
}

// groupFilter is the compiled allow/deny/SLA part of a Config.
type groupFilter struct {
	allow, deny []*regexp.Regexp
	slas        []compiledSLA
	resets      []compiledReset
	reset       status.Reset
	isolations  []compiledIsolation
	isolation   Isolation
}

type compiledIsolation struct {
	re        *regexp.Regexp
	isolation Isolation
}

type compiledReset struct {
	re    *regexp.Regexp
	reset status.Reset
}

type compiledSLA struct {
	re  *regexp.Regexp
	sla time.Duration
}

func compileFilter(c Config) (groupFilter, error) {
	f := groupFilter{reset: c.AutoOffsetReset, isolation: c.IsolationLevel}
	for _, o := range c.IsolationLevelOverrides {
		re, err := regexp.Compile(o.Group)
		if err != nil {
			return f, fmt.Errorf("isolation_level_overrides %q: %w", o.Group, err)
		}
		f.isolations = append(f.isolations, compiledIsolation{re, o.Isolation})
	}
	for _, o := range c.AutoOffsetResetOverrides {
		re, err := regexp.Compile(o.Group)
		if err != nil {
			return f, fmt.Errorf("auto_offset_reset_overrides %q: %w", o.Group, err)
		}
		f.resets = append(f.resets, compiledReset{re, o.Reset})
	}
	for _, p := range c.Allow {
		re, err := regexp.Compile(p)
		if err != nil {
			return f, fmt.Errorf("allow %q: %w", p, err)
		}
		f.allow = append(f.allow, re)
	}
	for _, p := range c.Deny {
		re, err := regexp.Compile(p)
		if err != nil {
			return f, fmt.Errorf("deny %q: %w", p, err)
		}
		f.deny = append(f.deny, re)
	}
	for _, o := range c.SLAOverrides {
		re, err := regexp.Compile(o.Group)
		if err != nil {
			return f, fmt.Errorf("sla_overrides %q: %w", o.Group, err)
		}
		f.slas = append(f.slas, compiledSLA{re, o.SLA})
	}
	return f, nil
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// allowed reports whether a group outside the catalog is watched.
func (f groupFilter) allowed(group string) bool {
	return matchAny(f.allow, group) && !matchAny(f.deny, group)
}

// denied reports whether a group (catalog or not) is excluded.
func (f groupFilter) denied(group string) bool { return matchAny(f.deny, group) }

// sla returns the override for group, if any.
func (f groupFilter) sla(group string) (time.Duration, bool) {
	for _, o := range f.slas {
		if o.re.MatchString(group) {
			return o.sla, true
		}
	}
	return 0, false
}

// startAt returns where group starts on a partition it never committed.
func (f groupFilter) startAt(group string) status.Reset {
	for _, o := range f.resets {
		if o.re.MatchString(group) {
			return o.reset
		}
	}
	return f.reset
}

// isolationOf returns how group reads transactional topics.
func (f groupFilter) isolationOf(group string) Isolation {
	for _, o := range f.isolations {
		if o.re.MatchString(group) {
			return o.isolation
		}
	}
	return f.isolation
}
