package lagmon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/filewatch"
	"github.com/hourglass-io/hourglass/internal/kafkaadmin"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// LoadFunc produces the current configuration: defaults, the config file,
// then flag and environment overrides. The monitor calls it at start and on
// every reload.
type LoadFunc func() (Config, error)

// state is the reloadable part of the monitor, swapped as a whole.
type state struct {
	cfg    Config
	filter groupFilter
	cat    *catalog.Catalog
}

// Monitor polls Kafka (and Elasticsearch) and keeps the latest Snapshot.
type Monitor struct {
	load    LoadFunc
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	client  *kafka.Client
	fetcher *kafkawire.Fetcher
	reads   brokerReader   // every read a poll makes
	commits *commitTracker // nil: commit times unknown

	st     atomic.Pointer[state]
	reload chan struct{}

	// Poll-loop state (only the poll goroutine touches these and commits).
	rings     map[ringKey][]status.Sample
	base      map[ringKey]int64    // latest-starting groups: the end when first seen uncommitted
	listed    []string             // the broker's groups as last listed
	described map[string]groupInfo // the groups as last described
	tsMu      sync.Mutex
	tsCache   map[tsKey]tsEntry

	esMu      sync.Mutex
	es        *esclient.Client
	esURLs    string
	freshAt   time.Time
	freshness []MetricFreshness
	jobRuns   []JobRunStatus
	freshErrs []string
	input     inputTracker    // what each metric's input topic holds (input.go)
	dropped   []MetricDropped // records that reached a job but no window (dropped.go)

	snap     atomic.Pointer[Snapshot]
	polls    atomic.Uint64
	history  *history
	notifier *notifier
}

// New reads the configuration and the catalog and prepares the clients; Run
// starts polling.
func New(load LoadFunc, log *slog.Logger, reg prometheus.Registerer) (*Monitor, error) {
	m := &Monitor{
		load:    load,
		log:     log.With("component", "lagmon"),
		now:     time.Now,
		reload:  make(chan struct{}, 1),
		rings:   map[ringKey][]status.Sample{},
		base:    map[ringKey]int64{},
		tsCache: map[tsKey]tsEntry{},
	}
	st, err := m.loadState()
	if err != nil {
		return nil, err
	}
	m.st.Store(st)
	m.client = &kafka.Client{Addr: kafka.TCP(st.cfg.Brokers...), Timeout: 10 * time.Second}
	m.fetcher = &kafkawire.Fetcher{ClientID: "hourglass-lagmon", Timeout: 10 * time.Second}
	m.commits = newCommitTracker(m.fetcher)
	m.metrics = newMetrics(reg, m)
	m.reads = &kafkaReader{brokers: func() []string { return m.st.Load().cfg.Brokers }, client: m.client, fetcher: m.fetcher,
		decodeError: func(kind string) { m.metrics.groupDecodeErrors.WithLabelValues(kind).Inc() }}
	m.history = newHistory()
	m.notifier = newNotifier(m.log, m.metrics)
	m.snap.Store(&Snapshot{Groups: []GroupStatus{}, Freshness: []MetricFreshness{}, JobRuns: []JobRunStatus{},
		Dropped: []MetricDropped{}, Config: configSeconds(st.cfg)})
	return m, nil
}

func (m *Monitor) loadState() (*state, error) {
	cfg, err := m.load()
	if err != nil {
		return nil, fmt.Errorf("lagmon: config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lagmon: config: %w", err)
	}
	f, err := compileFilter(cfg)
	if err != nil {
		return nil, fmt.Errorf("lagmon: config: %w", err)
	}
	st := &state{cfg: cfg, filter: f}
	if cfg.CatalogPath != "" {
		c, err := catalog.Load(cfg.CatalogPath)
		if err != nil {
			return nil, fmt.Errorf("lagmon: %w", err)
		}
		st.cat = c
	}
	return st, nil
}

// Reload asks the monitor to re-read its configuration and catalog (main
// calls it on SIGHUP).
func (m *Monitor) Reload() {
	select {
	case m.reload <- struct{}{}:
	default:
	}
}

