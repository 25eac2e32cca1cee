"""The consumer-group commit after a driver restart (issue 12, finding 1): a query
that is idle after the restart emits no progress event, and must not hold its
metric's commit back."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs import offsets  # noqa: E402

TOPIC = "hourglass.metric.error_rate"
META = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1796352771522, "conf": {}})


def offset_log(ends):
    return "v1\n" + META + "\n" + json.dumps({TOPIC: {str(p): o for p, o in ends.items()}})


def write_checkpoint(root, batches, committed):
    """A Spark checkpoint dir: offsets/<id> for batches, commits/<id> for committed,
    with the .crc files Spark writes beside them."""
    os.makedirs(root / "offsets")
    os.makedirs(root / "commits")
    for b, ends in batches.items():
        (root / "offsets" / str(b)).write_text(offset_log(ends))
        (root / "offsets" / f".{b}.crc").write_text("crc")
    for b in committed:
        (root / "commits" / str(b)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def local_readers(root):
    def list_names(rel):
        p = root / rel
        return os.listdir(p) if p.exists() else []

    def read_text(rel):
        return (root / rel).read_text()

    return list_names, read_text


def test_checkpoint_offsets_are_the_last_committed_batch(tmp_path):
    # batch 2 was planned (offsets/2) but not committed: Spark replays it after a
    # restart, so the query has processed batch 1's end offsets only.
    write_checkpoint(tmp_path, {0: {0: 10, 1: 5}, 1: {0: 12012, 1: 3984, 2: 0}, 2: {0: 12165, 1: 4035, 2: 0}}, [0, 1])
    assert offsets.checkpoint_offsets(*local_readers(tmp_path), TOPIC) == {0: 12012, 1: 3984, 2: 0}


def test_checkpoint_without_committed_batch(tmp_path):
    assert offsets.checkpoint_offsets(*local_readers(tmp_path), TOPIC) == {}  # no checkpoint at all
    write_checkpoint(tmp_path, {0: {0: 10}}, [])
    assert offsets.checkpoint_offsets(*local_readers(tmp_path), TOPIC) == {}


def test_checkpoint_errors_are_reported(tmp_path):
    write_checkpoint(tmp_path, {0: {0: 10}}, [0, 1])
    with pytest.raises(offsets.CheckpointError, match="commits/1 has no offsets/1"):
        offsets.checkpoint_offsets(*local_readers(tmp_path), TOPIC)
    with pytest.raises(offsets.CheckpointError, match="version line"):
        offsets.parse_offset_log("", TOPIC)
    with pytest.raises(offsets.CheckpointError, match="source line"):
        offsets.parse_offset_log("v1\n{}\n{not json", TOPIC)


def test_offset_log_skips_sources_without_offsets_and_other_topics():
    text = "v1\n" + META + "\n-\n" + json.dumps({"other": {"0": 7}, TOPIC: {"1": 3}})
    assert offsets.parse_offset_log(text, TOPIC) == {1: 3}


# The layout of issue 12's time, one aggregation query per window size: the tracker
# takes any number of queries.
NAMES = ["hourglass-error_rate-1m", "hourglass-error_rate-1h", "hourglass-error_rate-late"]


def test_idle_query_after_restart_does_not_stall_the_commit():
    """The failure of TestStreamingAgainstGroundTruth: before the SIGKILL the late
    query had processed the whole topic, the 1m and 1h queries not. After the
    restart only 1m and 1h have input; late is idle (no progress event)."""
    end = {0: 12165, 1: 4035, 2: 0}
    t = offsets.CommitTracker()
    t.seed(NAMES[0], {0: 12012, 1: 3984, 2: 0})   # from each checkpoint
    t.seed(NAMES[1], {0: 12012, 1: 3984, 2: 0})
    t.seed(NAMES[2], end)
    assert t.due("error_rate", NAMES) == {0: 12012, 1: 3984, 2: 0}
    t.done("error_rate", {0: 12012, 1: 3984, 2: 0})
    assert t.due("error_rate", NAMES) is None      # nothing new: no commit
    t.processed(NAMES[0], end)                     # progress events of 1m and 1h only
    assert t.due("error_rate", NAMES) is None      # 1h is still behind
    t.processed(NAMES[1], end)
    assert t.due("error_rate", NAMES) == end       # reaches the end although late is idle
    t.done("error_rate", end)
    assert t.due("error_rate", NAMES) is None


def test_without_seed_an_idle_query_holds_the_commit_back():
    """The old behaviour, for the record: the min needs every query's offsets."""
    t = offsets.CommitTracker()
    for n in NAMES[:2]:
        t.processed(n, {0: 5})
    assert t.due("error_rate", NAMES) is None
    assert t.missing(NAMES) == [NAMES[2]]


def test_progress_replaces_the_seed_and_failed_commit_is_retried():
    t = offsets.CommitTracker()
    for n in NAMES:
        t.seed(n, {0: 10, 1: 20})
    t.processed(NAMES[2], {})                      # a progress without offsets changes nothing
    assert t.offsets_of(NAMES[2]) == {0: 10, 1: 20}
    for n in NAMES:
        t.processed(n, {0: 11, 1: 20})
    assert t.due("m", NAMES) == {0: 11, 1: 20}
    # the commit failed (done not called): the next check returns it again
    assert t.due("m", NAMES) == {0: 11, 1: 20}


def test_new_partition_is_committed_once_every_query_has_it():
    t = offsets.CommitTracker()
    for n in NAMES:
        t.seed(n, {0: 10})
    t.processed(NAMES[0], {0: 10, 1: 4})
    assert t.due("m", NAMES) == {0: 10}
    t.processed(NAMES[1], {0: 10, 1: 4})
    t.processed(NAMES[2], {0: 10, 1: 3})
    assert t.due("m", NAMES) == {0: 10, 1: 3}


def test_batch_ids_ignore_crc_and_tmp_files():
    assert offsets.batch_ids(["0", ".0.crc", "10", "2", "3.tmp", ".9.tmp"]) == [0, 2, 10]
