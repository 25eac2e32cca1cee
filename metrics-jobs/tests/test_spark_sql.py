"""The Go-rendered SQL in a real local Spark (no Kafka: a JSON file source stands in
for the Kafka rows, with their value and timestamp columns). About half a minute:
one JVM for the module.

- A far-future row of tenant A (issue 12, finding 4) is flagged out of range and kept
  away from the watermark: tenant B's later windows are still produced. The same
  stream with the check disabled loses them, which shows the test can fail.
- The one aggregation of every window size closes each window at its own end.
- approx_distinct never exceeds the number of values; integer sums do not overflow
  under ANSI mode."""

import json
import os
import sys
from datetime import datetime, timedelta, timezone

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

pytest.importorskip("pyspark")

from hourglass_jobs import spec as specmod  # noqa: E402
from hourglass_jobs.stream import aggregate, parse_records  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "internal", "catalog", "testdata", "golden")


def golden(name):
    with open(os.path.join(GOLDEN, f"spark-{name}.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    s = (SparkSession.builder.master("local[1]").appName("hourglass-jobs-pytest")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
         .config("spark.sql.session.timeZone", "UTC").config("spark.sql.ansi.enabled", "true")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def kafka_row(tenant, event_time, kafka_time):
    return {"value": json.dumps({"timestamp": event_time, "tenant": tenant}), "timestamp": iso(kafka_time)}


def write_file(d, name, rows):
    with open(os.path.join(d, name + ".tmp"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name + ".json"))


def stream(spark, tmp_path, spec, batches):
    """Runs the metric's aggregation query (every window size) over micro-batches of
    Kafka-like rows, one file each. Returns the documents written, by (window size,
    tenant, window start), and the last query progress."""
    src = tmp_path / "src"
    src.mkdir()
    docs = {}

    def collect(bdf, _bid):
        for r in bdf.collect():
            d = json.loads(r["_source"])
            docs[(r["window_size"], d["tenant"], d["window"]["start"])] = d

    df = (parse_records(spark.readStream.schema("value STRING, timestamp TIMESTAMP").json(str(src)), spec)
          .where(spec["accepted_sql"]).withWatermark("event_time", spec["watermark"]))
    q = (aggregate(df, spec, watermarked=True).writeStream.outputMode("update").foreachBatch(collect)
         .option("checkpointLocation", str(tmp_path / "ck")).trigger(processingTime="500 milliseconds").start())
    try:
        for i, rows in enumerate(batches):
            write_file(src, str(i), rows)
            q.processAllAvailable()
        progress = q.lastProgress
    finally:
        q.stop()
    return docs, progress


def run_stream(spark, tmp_path, spec):
    """Two micro-batches: (A far future, B at t), then (B at t+2m). Returns the 1m
    documents written, by (tenant, window start)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    t = now.replace(second=0) - timedelta(minutes=5)
    docs, _ = stream(spark, tmp_path, spec, [[kafka_row("A", "2099-01-01T00:00:00Z", now), kafka_row("B", iso(t), now)],
                                             [kafka_row("B", iso(t + timedelta(minutes=2)), now)]])
    return {k[1:]: d for k, d in docs.items() if k[0] == "1m"}, t


def start(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_far_future_row_does_not_poison_other_tenants(spark, tmp_path):
    spec = golden("request_rate")
    docs, t = run_stream(spark, tmp_path, spec)
    assert docs[("B", start(t))]["requests"] == 1
    assert docs[("B", start(t + timedelta(minutes=2)))]["requests"] == 1, docs
    assert not [k for k in docs if k[0] == "A"], docs  # the 2099 window is never written


def test_without_the_bound_the_far_future_row_poisons_the_watermark(spark, tmp_path):
    spec = dict(golden("request_rate"), out_of_range_sql="false")
    docs, t = run_stream(spark, tmp_path, spec)
    assert ("A", "2099-01-01T00:00:00Z") in docs
    assert ("B", start(t + timedelta(minutes=2))) not in docs  # dropped as late: the failure being fixed


def test_each_window_size_closes_at_its_own_end(spark, tmp_path):
    """One aggregation serves 1m and 1h, yet a record behind the watermark is dropped
    from its 1m window only (which closed) and still counted in its open 1h window,
    and the closed 1m window's state is evicted — as with one query per size. Without
    the watermark's metadata on the window column the 1m window would take it (and
    keep every window's state for ever)."""
    spec = golden("request_rate")
    lateness = specmod.watermark_seconds(spec)
    t = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    ahead = t + timedelta(seconds=lateness + 300)  # the watermark becomes t + 5 min, inside the hour
    k = ahead  # Kafka time: no row is out of range
    docs, progress = stream(spark, tmp_path, spec, [
        [kafka_row("B", iso(t), k), kafka_row("B", iso(ahead), k)],
        [kafka_row("B", iso(t + timedelta(seconds=30)), k)],  # its 1m window ended at t + 1 min: late for it
    ])
    assert progress["eventTime"]["watermark"] == iso(t + timedelta(minutes=5))
    assert docs[("1m", "B", start(t))]["requests"] == 1, "the late record is not in the closed 1m window"
    assert docs[("1h", "B", start(t))]["requests"] == 3, "the open 1h window counts it"
    state = progress["stateOperators"][0]
    assert state["numRowsDroppedByWatermark"] == 1
    # Left in the state: the 1h window and the 1m window of `ahead`; the 1m window of t is gone.
    assert state["numRowsTotal"] == 2, state


def test_out_of_range_flags_only_rows_beyond_max_future(spark):
    spec = golden("request_rate")
    k = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
    bound = spec["max_future_seconds"]
    rows = [kafka_row("at-bound", iso(k + timedelta(seconds=bound)), k),
            kafka_row("past-bound", iso(k + timedelta(seconds=bound, milliseconds=1)), k),
            kafka_row("old", "2020-01-01T00:00:00Z", k),
            kafka_row("far", "9999-12-31T23:59:59Z", k),
            {"value": json.dumps({"timestamp": "not a time", "tenant": "bad"}), "timestamp": iso(k)}]
    df = spark.createDataFrame([(r["value"], r["timestamp"]) for r in rows], "value STRING, timestamp STRING")
    df = df.selectExpr("value", "CAST(timestamp AS TIMESTAMP) AS timestamp")
    got = {r["tenant"]: r[spec["out_of_range_column"]] for r in parse_records(df, spec).collect()}
    assert got == {"at-bound": False, "past-bound": True, "old": False, "far": True}  # "bad": no event time, dropped


def test_each_row_is_parsed_once(spark):
    """The record JSON is parsed by one from_json in the plan of an aggregation query,
    whatever filters follow (a filter pushed below a projection would copy it)."""
    spec = golden("latency")
    df = spark.createDataFrame([], "value STRING, timestamp TIMESTAMP")
    q = aggregate(parse_records(df, spec).where(spec["accepted_sql"]), spec)
    assert str(q._jdf.queryExecution().optimizedPlan()).count("from_json(") == 1


def test_approx_distinct_is_clamped_to_the_number_of_values(spark):
    spec = golden("unique_clients")
    agg = [a for a in spec["aggregations"] if "approx_count_distinct" in a][0]
    raw_expr = agg[len("least("):agg.index("), count(") + 1]
    # groups g = 1..400 with g distinct client IPs each
    df = spark.range(1, 401).selectExpr("id AS g").selectExpr("g", "explode(sequence(1, g)) AS i") \
        .selectExpr("g", "concat('10.0.', CAST(i DIV 256 AS STRING), '.', CAST(i % 256 AS STRING)) AS client_ip")
    rows = df.groupBy("g").agg(specmod_expr(raw_expr, "raw"), specmod_expr(agg, None)).collect()
    over = [r for r in rows if r["raw"] > r["g"]]
    assert over, "HLL++ never overestimated: the clamp is not exercised"
    assert all(r["clients"] <= r["g"] for r in rows)
    assert all(r["clients"] == r["g"] for r in over)


def specmod_expr(expr, alias):
    from pyspark.sql import functions as F

    e = F.expr(expr)
    return e.alias(alias) if alias else e


def test_integer_sums_do_not_overflow_under_ansi(spark):
    spec = golden("bandwidth")
    big = 2**62
    df = spark.createDataFrame([("t", big, 1), ("t", big, 2), ("t", big, 3)], "tenant STRING, bytes_in BIGINT, bytes_out BIGINT")
    r = df.groupBy("tenant").agg(*[specmod_expr(a, None) for a in spec["aggregations"]]).collect()[0]
    assert r["bytes_in"] == 2**63 - 1  # saturates instead of failing the micro-batch
    assert r["bytes_out"] == 6
    assert r["samples"] == 3
