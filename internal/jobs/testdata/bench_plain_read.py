"""Baseline of TestBenchMetricJob (internal/jobs/jobs_bench_test.go): a plain Spark
batch read of a Kafka topic, earliest to latest, and count() — no parsing, no
aggregation, no writes. Timed inside the driver, so JVM and session start-up are
excluded (as they are from the job's figure). Prints one JSON line:
{"records": n, "seconds": s}."""

import argparse
import json
import time

from pyspark.sql import SparkSession


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    args = ap.parse_args()
    spark = SparkSession.builder.appName("hourglass-bench-plain-read").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    t0 = time.monotonic()
    n = (spark.read.format("kafka")
         .option("kafka.bootstrap.servers", args.brokers)
         .option("subscribe", args.topic)
         .option("startingOffsets", "earliest")
         .option("endingOffsets", "latest")
         .load()
         .count())
    seconds = time.monotonic() - t0
    print(json.dumps({"records": n, "seconds": seconds}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
