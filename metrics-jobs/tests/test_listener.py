"""ProgressListener with fake events (PySpark's listener classes import without a
JVM): seeded queries, an idle query after a restart, retried commits."""

import json
import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

pytest.importorskip("pyspark")

from hourglass_jobs.offsets import CommitTracker  # noqa: E402
from hourglass_jobs.stream import ProgressListener, progress_dict  # noqa: E402

TOPIC = "hourglass.metric.error_rate"


class FakeAdmin:
    def __init__(self):
        self.commits = []
        self.fail = 0

    def commit(self, group, topic, offsets):
        if self.fail:
            self.fail -= 1
            raise RuntimeError("broker down")
        self.commits.append((group, topic, dict(offsets)))


class FakeStatus:
    def __init__(self):
        self.queries = {}

    def started(self, query, ts):
        pass

    def has(self, query, ts):
        return (self.queries.get(query) or {}).get("timestamp") == ts

    def update(self, query, progress):
        self.queries[query] = progress


def job(tracker, queries=()):
    names = [f"hourglass-error_rate-{p}" for p in ("1m", "1h", "late")]
    spec = {"metric": "error_rate", "topic": TOPIC, "consumer_group": "hourglass-metrics-error_rate"}
    return SimpleNamespace(metric="error_rate", names=names, spec=spec, tracker=tracker, queries=list(queries))


def progress(name, batch, ends, ts="2026-12-04T00:00:00.000Z"):
    p = {"name": name, "batchId": batch, "timestamp": ts, "numInputRows": 1,
         "sources": [{"endOffset": json.dumps({TOPIC: {str(k): v for k, v in ends.items()}}),
                      "latestOffset": {TOPIC: {str(k): v for k, v in ends.items()}},
                      "metrics": {"avgOffsetsBehindLatest": "0.0"}}]}
    return SimpleNamespace(progress=SimpleNamespace(json=json.dumps(p)))


def started(name, qid):
    return SimpleNamespace(name=name, id=qid, timestamp="2026-12-04T00:00:00.000Z")


def test_restart_with_an_idle_query_commits_to_the_end():
    tracker = CommitTracker()
    j = job(tracker)
    admin, status = FakeAdmin(), FakeStatus()
    lst = ProgressListener([j], admin, status, lambda m: None, tracker)
    behind, end = {0: 12012, 1: 3984, 2: 0}, {0: 12165, 1: 4035, 2: 0}
    # MetricJob.seed before each query starts; the late query had finished before the crash
    for name, seed in zip(j.names, (behind, behind, end)):
        tracker.seed(name, seed)
        lst.onQueryStarted(started(name, "id-" + name))
    assert admin.commits == [("hourglass-metrics-error_rate", TOPIC, behind)]
    lst.onQueryProgress(progress(j.names[0], 7, end))
    lst.onQueryProgress(progress(j.names[1], 7, end))
    assert admin.commits[-1][2] == end
    n = len(admin.commits)
    lst.onQueryIdle(SimpleNamespace(id="id-" + j.names[2]))  # nothing new: no second commit
    assert len(admin.commits) == n
    assert status.queries[j.names[1]]["committed"] == end


def test_failed_commit_is_retried_on_idle_and_poll():
    tracker = CommitTracker()
    j = job(tracker)
    admin, status = FakeAdmin(), FakeStatus()
    logs = []
    lst = ProgressListener([j], admin, status, logs.append, tracker)
    for name in j.names:
        tracker.seed(name, {0: 1})
    admin.fail = 4
    for name in j.names:
        lst.onQueryStarted(started(name, "id-" + name))   # each start tries and fails
    assert admin.commits == []
    assert any("broker down" in m for m in logs)
    lst.onQueryIdle(SimpleNamespace(id="id-" + j.names[0]))  # fails again
    assert admin.commits == []
    lst.poll()
    assert admin.commits == [("hourglass-metrics-error_rate", TOPIC, {0: 1})]


def test_poll_gives_an_idle_query_a_status_without_moving_offsets():
    tracker = CommitTracker()
    idle = json.loads(progress("hourglass-error_rate-late", 3, {0: 99}).progress.json)
    q = SimpleNamespace(lastProgress=SimpleNamespace(json=json.dumps(idle)))
    j = job(tracker, [q])
    status = FakeStatus()
    lst = ProgressListener([j], FakeAdmin(), status, lambda m: None, tracker)
    for name in j.names:
        tracker.seed(name, {0: 5})
    lst.poll()
    assert status.queries["hourglass-error_rate-late"]["batch_id"] == 3
    assert tracker.offsets_of("hourglass-error_rate-late") == {0: 5}  # offsets only from the checkpoint or progress events


def test_progress_dict():
    assert progress_dict(None) is None
    assert progress_dict({"a": 1}) == {"a": 1}
    assert progress_dict(SimpleNamespace(json='{"a": 2}')) == {"a": 2}
