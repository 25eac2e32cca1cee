"""Smoke test: a PySpark batch job reads a Kafka topic through spark-sql-kafka-0-10.

The records are produced with Kafka's own command line tools (never with Spark), so a
broken connector cannot hide behind a matching broken writer. Needs `stack.sh up`
with the kafka service and the python, spark and kafka components (env file keys
HOURGLASS_BROKERS, HOURGLASS_KAFKA_CLASSPATH, HOURGLASS_SPARK_KAFKA_JARS).
"""

import json
import os
import socket
import subprocess
import time
import uuid

import pytest

N_RECORDS = 1000
N_PARTITIONS = 3

# Kafka 3.9.1 main classes (kafka-topics.sh, kafka-console-producer.sh, kafka-get-offsets.sh).
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "kafka.tools.ConsoleProducer"  # moves to org.apache.kafka.tools in Kafka 4
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"

QUIET_LOG4J = """\
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


class KafkaTools:
    """Runs Kafka's own tools (`java -cp $HOURGLASS_KAFKA_CLASSPATH <main class>`)."""

    def __init__(self, classpath, brokers, log4j_file):
        self.classpath = classpath
        self.brokers = brokers
        self.log4j_file = log4j_file

    def run(self, main_class, *args, stdin=None, timeout=120):
        cmd = [
            "java", "-Xms32m", "-Xmx192m", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j.configuration=file:{self.log4j_file}",
            "-cp", self.classpath, main_class, *args,
        ]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(
                f"{main_class} {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def topics(self, *args):
        return self.run(TOPIC_COMMAND, "--bootstrap-server", self.brokers, *args)


@pytest.fixture(scope="module")
def kafka_tools(stack_env, tmp_path_factory):
    log4j_file = tmp_path_factory.mktemp("kafka-tools") / "log4j.properties"
    log4j_file.write_text(QUIET_LOG4J)
    return KafkaTools(
        stack_env.require("HOURGLASS_KAFKA_CLASSPATH"),
        stack_env.require("HOURGLASS_BROKERS"),
        log4j_file,
    )


def make_records(n):
    """n records with distinct keys and JSON values; returns (records, expected qty sum)."""
    records = []
    for i in range(n):
        key = f"key-{i:05d}"
        value = json.dumps(
            {"id": i, "name": f"item {i}", "qty": (i * 7919) % 1000 + 1, "price": round(i * 0.25, 2)},
            separators=(",", ":"),
        )
        records.append((key, value))
    qty_sum = sum(json.loads(v)["qty"] for _, v in records)
    return records, qty_sum


@pytest.fixture(scope="module")
def produced_topic(kafka_tools):
    """A fresh 3-partition topic holding N_RECORDS records; deleted afterwards."""
    topic = f"hourglass-smoke-spark-{uuid.uuid4().hex[:12]}"
    kafka_tools.topics(
        "--create", "--topic", topic, "--partitions", str(N_PARTITIONS), "--replication-factor", "1"
    )
    try:
        records, qty_sum = make_records(N_RECORDS)
        lines = "".join(f"{k}\t{v}\n" for k, v in records)
        kafka_tools.run(
            CONSOLE_PRODUCER,
            "--bootstrap-server", kafka_tools.brokers,
            "--topic", topic,
            "--property", "parse.key=true",
            "--property", "key.separator=\t",
            "--producer-property", "acks=all",
            "--producer-property", "linger.ms=5",
            stdin=lines,
        )
        # Independent check that the producer wrote everything, spread over the
        # partitions (keyed records are hash-partitioned), before Spark looks.
        offsets = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = kafka_tools.run(
                GET_OFFSET_SHELL, "--bootstrap-server", kafka_tools.brokers,
                "--topic", topic, "--time", "-1",
            )
            offsets = {
                int(p): int(o)
                for _, p, o in (line.split(":") for line in out.split() if line.count(":") == 2)
            }
            if sum(offsets.values()) >= N_RECORDS:
                break
            time.sleep(0.5)
        assert sum(offsets.values()) == N_RECORDS, f"end offsets {offsets}"
        assert len(offsets) == N_PARTITIONS and all(offsets.values()), f"end offsets {offsets}"
        yield topic, records, qty_sum
    finally:
        kafka_tools.topics("--delete", "--topic", topic)


def check_batch_read(session, brokers, produced_topic):
    """The batch job of both tests: read the topic, parse the JSON, check every row."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    topic, records, qty_sum = produced_topic
    schema = StructType([
        StructField("id", LongType(), nullable=False),
        StructField("name", StringType(), nullable=False),
        StructField("qty", LongType(), nullable=False),
        StructField("price", DoubleType(), nullable=False),
    ])

    raw = (
        session.read.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    rows = (
        raw.select(
            F.col("partition"),
            F.col("key").cast("string").alias("key"),
            F.col("value").cast("string").alias("value"),
        )
        .withColumn("doc", F.from_json("value", schema, {"mode": "FAILFAST"}))
        .cache()
    )

    assert rows.count() == N_RECORDS

    got_pairs = {(r["key"], r["value"]) for r in rows.select("key", "value").collect()}
    assert got_pairs == set(records)

    totals = rows.agg(
        F.sum("doc.qty").alias("qty_sum"),
        F.count("doc.id").alias("parsed"),
        F.countDistinct("key").alias("keys"),
        F.countDistinct("partition").alias("partitions"),
    ).first()
    assert totals["parsed"] == N_RECORDS  # every value parsed with the explicit schema
    assert totals["keys"] == N_RECORDS
    assert totals["partitions"] == N_PARTITIONS
    assert totals["qty_sum"] == qty_sum
    rows.unpersist()


def test_batch_read_of_kafka_topic(spark, stack_env, produced_topic):
    """Local SparkSession (local[2]) with the connector jars from HOURGLASS_SPARK_KAFKA_JARS."""
    check_batch_read(spark, stack_env.require("HOURGLASS_BROKERS"), produced_topic)


def test_batch_read_through_spark_connect(stack_env, produced_topic):
    """The same job through the optional Spark Connect server (its classpath has the
    connector). Skipped when `stack/stack.sh up spark_connect` is not running, except
    under `make test` (HOURGLASS_REQUIRE_SPARK_CONNECT=1), which starts it and fails here
    if it is not reachable."""
    endpoint = stack_env.get("HOURGLASS_SPARK_CONNECT", "sc://127.0.0.1:15002")
    host, _, port = endpoint.removeprefix("sc://").partition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        if os.environ.get("HOURGLASS_REQUIRE_SPARK_CONNECT") == "1":
            pytest.fail(f"Spark Connect is not reachable at {endpoint}")
        pytest.skip(f"Spark Connect is not running at {endpoint} (optional: stack/stack.sh up spark_connect)")
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client.retries import DefaultPolicy

    session = SparkSession.builder.remote(endpoint).create()
    # The default policy retries an unreachable server for 10+ minutes; fail in ~15s.
    session.client.set_retry_policies([DefaultPolicy(max_retries=5, max_backoff=5000)])
    try:
        check_batch_read(session, stack_env.require("HOURGLASS_BROKERS"), produced_topic)
    finally:
        session.stop()
