package archiver

import "github.com/prometheus/client_golang/prometheus"

// metrics of one archiver.
type metrics struct {
	in            prometheus.Counter
	archived      prometheus.Counter
	skipped       *prometheus.CounterVec // by reason
	files         prometheus.Counter
	fileBytes     prometheus.Histogram
	flush         prometheus.Histogram
	retries       prometheus.Counter
	paused        prometheus.Gauge
	buffered      prometheus.Gauge
	openBuckets   prometheus.Gauge
	forcedFlushes *prometheus.CounterVec // by reason
	tempsRemoved  prometheus.Counter
	commits       *prometheus.CounterVec // by result
	partitions    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		in: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_archiver_records_in_total", Help: "Raw records consumed."}),
		archived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_archiver_records_archived_total", Help: "Records made durable in renamed part files."}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_archiver_records_skipped_total",
			Help: "Records not archived, by reason: invalid (the router DLQs them), already_archived (reconciled after a restart)."}, []string{"reason"}),
		files: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_archiver_files_written_total", Help: "Part files written and renamed."}),
		fileBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_archiver_file_size_bytes", Help: "Compressed size of the part files written.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 11)}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hourglass_archiver_flush_seconds", Help: "Time to write, close and rename one part file, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_archiver_archive_retries_total", Help: "Archive operations that failed and were retried."}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_archiver_paused_partitions", Help: "Partitions whose consumption waits for the archive to come back."}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_archiver_buffered_bytes", Help: "Compressed bytes buffered in memory, not yet in a part file."}),
		openBuckets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_archiver_open_buckets", Help: "Part files being filled in memory, one per partition, tenant and event-time hour."}),
		forcedFlushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_archiver_forced_flushes_total",
			Help: "Part files written before they reached their size or age, to keep a partition within its memory bounds, by reason: open_buckets (max-open-buckets), buffered_bytes (max-buffered-bytes)."}, []string{"reason"}),
		tempsRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hourglass_archiver_temp_files_removed_total", Help: "Leftover temporary files deleted while reconciling."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_archiver_commits_total", Help: "Offset commits, by result (ok, error)."}, []string{"result"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hourglass_archiver_assigned_partitions", Help: "Kafka partitions currently assigned to this archiver."}),
	}
	for _, reason := range []string{reasonOpenBuckets, reasonBufferedBytes} {
		m.forcedFlushes.WithLabelValues(reason) // both series exist from the start, at 0
	}
	reg.MustRegister(m.in, m.archived, m.skipped, m.files, m.fileBytes, m.flush, m.retries, m.paused,
		m.buffered, m.openBuckets, m.forcedFlushes, m.tempsRemoved, m.commits, m.partitions)
	return m
}
