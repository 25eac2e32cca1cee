package lagmon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Alert is one alert, in Alertmanager's v2 API shape (postableAlert).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// WebhookMessage is what the generic webhook receives: one message per
// change, either firing or resolved alerts (Alertmanager's webhook shape).
type WebhookMessage struct {
	Version string         `json:"version"`
	Source  string         `json:"source"`
	Status  string         `json:"status"` // firing or resolved
	Alerts  []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookMessage.
type WebhookAlert struct {
	Status string `json:"status"`
	Alert
}

// notifier turns snapshots into alert notifications: an alert starts when a
// group (or metric, or job) enters an alerting status, and resolves when it
// leaves it. Each start and each resolution is sent once to every webhook;
// Alertmanager additionally gets firing alerts again every AlertResend (it
// expires alerts that are not refreshed) with endsAt a few resends ahead,
// and resolutions as endsAt = now. Failed sends are retried at the next poll.
type notifier struct {
	log     *slog.Logger
	metrics *metrics
	http    *http.Client
	active  map[string]*activeAlert // by fingerprint
	pending []pendingResolve
}

type activeAlert struct {
	alert    Alert
	sentAM   time.Time       // last successful send to every Alertmanager
	sentHook map[string]bool // webhooks told about the start
}

type pendingResolve struct {
	alert Alert
	hooks map[string]bool // webhooks still to tell
	am    bool            // Alertmanagers still to tell
}

func newNotifier(log *slog.Logger, m *metrics) *notifier {
	return &notifier{log: log, metrics: m, http: &http.Client{Timeout: 10 * time.Second}, active: map[string]*activeAlert{}}
}

func fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + labels[k] + "\x00")
	}
	return b.String()
}

var alertNames = map[status.Status]string{
	status.DataLoss:        "HourglassConsumerDataLoss",
	status.Breach:          "HourglassSLABreach",
	status.Stop:            "HourglassConsumerStopped",
	status.Stall:           "HourglassConsumerStalled",
	status.Uncommitted:     "HourglassConsumerUncommitted",
	status.AtRisk:          "HourglassSLAAtRisk",
	status.OpenTransaction: "HourglassOpenTransaction",
	status.Unknown:         "HourglassConsumerLagUnknown",
	status.Rewind:          "HourglassConsumerRewind",
	status.Warn:            "HourglassConsumerLagGrowing",
	status.NoData:          "HourglassNoData",
}

func severity(s status.Status) string {
	switch s {
	case status.DataLoss, status.Breach, status.Stop:
		return "critical"
	}
	return "warning"
}

// desired lists the alerts the snapshot calls for.
func desired(cfg Config, snap *Snapshot) []Alert {
	var out []Alert
	on := func(s status.Status) bool { return slices.Contains(cfg.AlertOn, s) }
	gen := strings.TrimSuffix(cfg.ExternalURL, "/")
	for _, g := range snap.Groups {
		if !on(g.Status) {
			continue
		}
		lag, timeLag := "unknown ("+g.LagUnknownReason+")", "unknown ("+g.TimeLagUnknownReason+")"
		if g.Lag.Known {
			lag = fmt.Sprintf("%d records (max %d per partition)", g.Lag.N, g.MaxLag.N)
		}
		if g.TimeLag.Known {
			timeLag = fmt.Sprintf("%.0fs", g.TimeLag.D.Seconds())
		}
		desc := fmt.Sprintf("group %s: %s; lag %s, time lag %s, SLA %.0fs", g.Group, g.Status, lag, timeLag, g.SLA.D.Seconds())
		if g.Forecast.Crosses {
			desc += fmt.Sprintf("; forecast: SLA crossed in %.0fs", g.Forecast.CrossIn.Seconds())
		}
		if g.Lost > 0 {
			desc += fmt.Sprintf("; %d records lost", g.Lost)
		}
		if g.Advice.Known {
			desc += fmt.Sprintf("; advice: %d consumers (scale x%.2f)", g.Advice.ConsumersNeeded, g.Advice.ScaleFactor)
		}
		a := Alert{
			Labels: map[string]string{"alertname": alertNames[g.Status], "group": g.Group, "status": g.Status.String(),
				"severity": severity(g.Status), "service": "hourglass"},
			Annotations: map[string]string{"summary": fmt.Sprintf("consumer group %s is %s", g.Group, g.Status), "description": desc},
		}
		if g.Metric != "" {
			a.Labels["metric"] = g.Metric
		}
		if gen != "" {
			a.GeneratorURL = gen + "/status"
		}
		out = append(out, a)
	}
	for _, f := range snap.Freshness {
		if !on(f.Status) {
			continue
		}
		var late []string
		for _, t := range f.Tenants {
			if t.Status == status.Breach {
				late = append(late, t.Tenant)
			}
		}
		a := Alert{
			Labels: map[string]string{"alertname": "HourglassMetricFreshnessBreach", "metric": f.Metric, "status": f.Status.String(),
				"severity": severity(f.Status), "service": "hourglass"},
			Annotations: map[string]string{"summary": fmt.Sprintf("metric %s is %s", f.Metric, f.Status),
				"description": fmt.Sprintf("metric %s: an hour is missing past its deadline (SLA %.0fs) for tenants %s", f.Metric, f.SLA.D.Seconds(), strings.Join(late, ", "))},
		}
		if f.Status == status.AtRisk && f.InputBehindTenants > 0 { // input.go: windows stopped while the input moves
			a.Annotations["description"] = inputAlertDescription(f)
		}
		if gen != "" {
			a.GeneratorURL = gen + "/status"
		}
		out = append(out, a)
	}
	return out
}

