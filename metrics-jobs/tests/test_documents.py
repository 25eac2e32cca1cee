"""The documents the driver writes, built from the Go-rendered SQL (issue 15), are the
documents the driver wrote when it assembled them itself: same _index, same _id, same
_source bytes (computed_at aside, a clock reading). The former assembly is kept below,
verbatim but for `self`, as the reference, the way internal/record keeps a slow decoder
in its tests.

- Metric documents: the spec's row_sql and document_sql are, character for character,
  the SQL the driver used to write, for every golden spec; and the same in Spark.
- Late and out-of-range documents (formerly Python dicts, serialized by es.encode_bulk):
  the same bytes from Spark's to_json, for groups with nulls, quotes and backslashes,
  windows ending exactly at the watermark, and two window sizes. One known difference,
  tested at the end: a non-ASCII group value is written as UTF-8 rather than as a
  \\u escape (the same JSON value)."""

import glob
import hashlib
import json
import os
import re
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

pytest.importorskip("pyspark")

from pyspark.sql import functions as F  # noqa: E402

from hourglass_jobs import es  # noqa: E402
from hourglass_jobs.stream import (  # noqa: E402
    MetricJob, aggregate, head_rows, late_pass, parse_records, with_late_columns, write_dropped)

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "internal", "catalog", "testdata", "golden")


def golden(name):
    with open(os.path.join(GOLDEN, f"spark-{name}.json"), encoding="utf-8") as f:
        return json.load(f)


GOLDEN_SPECS = sorted(os.path.basename(p)[len("spark-"):-len(".json")] for p in glob.glob(os.path.join(GOLDEN, "spark-*.json")))


# ---- the reference: the driver's own assembly before issue 15 ----

OUT_OF_RANGE_COL = "_out_of_range"
ACCEPTED_SQL = "NOT `_out_of_range`"
REASON_LATE = "late"
REASON_OUT_OF_RANGE = "out_of_range"
TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss'Z'"
TS_MILLIS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"


def quote(ident):
    return "`" + ident.replace("`", "``") + "`"


def sql_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def legacy_output_select(spec, window):
    inner = ["window", *[quote(g) for g in spec["group_by"]], "samples", *spec["outputs"],
             f"{sql_string(window['name'])} AS window_size"]
    fields = [f"'metric', {sql_string(spec['metric'])}"]
    fields += [f"{sql_string(g)}, {quote(g)}" for g in spec["group_by"]]
    fields.append(
        "'window', named_struct("
        f"'start', date_format(window.start, \"{TS_FORMAT}\"), "
        f"'end', date_format(window.end, \"{TS_FORMAT}\"), "
        "'size', window_size)"
    )
    fields.append("'samples', samples")
    fields += [f"{sql_string(f)}, {quote(f)}" for f in spec["output_fields"]]
    fields.append(f"'computed_at', date_format(current_timestamp(), \"{TS_MILLIS_FORMAT}\")")
    outer = [
        f"{spec['id_sql']} AS _id",
        f"{spec['index_sql']} AS _index",
        "to_json(named_struct(" + ", ".join(fields) + "), map('ignoreNullFields', 'false')) AS _source",
    ]
    return inner, outer


def legacy_aggregate(df, spec, window):
    agg = df.groupBy(F.window("event_time", window["interval"]).alias("window"),
                     *[F.col(g) for g in spec["group_by"]]).agg(*[F.expr(a) for a in spec["aggregations"]])
    inner, outer = legacy_output_select(spec, window)
    return agg.selectExpr(*inner).selectExpr(*outer)


def window_end_micros_sql(seconds, ts_col="event_time"):
    us = int(seconds) * 1_000_000
    return f"((unix_micros({ts_col}) - pmod(unix_micros({ts_col}), {us})) + {us})"


def legacy_out_of_range_items(spec, bdf, batch_id, epoch):
    """MetricJob.write_out_of_range: (items, total) instead of a bulk write."""
    metric = spec["metric"]
    group_by = spec["group_by"]
    kts = spec["kafka_timestamp_column"]
    rows = (bdf.where(F.col(OUT_OF_RANGE_COL)).groupBy(*group_by)
            .agg(F.count(F.lit(1)).alias("n"),
                 F.date_format(F.min("event_time"), TS_MILLIS_FORMAT).alias("min_et"),
                 F.date_format(F.max("event_time"), TS_MILLIS_FORMAT).alias("max_et"),
                 F.date_format(F.max(kts), TS_MILLIS_FORMAT).alias("max_kts"))
            .collect())
    if not rows:
        return [], 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    items, total = [], 0
    for r in rows:
        groups = [r[g] if r[g] is not None else "" for g in group_by]
        key = "|".join([metric, REASON_OUT_OF_RANGE, *map(str, groups), epoch, str(batch_id)])
        doc = {"metric": metric, **{g: r[g] for g in group_by}, "reason": REASON_OUT_OF_RANGE,
               "rejected_records": r["n"], "min_event_time": r["min_et"], "max_event_time": r["max_et"],
               "max_kafka_timestamp": r["max_kts"], "max_future_seconds": int(spec["max_future_seconds"]),
               "batch_id": batch_id, "computed_at": now}
        items.append((spec["late_index"], hashlib.sha256(key.encode()).hexdigest(), doc))
        total += r["n"]
    return items, total


