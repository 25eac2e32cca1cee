"""Which offsets a metric's consumer group may be committed to. Pure: no Spark import,
so the unit tests run without a JVM.

Every query of a metric (windows, late) reads the same topic with its own checkpoint.
The group gets, per partition, the smallest offset all of them have processed. A
query's processed offsets come from its progress events; but after a restart a query
with no new input never emits one (Spark 4 emits QueryIdleEvent, which carries no
offsets), so each query is first seeded with what its checkpoint says it processed
(the end offsets of its last committed batch) or, without a checkpoint, with the
offsets it starts from. Without the seed one idle query would hold the metric's
commit back for ever (issue 12, finding 1)."""

import threading

from . import spec as specmod


class CheckpointError(ValueError):
    """A checkpoint whose offset log cannot be read."""


def batch_ids(names):
    """Batch ids among the file names of a checkpoint's offsets/ or commits/ directory
    (Spark also keeps .crc and .tmp files there)."""
    return sorted(int(n) for n in names if n.isdigit())


def parse_offset_log(text, topic):
    """{partition: next offset to read} of topic from one file of a checkpoint's
    offsets/ log: 'v1', the batch metadata JSON, then one line per source (the Kafka
    source's offsets JSON, or '-' when the source had none)."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) < 2 or not lines[0].startswith("v"):
        raise CheckpointError(f"offset log: want a version line and metadata, got {len(lines)} lines")
    out = {}
    for ln in lines[2:]:
        if ln.strip() == "-":
            continue
        try:
            out.update(specmod.end_offsets_of_progress(ln, topic))
        except (ValueError, AttributeError) as e:
            raise CheckpointError(f"offset log: source line {ln[:200]!r}: {e}") from e
    return out


def checkpoint_offsets(list_names, read_text, topic):
    """The offsets of topic that a query has processed according to its checkpoint:
    the end offsets of its last committed batch. list_names(dir) lists 'offsets' or
    'commits' ([] when missing); read_text('offsets/<id>') reads a file. Returns {}
    for a checkpoint without a committed batch (the query starts elsewhere)."""
    commits = batch_ids(list_names("commits"))
    if not commits:
        return {}
    last = commits[-1]
    if last not in set(batch_ids(list_names("offsets"))):
        raise CheckpointError(f"commits/{last} has no offsets/{last}")
    return parse_offset_log(read_text(f"offsets/{last}"), topic)


class CommitTracker:
    """Per query, the offsets it has processed; per metric, what to commit.

    seed(query, offsets): before the query starts (checkpoint or starting offsets).
    processed(query, offsets): from a progress event (replaces the seed).
    due(metric, queries): the offsets to commit now, or None when there is nothing new
    (or some query of the metric has not said what it processed yet). done(metric,
    offsets) after a successful commit; a failed commit is retried on the next call."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ends = {}       # query name -> {partition: offset}
        self.seeds = {}      # query name -> {partition: offset}
        self.committed = {}  # metric -> offsets last committed

    def seed(self, query, offsets):
        with self.lock:
            self.seeds[query] = {int(p): int(o) for p, o in (offsets or {}).items()}

    def processed(self, query, offsets):
        if not offsets:
            return
        with self.lock:
            self.ends[query] = dict(offsets)

    def offsets_of(self, query):
        with self.lock:
            return self._of(query)

    def _of(self, query):
        return self.ends.get(query) or self.seeds.get(query) or {}

    def due(self, metric, queries):
        with self.lock:
            offsets = specmod.min_offsets([self._of(q) for q in queries])
            if not offsets or offsets == self.committed.get(metric):
                return None
            return offsets

    def missing(self, queries):
        """Queries that have neither processed nor been seeded with any offset."""
        with self.lock:
            return [q for q in queries if not self._of(q)]

    def done(self, metric, offsets):
        with self.lock:
            self.committed[metric] = dict(offsets)

    def last_committed(self, metric):
        with self.lock:
            return self.committed.get(metric)

