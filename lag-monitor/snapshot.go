package lagmon

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Snapshot is the monitor's view after one poll: what GET /v1/status
// returns, what /metrics exports and what the alerts are computed from.
type Snapshot struct {
	At        time.Time         `json:"at"`
	Poll      uint64            `json:"poll"`
	Groups    []GroupStatus     `json:"groups"`
	Freshness []MetricFreshness `json:"freshness"`
	JobRuns   []JobRunStatus    `json:"job_runs"`
	// Dropped: per metric, records that reached its job but no window.
	Dropped []MetricDropped    `json:"dropped"`
	Errors  []string           `json:"errors,omitempty"`
	Config  map[string]float64 `json:"config_seconds"` // poll interval, window, horizon
}

// Count is an offset or a lag that may be unknown. It is written to JSON as
// a number, or null when unknown; the field beside it named
// <field>_unknown_reason says why (one of the Reason* values).
type Count struct {
	N     int64
	Known bool
}

// Known returns a known count.
func Known(n int64) Count { return Count{N: n, Known: true} }

// MarshalJSON writes the number or null.
func (c Count) MarshalJSON() ([]byte, error) {
	if !c.Known {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatInt(c.N, 10)), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Count) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = Count{}
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("count: want an integer or null: %w", err)
	}
	*c = Known(n)
	return nil
}

// Seconds is a duration written to JSON in seconds, or null when unknown
// (Known false); the field beside it named <field>_unknown_reason says why.
type Seconds struct {
	D     time.Duration
	Known bool
}

// MarshalJSON writes seconds or null.
func (s Seconds) MarshalJSON() ([]byte, error) {
	if !s.Known {
		return []byte("null"), nil
	}
	return json.Marshal(s.D.Seconds())
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Seconds{}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("seconds: want a number or null: %w", err)
	}
	*s = Seconds{D: time.Duration(f * float64(time.Second)), Known: true}
	return nil
}

// Why a value is null in /v1/status (the *_unknown_reason fields).
const (
	// ReasonNeverCommitted: the group never committed the partition and
	// starts at the latest offset, so its position is unknown; or, for
	// "committed", simply that there is no commit.
	ReasonNeverCommitted = "never_committed"
	// ReasonReadError: an offset read failed this poll (request error, a
	// partition missing from the answer or answered with an error code).
	ReasonReadError = "offset_read_error"
	// ReasonInconsistent: the reads of this poll contradict each other
	// (committed past the end, log start past the end, last stable past
	// the end), so none of them is trusted.
	ReasonInconsistent = "inconsistent_read"
	// ReasonTimestampReadError: the record whose timestamp gives the time
	// lag could not be read this poll.
	ReasonTimestampReadError = "timestamp_read_error"
)

// GroupStatus is one consumer group.
type GroupStatus struct {
	Group   string `json:"group"`
	Source  string `json:"source"` // "catalog" or "config"
	Metric  string `json:"metric,omitempty"`
	State   string `json:"state"` // the broker's group state; "" for a group it does not know
	Members int    `json:"members"`
	// MemberList: each member with its client id and, for consumer groups of
	// any client (consumer-protocol versions 0–3), its subscription and
	// assignment.
	MemberList []GroupMember `json:"member_list"`
	// Isolation is how the group is taken to read transactional topics
	// (isolation_level): read_committed groups' lag stops at the last
	// stable offset.
	Isolation Isolation `json:"isolation_level"`
	// UncommittedPartitions counts the partitions it never committed.
	UncommittedPartitions int             `json:"uncommitted_partitions"`
	SLA                   Seconds         `json:"sla_seconds"`
	Reset                 status.Reset    `json:"auto_offset_reset"` // where it starts on a partition it never committed
	Status                status.Status   `json:"status"`
	Conditions            []status.Status `json:"conditions"`
	// Lag is the sum over its partitions, MaxLag the largest; both null when
	// any partition's lag is unknown (a partial sum is not the lag).
	Lag               Count  `json:"lag"`
	LagUnknownReason  string `json:"lag_unknown_reason,omitempty"`
	MaxLag            Count  `json:"max_lag"`
	UnknownPartitions int    `json:"unknown_partitions"`
	// TimeLag is the largest; null when any partition's is unknown.
	TimeLag              Seconds         `json:"time_lag_seconds"`
	TimeLagUnknownReason string          `json:"time_lag_unknown_reason,omitempty"`
	Lost                 int64           `json:"lost_records"`
	Forecast             status.Forecast `json:"forecast"`
	Advice               status.Advice   `json:"advice"`
	Partitions           []PartitionLag  `json:"partitions"`
	Error                string          `json:"error,omitempty"` // what could not be read this poll
}