def legacy_late_items(spec, bdf, batch_id, wm_ms, epoch):
    """MetricJob.write_late (bdf: the accepted rows): (items, total) instead of a bulk write."""
    metric = spec["metric"]
    group_by = spec["group_by"]
    parts = []
    for w in spec["windows"]:
        end = window_end_micros_sql(w["seconds"])
        parts.append(bdf.selectExpr(f"{sql_string(w['name'])} AS size",
                                    f"{int(w['seconds']) * 1_000_000} AS size_us",
                                    f"{end} AS end_us", *[quote(g) for g in group_by]))
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
        key = "|".join([metric, r["size"], start, *map(str, groups), epoch, str(batch_id)])
        doc = {"metric": metric, **{g: r[g] for g in group_by},
               "window": {"start": start, "end": end, "size": r["size"]},
               "reason": REASON_LATE, "late_records": r["count"], "watermark": wm, "batch_id": batch_id, "computed_at": now}
        items.append((spec["late_index"], hashlib.sha256(key.encode()).hexdigest(), doc))
        total += r["count"]
    return items, total


# ---- helpers ----

@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master("local[1]").appName("hourglass-jobs-pytest-documents")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
         .config("spark.sql.session.timeZone", "UTC").config("spark.sql.ansi.enabled", "true")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


COMPUTED_AT = re.compile(rb'"computed_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z)"')


def wire(items):
    """{_id: (the bulk action line, the source line with computed_at masked, its format)}."""
    out = {}
    for item in items:
        action, source, _ = es.encode_bulk([item]).split(b"\n")
        m = COMPUTED_AT.search(source)
        assert m, source
        fmt = b"millis" if b"." in m.group(1) else b"seconds"
        out[item[1]] = (action, COMPUTED_AT.sub(b'"computed_at":"*"', source), fmt)
    return out


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def kafka_raw(spark, rows, compact=True):
    """Kafka rows (value, timestamp) from (kafka time, record) pairs; compact: the
    router's form ({"timestamp":"..." first, no spaces), else json.dumps' spaced one."""
    sep = (",", ":") if compact else (", ", ": ")
    raw = spark.createDataFrame([(json.dumps(r, separators=sep), iso(k)) for k, r in rows], "value STRING, timestamp STRING")
    return raw.selectExpr("value", "CAST(timestamp AS TIMESTAMP) AS timestamp")


def kafka_df(spark, spec, rows):
    """Parsed rows (as the driver's source gives them) from (kafka time, record) pairs."""
    return parse_records(kafka_raw(spark, rows, compact=False), spec)


def late_df(spark, spec, rows, compact=True):
    """The late query's rows (head_rows) from (kafka time, record) pairs."""
    return head_rows(kafka_raw(spark, rows, compact), spec)


K = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)  # Kafka time of every record


def records(spec, hosts):
    """Records of tenants a, b (and a null tenant) at window edges, some far in the future."""
    base = K - timedelta(hours=3)
    out = []
    for i, offset in enumerate([0, 1, 59.999, 60, 61, 3599.5, 3600, 3601, 7199, 7200, 7260.25]):
        for tenant in ("a", "b"):
            host = hosts[i % len(hosts)]
            rec = {"timestamp": iso(base + timedelta(seconds=offset)), "tenant": tenant}
            if "host" in spec["group_by"]:
                rec["host"] = host
            rec.update({"duration_ms": 10.5 * (i + 1), "rtt_ms": 1.25 * i, "status": 200 + i, "bytes_in": i,
                        "bytes_out": 1000 * i, "client_ip": f"10.0.0.{i}", "path": "/api/x", "method": "GET"})
            out.append((K, rec))
    for i, tenant in enumerate(["a", "a", "b", None]):  # out of range: far after the Kafka time
        rec = {"timestamp": iso(K + timedelta(days=30, seconds=i)), "tenant": tenant}
        if "host" in spec["group_by"]:
            rec["host"] = hosts[i % len(hosts)]
        out.append((K + timedelta(milliseconds=i), rec))
    return out