// stillHolds reports whether the group alert with labels is still one of
// its group's conditions (and still alerted on).
func stillHolds(cfg Config, snap *Snapshot, labels map[string]string) bool {
	group, ok := labels["group"]
	if !ok {
		return false
	}
	var st status.Status
	if err := st.UnmarshalText([]byte(labels["status"])); err != nil || !slices.Contains(cfg.AlertOn, st) {
		return false
	}
	for _, g := range snap.Groups {
		if g.Group == group {
			return slices.Contains(g.Conditions, st)
		}
	}
	return false
}

// update sends what changed since the previous snapshot.
func (n *notifier) update(ctx context.Context, cfg Config, snap *Snapshot) {
	now := snap.At
	want := map[string]Alert{}
	for _, a := range desired(cfg, snap) {
		want[fingerprint(a.Labels)] = a
	}
	// An alert resolves only when its condition is gone, not when a worse
	// one takes over the group's status (DATA_LOSS over STOP: the consumer
	// is still stopped).
	for fp, act := range n.active {
		if _, ok := want[fp]; !ok && stillHolds(cfg, snap, act.alert.Labels) {
			want[fp] = act.alert
		}
	}
	// Resolutions.
	for fp, act := range n.active {
		if _, ok := want[fp]; ok {
			continue
		}
		a := act.alert
		a.EndsAt = now
		pr := pendingResolve{alert: a, am: len(cfg.AlertmanagerURLs) > 0, hooks: map[string]bool{}}
		for _, h := range cfg.WebhookURLs {
			if act.sentHook[h] {
				pr.hooks[h] = true
			}
		}
		n.pending = append(n.pending, pr)
		delete(n.active, fp)
	}
	// Starts and refreshes.
	ttl := max(4*cfg.AlertResend, 4*cfg.PollInterval)
	var amBatch []Alert
	var amActs []*activeAlert
	for fp, a := range want {
		act, ok := n.active[fp]
		if !ok {
			a.StartsAt = now
			act = &activeAlert{alert: a, sentHook: map[string]bool{}}
			n.active[fp] = act
			n.log.Info("alert firing", "alert", a.Labels["alertname"], "labels", a.Labels)
		} else {
			start := act.alert.StartsAt
			act.alert = a
			act.alert.StartsAt = start
		}
		if len(cfg.AlertmanagerURLs) > 0 && (act.sentAM.IsZero() || now.Sub(act.sentAM) >= cfg.AlertResend) {
			x := act.alert
			x.EndsAt = now.Add(ttl)
			amBatch = append(amBatch, x)
			amActs = append(amActs, act)
		}
	}
	// Alertmanager: firing refreshes and resolutions in one post per instance.
	var amResolved []int
	for i, pr := range n.pending {
		if pr.am {
			amBatch = append(amBatch, pr.alert)
			amResolved = append(amResolved, i)
		}
	}
	if len(amBatch) > 0 {
		if n.postAll(ctx, "alertmanager", cfg.AlertmanagerURLs, "/api/v2/alerts", amBatch) {
			for _, act := range amActs {
				act.sentAM = now
			}
			for _, i := range amResolved {
				n.pending[i].am = false
			}
		}
	}
	// Webhooks: starts once, resolutions once.
	for _, h := range cfg.WebhookURLs {
		var firing []WebhookAlert
		var acts []*activeAlert
		for _, act := range n.active {
			if !act.sentHook[h] {
				firing = append(firing, WebhookAlert{Status: "firing", Alert: act.alert})
				acts = append(acts, act)
			}
		}
		if len(firing) > 0 && n.postAll(ctx, "webhook", []string{h}, "", WebhookMessage{Version: "1", Source: "hourglass-lagmon", Status: "firing", Alerts: firing}) {
			for _, act := range acts {
				act.sentHook[h] = true
			}
		}
		var resolved []WebhookAlert
		var idx []int
		for i, pr := range n.pending {
			if pr.hooks[h] {
				resolved = append(resolved, WebhookAlert{Status: "resolved", Alert: pr.alert})
				idx = append(idx, i)
			}
		}
		if len(resolved) > 0 && n.postAll(ctx, "webhook", []string{h}, "", WebhookMessage{Version: "1", Source: "hourglass-lagmon", Status: "resolved", Alerts: resolved}) {
			for _, i := range idx {
				delete(n.pending[i].hooks, h)
			}
		}
	}
	n.pending = slices.DeleteFunc(n.pending, func(pr pendingResolve) bool {
		if !pr.am && len(pr.hooks) == 0 {
			n.log.Info("alert resolved", "alert", pr.alert.Labels["alertname"], "labels", pr.alert.Labels)
			return true
		}
		return false
	})
}

// postAll posts body as JSON to every base URL + path; true when all accepted it.
func (n *notifier) postAll(ctx context.Context, kind string, urls []string, path string, body any) bool {
	data, err := json.Marshal(body)
	if err != nil {
		n.log.Error("encode alert", "error", err)
		return false
	}
	ok := true
	for _, u := range urls {
		target := strings.TrimSuffix(u, "/") + path
		if err := n.post(ctx, target, data); err != nil {
			ok = false
			n.metrics.alerts.WithLabelValues(kind, "error").Inc()
			n.log.Warn("alert notification failed; retrying at the next poll", "receiver", kind, "url", target, "error", err)
			continue
		}
		n.metrics.alerts.WithLabelValues(kind, "ok").Inc()
	}
	return ok
}

func (n *notifier) post(ctx context.Context, url string, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := n.http.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("post: %s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
