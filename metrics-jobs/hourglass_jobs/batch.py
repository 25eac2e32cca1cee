"""Batch mode: the metric's aggregation for one closed event-time hour, reading that
hour from Kafka, writing the same documents (same _ids) as the streaming job, and
recording the run in the spec's job_runs index (hourglass-jobruns: metric, hour,
start, duration_seconds, records, outcome; internal/catalog/jobruns.go owns the
document) for the lag monitor.

Which Kafka records: those whose Kafka timestamp is in [from, to) — by default
[hour - lateness - skew, hour + 1h + lateness), found with offsets-for-times — and
whose event time is in the hour. A record reaching Kafka after `to` would have been
beyond the streaming job's watermark too (the skew allows for clocks and pipeline
delay before Kafka). The hour must be closed: `to` in the past."""

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

from . import spec as specmod
from .stream import aggregate, baseliners, parse_records, write_docs


def record_run(es, spec, rid, doc):
    """Writes the run's document into the spec's job_runs index; a field the
    spec does not name is a driver/spec mismatch, never written."""
    runs = spec["job_runs"]
    unknown = sorted(set(doc) - set(runs["fields"]))
    if unknown:
        raise specmod.SpecError(f"job run document: fields {unknown} are not in the spec's job_runs.fields")
    es.index(runs["index"], rid, doc)


def parse_time(text):
    """RFC 3339 (Z or offset) -> aware UTC datetime."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"time {text!r} has no offset")
    return t.astimezone(timezone.utc)


def rfc3339(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kafka_range(hour, lateness_s, skew_s, from_time=None, to_time=None):
    """Default Kafka-timestamp range of an hour's records (see the module doc)."""
    start = from_time or hour - timedelta(seconds=lateness_s + skew_s)
    end = to_time or hour + timedelta(hours=1, seconds=lateness_s)
    return start, end


def resolve_offsets(start_at, end_at, latest):
    """Per partition [start, end) offsets from offsets-for-times answers (-1: no
    record at/after the time -> the partition's end)."""
    rng = {}
    for p, end in latest.items():
        s = start_at.get(p, -1)
        e = end_at.get(p, -1)
        s = end if s < 0 else s
        e = end if e < 0 else e
        rng[p] = (s, max(s, e))
    return rng


def run_id(metric, hour, started):
    return hashlib.sha256(f"{metric}|{rfc3339(hour)}|{started}".encode()).hexdigest()


def run(spark, spec, cfg, es, admin, log):
    hour = parse_time(cfg.hour)
    if hour.minute or hour.second or hour.microsecond:
        raise ValueError(f"--hour {cfg.hour}: not the start of an hour")
    lateness = specmod.watermark_seconds(spec)
    k_from, k_to = kafka_range(hour, lateness, cfg.skew_seconds,
                               parse_time(cfg.kafka_from) if cfg.kafka_from else None,
                               parse_time(cfg.kafka_to) if cfg.kafka_to else None)
    started = time.time()
    rid = run_id(spec["metric"], hour, started)
    doc = {"metric": spec["metric"], "hour": rfc3339(hour), "mode": "batch", "source": "kafka",
           "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "kafka_from": rfc3339(k_from), "kafka_to": rfc3339(k_to), "outcome": "running"}
    record_run(es, spec, rid, doc)

    def finish(outcome, **fields):
        doc.update(fields, outcome=outcome, duration_seconds=round(time.time() - started, 3),
                   end=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        record_run(es, spec, rid, doc)
        log(f"batch {spec['metric']} {rfc3339(hour)}: {outcome} {json.dumps(fields)}")
        return doc

    try:
        if k_to > datetime.now(timezone.utc) and not cfg.allow_open:
            return finish("not_closed", error=f"the hour is open until {rfc3339(k_to)} (Kafka time)")
        topic = spec["topic"]
        latest = admin.end_offsets(topic)
        rng = resolve_offsets(admin.offsets_for_time(topic, k_from.timestamp() * 1000),
                              admin.offsets_for_time(topic, k_to.timestamp() * 1000), latest)
        starting = {topic: {str(p): s for p, (s, e) in rng.items()}}
        ending = {topic: {str(p): e for p, (s, e) in rng.items()}}
        raw = (spark.read.format("kafka")
               .option("kafka.bootstrap.servers", cfg.brokers)
               .option("subscribe", topic)
               .option("startingOffsets", json.dumps(starting))
               .option("endingOffsets", json.dumps(ending))
               .load())
        hour_end = hour + timedelta(hours=1)
        df = (parse_records(raw, spec)
              .where(spec["accepted_sql"])  # as streaming: out-of-range rows are not aggregated
              .where(f"event_time >= TIMESTAMP'{rfc3339(hour)}' AND event_time < TIMESTAMP'{rfc3339(hour_end)}'")
              .persist())
        try:
            records = df.count()
            docs = write_docs(es, aggregate(df, spec), baseliners(es, spec, log))
        finally:
            df.unpersist()
        return finish("ok", records=records, documents=docs,
                      offsets={str(p): list(v) for p, v in rng.items()})
    except Exception as e:
        finish("failed", error=repr(e)[:2000])
        raise