# ---- metric documents ----

@pytest.mark.parametrize("name", GOLDEN_SPECS)
def test_metric_document_sql_is_the_former_driver_sql(name):
    spec = golden(name)
    for w in spec["windows"]:
        inner, outer = legacy_output_select(spec, w)
        # The size is a column of the one aggregation now, not a literal per query.
        assert spec["row_sql"] == inner[:-1] + ["window_size"]
        assert spec["document_sql"] == outer


@pytest.mark.parametrize("name", ["slow_api", "latency", "unique_clients"])
def test_metric_documents_are_the_former_documents(spark, name):
    spec = golden(name)
    df = kafka_df(spark, spec, records(spec, ["h1", None, 'h"2\\x|'])).where(spec["accepted_sql"])
    every = aggregate(df, spec).collect()  # every size from one aggregation
    assert {r["window_size"] for r in every} == {w["name"] for w in spec["windows"]}
    for w in spec["windows"]:
        new = [(r["_index"], r["_id"], r["_source"]) for r in every if r["window_size"] == w["name"]]
        old = [(r["_index"], r["_id"], r["_source"]) for r in legacy_aggregate(df, spec, w).collect()]
        assert len(new) > 2
        assert wire(new) == wire(old)  # the documents of Spark's window(), one query per size
        for _, _, src in new:
            assert list(json.loads(src)) == spec["document_fields"]


# ---- late and out-of-range documents ----

class FakeBulk:
    def __init__(self):
        self.items = []

    def bulk(self, items):
        items = list(items)
        self.items.extend(items)
        return len(items)


def dropped_items(df, spec, kind):
    """(items, records counted) the driver's write_dropped writes."""
    sink = FakeBulk()
    n = write_dropped(sink, df, spec, kind)
    return sink.items, n


@pytest.mark.parametrize("name", ["slow_api", "latency"])
def test_late_documents_are_the_former_documents(spark, name):
    spec = golden(name)
    bdf = kafka_df(spark, spec, records(spec, ["h1", None, 'h"2\\x|']))
    bdf = bdf.select("event_time", spec["out_of_range_column"], spec["kafka_timestamp_column"], *spec["group_by"])
    epoch, batch_id = "0123456789abcdef0123456789abcdef", 41
    # The watermark at the end of the second 1m window and of the first 1h window
    # (so a window ending exactly there is late, the next is not).
    base = K - timedelta(hours=3)
    late_docs = 0
    for wm in (base + timedelta(seconds=120), base + timedelta(hours=1), base + timedelta(hours=2, seconds=30)):
        wm_ms = int(wm.timestamp() * 1000)
        with_cols = with_late_columns(bdf, spec, batch_id, epoch, wm_ms)

        old, old_n = legacy_late_items(spec, bdf.where(ACCEPTED_SQL), batch_id, wm_ms, epoch)
        new, new_n = dropped_items(with_cols, spec, "late")
        late_docs += len(old)
        assert wire(new) == wire(old)
        assert new_n == old_n
        for _, _, src in new:
            assert list(json.loads(src)) == spec["late_documents"]["late"]["document_fields"]
    assert late_docs > 3, "the case has late records"

    old, old_n = legacy_out_of_range_items(spec, bdf, batch_id, epoch)
    new, new_n = dropped_items(with_late_columns(bdf, spec, batch_id, epoch, 1), spec, "out_of_range")
    assert len(old) >= 3 and old_n == 4  # a, b and the null tenant (by host for slow_api)
    assert wire(new) == wire(old)
    assert new_n == old_n
    for _, _, src in new:
        assert list(json.loads(src)) == spec["late_documents"]["out_of_range"]["document_fields"]


def test_late_ids_change_with_the_batch_and_the_epoch(spark):
    spec = golden("request_rate")
    bdf = kafka_df(spark, spec, records(spec, ["h1"]))
    ids = []
    for batch_id, epoch in ((1, "e1"), (2, "e1"), (1, "e2"), (1, "e1")):
        items, _ = dropped_items(with_late_columns(bdf, spec, batch_id, epoch, 1), spec, "out_of_range")
        ids.append(sorted(i[1] for i in items))
    assert ids[0] == ids[3], "a replayed batch overwrites its documents"
    assert len({tuple(i) for i in ids}) == 3


