// Package jobs supervises the PySpark metric jobs (metrics-jobs/run_job.py):
// one spark-submit per metric, restarted with exponential backoff when it
// fails, with its state on disk so that `hourglass jobs status` in another
// process can show it.
//
// State directory layout (<state-dir>/<metric>/):
//
//	<metric>.json    the job spec rendered from the catalog at start
//	supervisor.pid   pid of the supervising `hourglass jobs supervise` process
//	state.json       written by the supervisor: state, driver pid, restarts, last exit
//	progress.json    written by the driver: Spark UI URL, each query's last progress
//	driver.log       the driver's stdout and stderr (appended across restarts)
//
// Checkpoints live under the checkpoint root (<root>/<metric>/<1m|1h|late>),
// by default <state-dir>/checkpoints; give an hdfs:// root in production.
// Delivery: the job's documents are upserts with deterministic ids and its
// checkpoints are committed after the documents are written, so a killed job
// restarted on the same checkpoint converges to the same documents.
package jobs
