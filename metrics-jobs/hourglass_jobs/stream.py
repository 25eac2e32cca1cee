"""The streaming job: for each metric spec, one stateful aggregation query per window
size (1m, 1h) in update mode, plus a stateless companion query that counts the records
arriving later than the watermark. All upsert into Elasticsearch with deterministic
_ids; a listener commits the offsets every query of the metric has processed to the
metric's consumer group and writes the job's progress for `hourglass jobs status`.

Why a query per window size: Spark allows one streaming aggregation per query in
update mode, and update mode is what keeps a 1h window searchable while it is still
open (append mode would publish hour H only after H+1h+lateness, past the SLA)."""

import hashlib
import json
import os
import threading
import time
import uuid

from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from . import spec as specmod
from .late import LateTracker

LATE_INDEX_PREFIX = "hourglass-late-"


def late_index(metric):
    return LATE_INDEX_PREFIX + metric


def parse_records(df, spec):
    """Kafka rows -> the spec's typed columns plus event_time (rows whose value does not
    parse or has no event time are dropped; the router only writes valid records)."""
    parsed = df.select(F.from_json(F.col("value").cast("string"), spec["schema_ddl"]).alias("r")).select("r.*")
    return parsed.withColumn("event_time", F.expr(spec["event_time_sql"])).where("event_time IS NOT NULL")


def aggregate(df, spec, window):
    """Rows of (window, group..., aggregation aliases) -> (_id, _index, _source)."""
    agg = df.groupBy(F.window("event_time", window["interval"]).alias("window"),
                     *[F.col(g) for g in spec["group_by"]]).agg(*[F.expr(a) for a in spec["aggregations"]])
    inner, outer = specmod.output_select(spec, window)
    return agg.selectExpr(*inner).selectExpr(*outer)


def write_docs(es, df):
    """Collects (_id, _index, _source) rows to the driver and bulk-writes them."""
    items = ((r["_index"], r["_id"], r["_source"]) for r in df.toLocalIterator())
    return es.bulk(items)