def test_non_ascii_group_values_are_the_same_json(spark):
    """The one byte difference: Python's json escaped non-ASCII, Spark's to_json writes
    UTF-8. Same _id, same JSON value."""
    spec = golden("slow_api")
    bdf = kafka_df(spark, spec, records(spec, ["hôte-é", "h1"]))
    bdf = bdf.select("event_time", spec["out_of_range_column"], spec["kafka_timestamp_column"], *spec["group_by"])
    old, _ = legacy_out_of_range_items(spec, bdf, 7, "e")
    new, _ = dropped_items(with_late_columns(bdf, spec, 7, "e", 1), spec, "out_of_range")
    masked = {i: json.loads(s) for i, (_, s, _) in wire(new).items()}
    assert masked == {i: json.loads(s) for i, (_, s, _) in wire(old).items()}
    assert any(b"\\u00f4" in s for _, s, _ in wire(old).values())
    assert any("hôte-é".encode() in s for _, s, _ in wire(new).values())


class MemoryText:
    """The late state file, in memory."""

    def __init__(self):
        self.text = None

    def read(self):
        return self.text

    def write(self, text):
        self.text = text


def test_late_batch_writes_the_former_documents(spark):
    """MetricJob.late_batch end to end over two micro-batches: the first sets the
    watermark (nothing is late yet, the out-of-range rows are counted), the second has
    records behind it."""
    spec = golden("latency")
    job = MetricJob.__new__(MetricJob)  # no Spark session, checkpoint or Kafka needed
    job.spec, job.metric, job.es, job.log = spec, spec["metric"], FakeBulk(), lambda *a: None
    job.lateness_ms = 600_000
    job.late_state = MemoryText()
    cols = ["event_time", spec["out_of_range_column"], spec["kafka_timestamp_column"], *spec["group_by"]]
    first = kafka_df(spark, spec, records(spec, ["h1"])).select(*cols)
    job.late_batch(late_df(spark, spec, records(spec, ["h1"])), 0)
    epoch = json.loads(job.late_state.text)["epoch"]
    old, _ = legacy_out_of_range_items(spec, first, 0, epoch)
    assert wire(job.es.items) == wire(old)

    job.es.items = []
    base = K - timedelta(hours=3)
    recs = [(K, {"timestamp": iso(base + timedelta(seconds=s)), "tenant": t}) for s in (5, 65, 3605) for t in ("a", "b")]
    again = kafka_df(spark, spec, recs).select(*cols)
    job.late_batch(late_df(spark, spec, recs), 1)
    wm_ms = json.loads(job.late_state.text)["history"]["1"][0]
    assert wm_ms == int((base + timedelta(seconds=7260.25)).timestamp() * 1000) - 600_000
    old, n = legacy_late_items(spec, again.where(ACCEPTED_SQL), 1, wm_ms, epoch)
    # per tenant: the three 1m windows (each ends before the watermark, base + 6660.25 s)
    # and the first 1h window (two records); the second 1h window ends after it
    assert len(old) == 8 and n == 10
    assert wire(job.es.items) == wire(old)


def counted(spark, df):
    """df, with an accumulator counting the rows read from it (each time it is
    computed)."""
    acc = spark.sparkContext.accumulator(0)

    def read(row):
        acc.add(1)
        return row

    return spark.createDataFrame(df.rdd.map(read), df.schema), acc