func (m *Monitor) reloadState() {
	st, err := m.loadState()
	if err != nil {
		m.metrics.reloads.WithLabelValues("error").Inc()
		m.log.Error("config reload refused; keeping the previous configuration", "error", err)
		return
	}
	old := m.st.Load()
	if fmt.Sprint(old.cfg.Brokers) != fmt.Sprint(st.cfg.Brokers) {
		m.log.Warn("brokers changed in the configuration; a restart is needed to use them", "old", old.cfg.Brokers, "new", st.cfg.Brokers)
		st.cfg.Brokers = old.cfg.Brokers
	}
	m.st.Store(st)
	m.metrics.reloads.WithLabelValues("ok").Inc()
	m.log.Info("configuration reloaded", "allow", st.cfg.Allow, "deny", st.cfg.Deny, "poll_interval", st.cfg.PollInterval, "window", st.cfg.Window)
}

// Ready reports whether Kafka answers.
func (m *Monitor) Ready(ctx context.Context) error {
	return kafkaadmin.TopicReady(ctx, m.st.Load().cfg.Brokers, offsetsTopic)
}

// Snapshot returns the result of the latest poll (never nil).
func (m *Monitor) Snapshot() *Snapshot { return m.snap.Load() }

// Polls is the number of completed polls.
func (m *Monitor) Polls() uint64 { return m.polls.Load() }

// Run polls until ctx is done. A failed poll is logged and counted; the
// next one starts afresh.
func (m *Monitor) Run(ctx context.Context) error {
	defer m.fetcher.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	st := m.st.Load()
	if st.cfg.ConfigFile != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			filewatch.Watch(wctx, st.cfg.ConfigFile, st.cfg.ReloadInterval, m.reload, m.reloadState)
		}()
	}
	if st.cfg.CatalogPath != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var never chan struct{}
			if st.cfg.ConfigFile == "" {
				never = m.reload // SIGHUP still reloads when there is no config file
			}
			filewatch.Watch(wctx, st.cfg.CatalogPath, st.cfg.ReloadInterval, never, m.reloadState)
		}()
	}
	if st.cfg.ConfigFile == "" && st.cfg.CatalogPath == "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-wctx.Done():
					return
				case <-m.reload:
					m.reloadState()
				}
			}
		}()
	}
	m.log.Info("lag monitor polling", "brokers", st.cfg.Brokers, "poll_interval", st.cfg.PollInterval, "window", st.cfg.Window)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		start := time.Now()
		m.poll(ctx)
		timer.Reset(max(0, m.st.Load().cfg.PollInterval-time.Since(start)))
	}
}

// poll runs one poll and publishes its snapshot, metrics, history and alerts.
func (m *Monitor) poll(ctx context.Context) {
	st := m.st.Load()
	n := m.polls.Load() + 1
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, max(st.cfg.PollInterval*3, 30*time.Second))
	defer cancel()

	groups, at, errs := m.pollKafka(pctx, st, n)
	fresh, jobs, ferrs := m.pollFreshness(pctx, st)
	snap := &Snapshot{
		At: at, Poll: n, Groups: groups, Freshness: fresh, JobRuns: jobs, Dropped: m.droppedRecords(),
		Config: configSeconds(st.cfg),
	}
	if snap.Groups == nil {
		snap.Groups = []GroupStatus{}
	}
	for _, e := range errs {
		snap.Errors = append(snap.Errors, e.Error())
	}
	snap.Errors = append(snap.Errors, ferrs...)
	result := "ok"
	if len(errs) > 0 {
		result = "error"
		m.log.Warn("poll had errors", "errors", len(errs), "first", errs[0])
	}
	if ctx.Err() != nil {
		return // shutting down: keep the last complete snapshot
	}
	m.snap.Store(snap)
	m.polls.Store(n)
	m.metrics.polls.WithLabelValues(result).Inc()
	m.metrics.pollSeconds.Observe(time.Since(start).Seconds())
	m.history.add(snap, st.cfg.History)
	m.notifier.update(ctx, st.cfg, snap)
}

// configSeconds is the snapshot's config_seconds: the settings a poll runs
// with (the configured ones before the first poll).
func configSeconds(cfg Config) map[string]float64 {
	return map[string]float64{"poll_interval": cfg.PollInterval.Seconds(), "window": cfg.Window.Seconds(), "at_risk_horizon": cfg.Horizon.Seconds()}
}
