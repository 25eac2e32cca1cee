"""Command line of the metric jobs (run through spark-submit by `hourglass jobs`):

  run_job.py stream --spec S.json [--spec T.json ...] --brokers B --es-url U --checkpoint-root DIR
  run_job.py batch  --spec S.json --hour 2026-01-01T01:00:00Z --brokers B --es-url U

Every flag can also come from its HOURGLASS_* environment variable."""

import argparse
import os
import signal
import sys
import time

from . import spec as specmod

# How often the main loop re-checks idle queries' status and each metric's commit.
POLL_SECONDS = 10


def env(name, default=None):
    return os.environ.get(name, default)


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "hourglass-jobs:", msg, file=sys.stderr, flush=True)


def parser():
    ap = argparse.ArgumentParser(prog="run_job.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("stream", "batch"):
        p = sub.add_parser(name)
        p.add_argument("--spec", action="append", required=True, help="job spec JSON (hourglass catalog render spark --out)")
        p.add_argument("--brokers", default=env("HOURGLASS_BROKERS", "127.0.0.1:9092"))
        p.add_argument("--es-url", default=env("HOURGLASS_ES_URL", "http://127.0.0.1:9200"))
        p.add_argument("--es-username", default=env("HOURGLASS_ES_USERNAME"))
        p.add_argument("--es-password", default=env("HOURGLASS_ES_PASSWORD"))
        p.add_argument("--status-dir", default=env("HOURGLASS_JOBS_STATUS_DIR"), help="where progress.json is written")
    s = sub.choices["stream"]
    s.add_argument("--checkpoint-root", default=env("HOURGLASS_JOBS_CHECKPOINT_ROOT"), required=env("HOURGLASS_JOBS_CHECKPOINT_ROOT") is None,
                   help="hdfs://... or a local path; <root>/<metric>/<1m|1h|late>")
    s.add_argument("--trigger", default=env("HOURGLASS_JOBS_TRIGGER", "5 seconds"), help="micro-batch interval")
    s.add_argument("--max-offsets-per-trigger", type=int, default=int(env("HOURGLASS_JOBS_MAX_OFFSETS_PER_TRIGGER", "0")))
    b = sub.choices["batch"]
    b.add_argument("--hour", required=True, help="start of the event-time hour, RFC 3339 (2026-01-01T01:00:00Z)")
    b.add_argument("--kafka-from", help="Kafka timestamp to start reading at (default hour - lateness - skew)")
    b.add_argument("--kafka-to", help="Kafka timestamp to stop reading at (default hour + 1h + lateness)")
    b.add_argument("--skew-seconds", type=int, default=600, help="allowance for clocks and pipeline delay")
    b.add_argument("--allow-open", action="store_true", help="run even if the hour is not closed yet")
    return ap


def session(app_name, time_zone):
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.appName(app_name)
             .config("spark.sql.session.timeZone", time_zone)
             .config("spark.sql.streaming.noDataMicroBatches.enabled", "true")
             .getOrCreate())
    spark.sparkContext.setLogLevel(env("HOURGLASS_SPARK_LOG_LEVEL", "WARN"))
    return spark


def main(argv=None):
    args = parser().parse_args(argv)
    specs = [specmod.load(p) for p in args.spec]
    from .es import Client, Statuses

    es = Client(args.es_url, args.es_username, args.es_password, log=log,
                retryable=Statuses(specmod.retryable_statuses(specs)))
    if args.mode == "batch":
        if len(specs) != 1:
            log("batch: exactly one --spec")
            return 2
        spark = session(f"hourglass-batch-{specs[0]['metric']}", specs[0]["session_time_zone"])
        from . import batch
        from .kafka import Admin

        admin = Admin(spark._jvm, args.brokers)
        try:
            doc = batch.run(spark, specs[0], args, es, admin, log)
        finally:
            admin.close()
            spark.stop()
        return 0 if doc["outcome"] == "ok" else 1
    return stream_main(args, specs, es)


def stream_main(args, specs, es):
    spark = session("hourglass-metrics-" + "+".join(s["metric"] for s in specs), specs[0]["session_time_zone"])
    from .kafka import Admin
    from .offsets import CommitTracker
    from .stream import MetricJob, ProgressListener, StatusFile

    admin = Admin(spark._jvm, args.brokers)
    status = StatusFile(args.status_dir, {
        "pid": os.getpid(), "metrics": [s["metric"] for s in specs],
        "ui_url": spark.sparkContext.uiWebUrl, "application_id": spark.sparkContext.applicationId,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    tracker = CommitTracker()
    jobs = [MetricJob(spark, s, args, es, admin, log, tracker) for s in specs]
    listener = ProgressListener(jobs, admin, status, log, tracker)
    spark.streams.addListener(listener)
    stopping = []

    def stop(signum, _frame):
        # Only noted here: the main thread is inside a py4j call (awaitAnyTermination),
        # and a second call on its connection from a signal handler fails ("reentrant
        # call") and fails the query being stopped. The loop below sees it within a
        # second and stops the queries on the main thread.
        log(f"signal {signum}: stopping the queries")
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for j in jobs:
        j.start()
    log(f"started {sum(len(j.queries) for j in jobs)} queries for {[j.metric for j in jobs]}; UI {spark.sparkContext.uiWebUrl}")
    code = 0
    polled = time.monotonic()
    try:
        while not stopping:
            if spark.streams.awaitAnyTermination(1):
                break
            if time.monotonic() - polled >= POLL_SECONDS:
                polled = time.monotonic()
                listener.poll()
    except Exception as e:
        log(f"a query failed: {e}")
        code = 1
    if not stopping:
        for j in jobs:
            for q in j.queries:
                if q.exception():
                    log(f"{q.name} failed: {q.exception()}")
                    code = 1
        code = code or 1  # a query ended without being asked to: let the supervisor restart us
    for j in jobs:
        for q in j.queries:
            try:
                if q.isActive:
                    q.stop()
            except Exception as e:  # keep stopping the others
                log(f"stop {q.name}: {e!r}")
    admin.close()
    spark.stop()
    return code