@pytest.mark.parametrize("name", ["slow_api", "latency"])
def test_late_pass_reads_the_batch_once(spark, name):
    """The late query's pass over a micro-batch: the same documents and max event
    time as computing each kind over the whole batch, reading the batch once (a kind's
    documents are computed from the few rows its candidate test kept)."""
    spec = golden(name)
    cols = ["event_time", spec["out_of_range_column"], spec["kafka_timestamp_column"], *spec["group_by"]]
    recs = records(spec, ["h1", None, 'h"2\\x|'])
    bdf = kafka_df(spark, spec, recs).select(*cols)  # parsed: what the documents are computed from
    heads = late_df(spark, spec, recs)  # what the late query reads
    rows = heads.count()
    epoch, batch_id = "e", 7
    base = K - timedelta(hours=3)
    want_max = bdf.where(ACCEPTED_SQL).agg(F.max(F.unix_micros("event_time"))).first()[0]
    late = 0
    for i, wm in enumerate((base + timedelta(seconds=120), base + timedelta(hours=1))):
        wm_ms = int(wm.timestamp() * 1000)
        with_cols = with_late_columns(bdf, spec, batch_id, epoch, wm_ms)
        src, reads = counted(spark, with_late_columns(heads, spec, batch_id, epoch, wm_ms))
        sink = FakeBulk()
        mx, n = late_pass(sink, src, spec, f"t-{name}-{i}")
        assert reads.value == rows, "the batch is read once"
        assert mx == want_max
        want = dropped_items(with_cols, spec, "out_of_range")[0] + dropped_items(with_cols, spec, "late")[0]
        assert len(want) > 3 and wire(sink.items) == wire(want)
        assert n["out_of_range"] == 4
        late += n["late"]
    assert late > 0, "the case has late records"

    # Nothing late or out of range: no documents.
    clean = heads.where(ACCEPTED_SQL)
    sink = FakeBulk()
    mx, n = late_pass(sink, with_late_columns(clean, spec, batch_id, epoch, int(base.timestamp() * 1000)), spec,
                      f"t-{name}-clean")
    assert (mx, n, sink.items) == (want_max, {"out_of_range": 0, "late": 0}, [])

    # Before the first watermark only out-of-range documents are computed.
    sink = FakeBulk()
    _, n = late_pass(sink, with_late_columns(heads, spec, batch_id, epoch, 0), spec, f"t-{name}-first",
                     kinds=("out_of_range",))
    assert n == {"out_of_range": 4, "late": 0}


@pytest.mark.parametrize("name", ["latency"])
def test_late_pass_parses_what_its_head_does_not_tell(spark, name):
    """Values not in the router's form (spaces after the colons, another field first,
    not JSON): the head gives no event time, the late pass parses those rows and counts
    them exactly as the rows it could classify by their head — same documents, same max
    event time as computing each kind over the parsed batch."""
    spec = golden(name)
    cols = ["event_time", spec["out_of_range_column"], spec["kafka_timestamp_column"], *spec["group_by"]]
    recs = records(spec, ["h1"])
    half = len(recs) // 2
    raw = kafka_raw(spark, recs[:half]).union(kafka_raw(spark, recs[half:], compact=False))
    moved = [(K, {"tenant": "c", "timestamp": iso(K - timedelta(hours=3))})]  # timestamp not first
    raw = raw.union(kafka_raw(spark, moved)).union(
        spark.createDataFrame([("not json", iso(K))], "value STRING, timestamp STRING")
        .selectExpr("value", "CAST(timestamp AS TIMESTAMP) AS timestamp"))
    heads = head_rows(raw, spec)
    assert heads.where("event_time IS NULL").count() == len(recs) - half + 2
    parsed = parse_records(raw, spec).select(*cols)
    # The newest accepted record is among the unreadable heads: the max must come from its parse.
    newest = kafka_df(spark, spec, recs[half:]).where(ACCEPTED_SQL).agg(F.max(F.unix_micros("event_time"))).first()[0]
    want_max = parsed.where(ACCEPTED_SQL).agg(F.max(F.unix_micros("event_time"))).first()[0]
    assert newest == want_max
    wm_ms = int((K - timedelta(hours=2)).timestamp() * 1000)
    sink = FakeBulk()
    mx, n = late_pass(sink, with_late_columns(heads, spec, 3, "e", wm_ms), spec, f"t-{name}-mixed")
    with_cols = with_late_columns(parsed, spec, 3, "e", wm_ms)
    want = dropped_items(with_cols, spec, "out_of_range")[0] + dropped_items(with_cols, spec, "late")[0]
    assert mx == want_max
    assert n["late"] > 0 and n["out_of_range"] == 4
    assert wire(sink.items) == wire(want)


def test_head_event_time_is_the_parsed_event_time(spark):
    """The head of a value in the router's form gives the event time parsing it gives,
    for every form of RFC 3339 UTC time Go writes (fraction trimmed, 0-9 digits)."""
    spec = golden("latency")
    times = ["2026-12-04T08:00:00Z", "2026-12-04T08:00:00.1Z", "2026-12-04T08:00:00.123456Z",
             "2026-12-04T08:00:00.123456789Z", "1970-01-01T00:00:00Z", "2026-02-30T00:00:00Z"]
    raw = kafka_raw(spark, [(K, {"timestamp": t, "tenant": "a"}) for t in times])
    got = [r["event_time"] for r in head_rows(raw, spec).collect()]
    want = [r["event_time"] for r in raw.select(F.inline(F.array(F.struct(
        F.from_json(F.col("value"), spec["schema_ddl"]).alias("r"))))).select("r.*")
        .selectExpr(f"{spec['event_time_sql']} AS event_time").collect()]
    assert got == want and got[0] is not None and got[-1] is None
