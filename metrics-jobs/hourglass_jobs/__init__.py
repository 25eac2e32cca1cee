"""Hourglass metric jobs: a thin PySpark driver that executes the job specs rendered by
`hourglass catalog render spark` (Go is the only compiler of the catalog; see
docs/adr/003-pyspark.md). Entry point: metrics-jobs/run_job.py (spark-submit).

Every SQL expression the driver runs, down to the documents it writes (metric documents,
late and out-of-range documents: _index, _id, _source), and the HTTP statuses it retries
come in the spec (internal/catalog; the statuses from internal/retry).

Modules: spec (checks of a spec; offsets and progress helpers), late (the late-record
rule), es (bulk upserts over HTTP), kafka (consumer-group offsets through kafka-clients
over py4j), stream (the streaming job), batch (one closed hour), baseline (baselines,
merged into the documents after the SQL), cli (arguments).
"""