class HadoopText:
    """Small text files beside the checkpoint (local or hdfs://) through Hadoop's FS."""

    def __init__(self, spark, path):
        jvm = spark._jvm
        self.jvm = jvm
        self.path = jvm.org.apache.hadoop.fs.Path(path)
        self.tmp = jvm.org.apache.hadoop.fs.Path(path + ".tmp")
        self.fs = self.path.getFileSystem(spark._jsc.hadoopConfiguration())

    def read(self):
        for p in (self.path, self.tmp):
            if self.fs.exists(p):
                stream = self.fs.open(p)
                try:
                    return self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
                finally:
                    stream.close()
        return None

    def write(self, text):
        out = self.fs.create(self.tmp, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        if self.fs.exists(self.path):
            self.fs.delete(self.path, False)
        self.fs.rename(self.tmp, self.path)


class MetricJob:
    def __init__(self, spark, spec, cfg, es, admin, log):
        self.spark, self.spec, self.cfg, self.es, self.admin, self.log = spark, spec, cfg, es, admin, log
        self.metric = spec["metric"]
        self.queries = []
        self.names = [self.query_name(w["name"]) for w in spec["windows"]] + [self.query_name("late")]
        self.lateness_ms = specmod.watermark_seconds(spec) * 1000
        self.late_state = HadoopText(spark, self.checkpoint("late") + "-state.json")

    def query_name(self, part):
        return f"hourglass-{self.metric}-{part}"

    def checkpoint(self, part):
        return f"{self.cfg.checkpoint_root.rstrip('/')}/{self.metric}/{part}"

    def source(self):
        topic = self.spec["topic"]
        partitions = self.admin.partitions(topic)
        committed = self.admin.committed(self.spec["consumer_group"], topic)
        starting = specmod.starting_offsets(topic, partitions, committed)
        self.log(f"{self.metric}: startingOffsets {starting} (used only by a query without a checkpoint)")
        reader = (self.spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", self.cfg.brokers)
                  .option("subscribe", topic)
                  .option("startingOffsets", starting)
                  .option("failOnDataLoss", "true"))
        if self.cfg.max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", str(self.cfg.max_offsets_per_trigger))
        return parse_records(reader.load(), self.spec)

    def start(self):
        for w in self.spec["windows"]:
            df = self.source().withWatermark("event_time", self.spec["watermark"])
            out = aggregate(df, self.spec, w)
            q = (out.writeStream.outputMode("update")
                 .foreachBatch(lambda bdf, bid: write_docs(self.es, bdf))
                 .option("checkpointLocation", self.checkpoint(w["name"]))
                 .queryName(self.query_name(w["name"]))
                 .trigger(processingTime=self.cfg.trigger)
                 .start())
            self.queries.append(q)
        cols = ["event_time", *self.spec["group_by"]]
        late = (self.source().select(*cols).writeStream
                .foreachBatch(self.late_batch)
                .option("checkpointLocation", self.checkpoint("late"))
                .queryName(self.query_name("late"))
                .trigger(processingTime=self.cfg.trigger)
                .start())
        self.queries.append(late)

    def late_batch(self, bdf, batch_id):
        text = self.late_state.read()
        tracker = LateTracker.loads(text, self.lateness_ms)
        epoch = json.loads(text).get("epoch") if text else None
        epoch = epoch or uuid.uuid4().hex
        wm_ms = tracker.watermark_for(batch_id)
        bdf = bdf.persist()
        try:
            mx = bdf.agg(F.max(F.unix_micros("event_time")).alias("mx")).first()["mx"]
            n_late = 0
            if mx is not None and wm_ms > 0:
                n_late = self.write_late(bdf, batch_id, wm_ms, epoch)
        finally:
            bdf.unpersist()
        tracker.record(batch_id, mx // 1000 if mx is not None else None)
        state = json.loads(tracker.dumps())
        state["epoch"] = epoch
        self.late_state.write(json.dumps(state))
        if n_late:
            self.log(f"{self.metric}: batch {batch_id}: {n_late} late records (watermark {wm_ms} ms)")

    def write_late(self, bdf, batch_id, wm_ms, epoch):
        group_by = self.spec["group_by"]
        parts = []
        for w in self.spec["windows"]:
            end = specmod.window_end_micros_sql(w["seconds"])
            parts.append(bdf.selectExpr(f"{specmod.sql_string(w['name'])} AS size",
                                        f"{int(w['seconds']) * 1_000_000} AS size_us",
                                        f"{end} AS end_us", *[specmod.quote(g) for g in group_by]))
        df = parts[0]
        for p in parts[1:]:
            df = df.unionByName(p)
        rows = (df.where(F.col("end_us") <= F.lit(wm_ms * 1000))
                .groupBy("size", "size_us", "end_us", *group_by).count().collect())
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        wm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wm_ms / 1000))
        items, total = [], 0
        for r in rows:
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((r["end_us"] - r["size_us"]) // 1_000_000))
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["end_us"] // 1_000_000))
            groups = [r[g] if r[g] is not None else "" for g in group_by]
            key = "|".join([self.metric, r["size"], start, *map(str, groups), epoch, str(batch_id)])
            doc = {"metric": self.metric, **{g: r[g] for g in group_by},
                   "window": {"start": start, "end": end, "size": r["size"]},
                   "late_records": r["count"], "watermark": wm, "batch_id": batch_id, "computed_at": now}
            items.append((late_index(self.metric), hashlib.sha256(key.encode()).hexdigest(), doc))
            total += r["count"]
        self.es.bulk(items)
        return total


class ProgressListener(StreamingQueryListener):
    """Commits processed offsets to each metric's consumer group and writes progress."""

    def __init__(self, jobs, admin, status, log):
        self.jobs = {name: job for job in jobs for name in job.names}
        self.admin, self.status, self.log = admin, status, log
        self.ends = {}          # query name -> {partition: end offset}
        self.committed = {}     # metric -> offsets last committed
        self.lock = threading.Lock()

    def onQueryStarted(self, event):
        if event.name in self.jobs:
            self.status.started(event.name, event.timestamp)

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        if event.exception:
            self.log(f"query {event.id} terminated: {event.exception}")

    def onQueryProgress(self, event):
        try:
            self._progress(json.loads(event.progress.json))
        except Exception as e:  # a listener must not kill the callback thread
            self.log(f"progress handling failed: {e!r}")

    def _progress(self, p):
        name = p.get("name")
        job = self.jobs.get(name)
        if job is None:
            return
        topic = job.spec["topic"]
        latest, behind, src_metrics = None, None, None
        with self.lock:
            for src in p.get("sources", []):
                ends = specmod.end_offsets_of_progress(src.get("endOffset"), topic)
                if ends:
                    self.ends[name] = ends
                    latest, behind = specmod.source_lag_of_progress(src, topic)
                    src_metrics = src.get("metrics")
            offsets = specmod.min_offsets([self.ends.get(n, {}) for n in job.names])
            commit = offsets and offsets != self.committed.get(job.metric)
        if commit:
            self.admin.commit(job.spec["consumer_group"], topic, offsets)
            with self.lock:
                self.committed[job.metric] = offsets
        ops = p.get("stateOperators") or [{}]
        self.status.update(name, {
            "metric": job.metric, "batch_id": p.get("batchId"), "timestamp": p.get("timestamp"),
            "input_rows": p.get("numInputRows"), "input_rows_per_second": p.get("inputRowsPerSecond"),
            "processed_rows_per_second": p.get("processedRowsPerSecond"),
            "watermark": (p.get("eventTime") or {}).get("watermark"),
            "max_event_time": (p.get("eventTime") or {}).get("max"),
            "rows_dropped_by_watermark": ops[0].get("numRowsDroppedByWatermark"),
            "end_offsets": self.ends.get(name), "committed": self.committed.get(job.metric),
            # Spark's own view of the backlog when it planned this batch: the
            # latest offsets it saw and offsetsBehindLatest (latest − end, summed).
            "latest_offsets": latest, "offsets_behind_latest": behind, "source_metrics": src_metrics,
            "duration_ms": p.get("durationMs"),
        })


class StatusFile:
    """status.json in the job's status dir: what `hourglass jobs status` shows."""

    def __init__(self, directory, base):
        self.path = os.path.join(directory, "progress.json") if directory else None
        self.data = dict(base, queries={})
        self.lock = threading.Lock()
        self._flush()

    def started(self, query, timestamp):
        """Records when Spark started a query (QueryStartedEvent.timestamp)."""
        with self.lock:
            self.data.setdefault("started", {})[query] = timestamp
            self._flush()

    def update(self, query, progress):
        with self.lock:
            self.data["queries"][query] = progress
            self.data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self._flush()

    def _flush(self):
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
