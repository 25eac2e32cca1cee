"""The Go-rendered SQL in a real local Spark (no Kafka: a JSON file source stands in
for the Kafka rows, with their value and timestamp columns). About half a minute:
one JVM for the module.

- A far-future row of tenant A (issue 12, finding 4) is flagged out of range and kept
  away from the watermark: tenant B's later windows are still produced. The same
  stream with the check disabled loses them, which shows the test can fail.
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


def run_stream(spark, tmp_path, spec):
    """Two micro-batches of the request_rate 1m query: (A far future, B at t),
    then (B at t+2m). Returns the documents written, by (tenant, window start)."""
    src = tmp_path / "src"
    src.mkdir()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    t = now.replace(second=0) - timedelta(minutes=5)
    window = specmod.window_by_name(spec, "1m")
    docs = {}

    def collect(bdf, _bid):
        for r in bdf.collect():
            d = json.loads(r["_source"])
            docs[(d["tenant"], d["window"]["start"])] = d

    df = (parse_records(spark.readStream.schema("value STRING, timestamp TIMESTAMP").json(str(src)), spec)
          .where(spec["accepted_sql"]).withWatermark("event_time", spec["watermark"]))
    q = (aggregate(df, spec, window).writeStream.outputMode("update").foreachBatch(collect)
         .option("checkpointLocation", str(tmp_path / "ck")).trigger(processingTime="500 milliseconds").start())
    try:
        write_file(src, "1", [kafka_row("A", "2099-01-01T00:00:00Z", now), kafka_row("B", iso(t), now)])
        q.processAllAvailable()
        write_file(src, "2", [kafka_row("B", iso(t + timedelta(minutes=2)), now)])
        q.processAllAvailable()
    finally:
        q.stop()
    return docs, t


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
    q = aggregate(parse_records(df, spec).where(spec["accepted_sql"]), spec, spec["windows"][0])
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
