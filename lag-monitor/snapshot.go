package lagmon

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Snapshot is the monitor's view after one poll: what GET /v1/status
// returns, what /metrics exports and what the alerts are computed from.
type Snapshot struct {
	At        time.Time          `json:"at"`
	Poll      uint64             `json:"poll"`
	Groups    []GroupStatus      `json:"groups"`
	Freshness []MetricFreshness  `json:"freshness"`
	JobRuns   []JobRunStatus     `json:"job_runs"`
	Errors    []string           `json:"errors,omitempty"`
	Config    map[string]float64 `json:"config_seconds"` // poll interval, window, horizon
}

// Count is an offset or a lag that may be unknown (a partition the group
// never committed). It is written to JSON as a number or "unknown".
type Count struct {
	N     int64
	Known bool
}

// Known returns a known count.
func Known(n int64) Count { return Count{N: n, Known: true} }

// MarshalJSON writes the number or "unknown".
func (c Count) MarshalJSON() ([]byte, error) {
	if !c.Known {
		return []byte(`"unknown"`), nil
	}
	return []byte(strconv.FormatInt(c.N, 10)), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Count) UnmarshalJSON(b []byte) error {
	if string(b) == `"unknown"` {
		*c = Count{}
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*c = Known(n)
	return nil
}

// Seconds is a duration written to JSON in seconds; Known=false writes
// "unknown".
type Seconds struct {
	D     time.Duration
	Known bool
}

// MarshalJSON writes seconds or "unknown".
func (s Seconds) MarshalJSON() ([]byte, error) {
	if !s.Known {
		return []byte(`"unknown"`), nil
	}
	return json.Marshal(s.D.Seconds())
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	if string(b) == `"unknown"` {
		*s = Seconds{}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds{D: time.Duration(f * float64(time.Second)), Known: true}
	return nil
}

// GroupStatus is one consumer group.
type GroupStatus struct {
	Group      string          `json:"group"`
	Source     string          `json:"source"` // "catalog" or "config"
	Metric     string          `json:"metric,omitempty"`
	State      string          `json:"state"` // the broker's group state; "" for a group it does not know
	Members    int             `json:"members"`
	SLA        Seconds         `json:"sla_seconds"`
	Status     status.Status   `json:"status"`
	Conditions []status.Status `json:"conditions"`
	// Lag is the sum over partitions with a commit; MaxLag the largest.
	Lag               int64           `json:"lag"`
	MaxLag            int64           `json:"max_lag"`
	UnknownPartitions int             `json:"unknown_partitions"`
	TimeLag           Seconds         `json:"time_lag_seconds"` // the largest
	Lost              int64           `json:"lost_records"`
	Forecast          status.Forecast `json:"forecast"`
	Advice            status.Advice   `json:"advice"`
	Partitions        []PartitionLag  `json:"partitions"`
}

// PartitionLag is one partition of one group.
type PartitionLag struct {
	Topic      string          `json:"topic"`
	Partition  int             `json:"partition"`
	Committed  Count           `json:"committed"`
	LogStart   int64           `json:"log_start"`
	End        int64           `json:"end"`
	LastStable int64           `json:"last_stable"`
	Lag        Count           `json:"lag"`
	TimeLag    Seconds         `json:"time_lag_seconds"`
	LastCommit *time.Time      `json:"last_commit,omitempty"`
	Status     status.Status   `json:"status"`
	Conditions []status.Status `json:"conditions"`
	Lost       int64           `json:"lost_records"`
	Forecast   status.Forecast `json:"forecast"`
	Error      string          `json:"error,omitempty"`
}

// MetricFreshness is the freshness of one metric's documents.
type MetricFreshness struct {
	Metric string        `json:"metric"`
	Alias  string        `json:"alias"`
	SLA    Seconds       `json:"sla_seconds"`
	Status status.Status `json:"status"` // NO_DATA when the alias is missing or empty
	// Newest is the end of the newest complete hourly window, any tenant.
	Newest  *time.Time        `json:"newest_window_end,omitempty"`
	Tenants []TenantFreshness `json:"tenants"`
	Error   string            `json:"error,omitempty"`
}

// TenantFreshness is the freshness of one tenant's documents of a metric.
type TenantFreshness struct {
	Tenant string        `json:"tenant"`
	Newest time.Time     `json:"newest_window_end"`
	Age    Seconds       `json:"freshness_seconds"`
	Status status.Status `json:"status"`
	// Missing is the first due hour with evidence of traffic but no document.
	Missing *time.Time `json:"missing_hour,omitempty"`
}

// JobRunStatus is the latest batch run of a metric's job.
type JobRunStatus struct {
	Metric   string    `json:"metric"`
	Hour     string    `json:"hour"`
	Start    time.Time `json:"start"`
	Duration Seconds   `json:"duration_seconds"`
	Records  int64     `json:"records"`
	Outcome  string    `json:"outcome"`
	// Overrun: the run took longer than its period; it needs more resources.
	Overrun bool   `json:"overrun"`
	Advice  string `json:"advice,omitempty"`
}