// GroupMember is one member of a group, as DescribeGroups says.
type GroupMember struct {
	MemberID   string             `json:"member_id"`
	InstanceID string             `json:"group_instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	ClientHost string             `json:"client_host"`
	Subscribed []string           `json:"subscribed_topics"`
	Assigned   map[string][]int32 `json:"assigned_partitions"` // topic → partitions
	// Error: its subscription or assignment could not be decoded.
	Error string `json:"error,omitempty"`
}

// PartitionLag is one partition of one group.
type PartitionLag struct {
	Topic                  string `json:"topic"`
	Partition              int    `json:"partition"`
	Committed              Count  `json:"committed"`
	CommittedUnknownReason string `json:"committed_unknown_reason,omitempty"`
	// LogStart, End and LastStable are null together when this poll could
	// not read them; OffsetsUnknownReason says why.
	LogStart             Count      `json:"log_start"`
	End                  Count      `json:"end"`
	LastStable           Count      `json:"last_stable"`
	OffsetsUnknownReason string     `json:"offsets_unknown_reason,omitempty"`
	Lag                  Count      `json:"lag"`
	LagUnknownReason     string     `json:"lag_unknown_reason,omitempty"`
	TimeLag              Seconds    `json:"time_lag_seconds"`
	TimeLagUnknownReason string     `json:"time_lag_unknown_reason,omitempty"`
	LastCommit           *time.Time `json:"last_commit,omitempty"`
	// ClientID and MemberID: the member the partition is assigned to ("" when none).
	ClientID string `json:"client_id,omitempty"`
	MemberID string `json:"member_id,omitempty"`
	// OnlyControlRecords: the records between the group's position and its
	// readable end are all transaction markers or aborted records: no work,
	// lag 0 (Kafka's own tool counts each marker as lag).
	OnlyControlRecords bool `json:"only_control_records,omitempty"`
	// OpenTxnRecords: records past the last stable offset, of transactions
	// still open, that a read_committed group cannot read yet (not its
	// lag); OpenTxnAge: the age of the first of them (null when none, or
	// not read: then OpenTxnAgeUnknownReason).
	OpenTxnRecords          int64           `json:"open_transaction_records"`
	OpenTxnAge              Seconds         `json:"open_transaction_age_seconds"`
	OpenTxnAgeUnknownReason string          `json:"open_transaction_age_unknown_reason,omitempty"`
	Status                  status.Status   `json:"status"`
	Conditions              []status.Status `json:"conditions"`
	Lost                    int64           `json:"lost_records"`
	Forecast                status.Forecast `json:"forecast"`
	Error                   string          `json:"error,omitempty"`
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
	// InputNewest: the newest event time read from the metric's input topic
	// (absent when none was read); InputAhead: the largest gap over its
	// tenants between their newest input and their newest window (null when
	// none is known); InputBehindTenants: tenants AT_RISK by input.
	InputNewest        *time.Time `json:"input_newest_event_time,omitempty"`
	InputAhead         Seconds    `json:"input_ahead_seconds"`
	InputBehindTenants int        `json:"input_behind_tenants"`
}

// TenantFreshness is the freshness of one tenant's documents of a metric.
type TenantFreshness struct {
	Tenant string `json:"tenant"`
	// Newest: the end of its newest complete hourly window (null when it has
	// none: then Age is null too, with AgeUnknownReason).
	Newest           *time.Time    `json:"newest_window_end"`
	Age              Seconds       `json:"freshness_seconds"`
	AgeUnknownReason string        `json:"freshness_unknown_reason,omitempty"`
	Status           status.Status `json:"status"`
	// Missing is the first due hour with evidence of traffic but no document.
	Missing *time.Time `json:"missing_hour,omitempty"`
	// Reason says why the status is not OK when the clock alone does not
	// (input_ahead_of_windows).
	Reason string `json:"reason,omitempty"`
	// InputNewest: the tenant's newest event time read from the metric's
	// input; InputAhead: InputNewest minus the end of its newest small
	// window, floored at 0 (null, with InputAheadUnknownReason, when either
	// is unknown); DueWindowEnd: the end of the newest window holding its
	// input that must be in Elasticsearch by now.
	InputNewest             *time.Time `json:"input_newest_event_time,omitempty"`
	InputAhead              Seconds    `json:"input_ahead_seconds"`
	InputAheadUnknownReason string     `json:"input_ahead_unknown_reason,omitempty"`
	DueWindowEnd            *time.Time `json:"due_window_end,omitempty"`
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
