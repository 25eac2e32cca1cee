"""Hourglass metric jobs: a thin PySpark driver that executes the job specs rendered by
`hourglass catalog render spark` (Go is the only compiler of the catalog; see
docs/adr/003-pyspark.md). Entry point: metrics-jobs/run_job.py (spark-submit).

Modules: spec (pure SQL assembly from a spec), late (the late-record rule), es (bulk
upserts over HTTP), kafka (consumer-group offsets through kafka-clients over py4j),
stream (the streaming job), batch (one closed hour), cli (arguments).
"""
