"""Checks of a job spec rendered by Go (`hourglass catalog render spark`), and pure
helpers over offsets and progress JSON. No Spark import here, so the unit tests run
without a JVM.

The spec carries every Spark SQL expression the driver evaluates, down to the documents
it writes (internal/catalog, document.go): the metric documents (windows_sql, row_sql,
then document_sql), the late-record documents (late_documents) and which HTTP statuses
are worth another attempt (retryable_statuses, from Go's internal/retry). The driver
assembles no SQL and no document field itself."""

import json

from . import baseline

REQUIRED_KEYS = (
    "metric", "topic", "consumer_group", "schema_ddl", "event_time_sql", "head_event_time_sql", "value_column", "filter_sql",
    "watermark", "windows", "windows_sql", "row_sql", "group_by", "aggregations", "outputs", "output_fields",
    "alias", "index_sql", "id_sql", "session_time_zone", "kafka_timestamp_column",
    "out_of_range_sql", "max_future_seconds", "late_index", "out_of_range_column",
    "accepted_sql", "document_sql", "document_fields", "late_documents", "retryable_statuses", "job_runs",
)
DROP_KINDS = ("out_of_range", "late")  # the kinds of late-index document (late_documents)
# The late query's literal columns (stream.with_late_columns): batch id, epoch, watermark.
LITERAL_KEYS = ("batch_id_column", "epoch_column", "watermark_column")
LATE_KEYS = (*LITERAL_KEYS, "records_column", "late", "out_of_range")
DROP_KEYS = ("reason", "candidate_sql", "rows_sql", "where_sql", "group_by", "aggregations", "document_sql", "document_fields")


class SpecError(ValueError):
    """A spec file that the driver cannot run."""


def load(path):
    """Reads and checks a spec file written by `hourglass catalog render spark --out`."""
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise SpecError(f"read spec {path}: {e}") from e
    check(spec, path)
    return spec


def check(spec, where="spec"):
    missing = [k for k in REQUIRED_KEYS if k not in spec]
    if missing:
        raise SpecError(f"{where}: missing keys {missing}")
    if spec["session_time_zone"] != "UTC":
        raise SpecError(f"{where}: session_time_zone {spec['session_time_zone']!r}: only UTC is supported")
    if not spec["windows"]:
        raise SpecError(f"{where}: no windows")
    for w in spec["windows"]:
        if not w.get("name") or int(w.get("seconds", 0)) <= 0 or not w.get("interval"):
            raise SpecError(f"{where}: bad window {w}")
    runs = spec["job_runs"]
    if not runs.get("index") or not runs.get("fields"):
        raise SpecError(f"{where}: job_runs needs an index and its fields: {runs}")
    late = spec["late_documents"]
    missing = [k for k in LATE_KEYS if k not in late]
    missing += [f"{kind}.{k}" for kind in DROP_KINDS for k in DROP_KEYS if k not in late.get(kind, {})]
    if missing:
        raise SpecError(f"{where}: late_documents: missing keys {missing}")
    columns = [spec["kafka_timestamp_column"], spec["out_of_range_column"], spec["value_column"],
               *literal_columns(spec)]
    for c in columns:
        if not c.startswith("_") or columns.count(c) > 1:
            raise SpecError(f"{where}: column {c!r}: want distinct names starting with '_' (not record fields)")
    if len(spec["document_sql"]) != 3:
        raise SpecError(f"{where}: document_sql: want the _id, _index and _source expressions")
    retryable_statuses([spec], where)
    if int(spec["max_future_seconds"]) <= 0:
        raise SpecError(f"{where}: max_future_seconds {spec['max_future_seconds']!r}: want > 0")
    if "count(1) AS samples" not in spec["aggregations"]:
        raise SpecError(f"{where}: aggregations lack 'count(1) AS samples'")
    try:
        baseline.check_spec(spec, where)
    except ValueError as e:
        raise SpecError(str(e)) from e


def literal_columns(spec):
    """The names of the late query's literal columns, in LITERAL_KEYS' order."""
    return [spec["late_documents"][k] for k in LITERAL_KEYS]


def watermark_seconds(spec):
    """The allowed lateness in seconds, from the spec's Spark interval ("600 seconds")."""
    n, _, unit = spec["watermark"].partition(" ")
    if unit not in ("second", "seconds"):
        raise SpecError(f"watermark {spec['watermark']!r}: want '<n> seconds'")
    return int(n)


def window_by_name(spec, name):
    for w in spec["windows"]:
        if w["name"] == name:
            return w
    raise SpecError(f"{spec['metric']}: no window {name!r}")


def retryable_statuses(specs, where="spec"):
    """The retryable HTTP statuses of the specs (inclusive ranges, [{"from": 429, "to":
    429}, ...]); every spec of one driver must carry the same (they come from one Go
    function). Raises SpecError when they are missing, malformed or differ."""
    ranges = None
    for spec in specs:
        got = spec.get("retryable_statuses")
        if not got or not all(isinstance(r, dict) and isinstance(r.get("from"), int) and isinstance(r.get("to"), int)
                              and 0 < r["from"] <= r["to"] for r in got):
            raise SpecError(f"{where}: {spec.get('metric')}: retryable_statuses {got!r}: want ranges {{from, to}}")
        if ranges is not None and got != ranges:
            raise SpecError(f"{where}: {spec.get('metric')}: retryable_statuses {got!r} differ from {ranges!r}")
        ranges = got
    if ranges is None:
        raise SpecError(f"{where}: no spec")
    return ranges


def starting_offsets(topic, partitions, committed):
    """The Kafka source's startingOffsets JSON: the group's committed offset per
    partition when there is one, else earliest (-2)."""
    offsets = {}
    for p in sorted(partitions):
        o = committed.get(p)
        offsets[str(p)] = int(o) if o is not None and o >= 0 else -2
    return json.dumps({topic: offsets}, sort_keys=True)


def end_offsets_of_progress(end_offset_json, topic):
    """Parses a Kafka source's endOffset (JSON text or dict) from a query progress into
    {partition: next offset to read} for topic."""
    if not end_offset_json:
        return {}
    data = json.loads(end_offset_json) if isinstance(end_offset_json, str) else end_offset_json
    return {int(p): int(o) for p, o in data.get(topic, {}).items()}


def source_lag_of_progress(src, topic):
    """From one Kafka source of a query progress: ({partition: latest offset Spark saw
    when it planned the batch}, offsetsBehindLatest summed over partitions or None).

    Spark reports only min/max/avgOffsetsBehindLatest per source (latest − consumed
    per partition, over every partition of latestOffset); the total is avg × that
    partition count."""
    latest = end_offsets_of_progress((src or {}).get("latestOffset"), topic)
    avg = ((src or {}).get("metrics") or {}).get("avgOffsetsBehindLatest")
    if avg is None or not latest:
        return latest, None
    return latest, int(round(float(avg) * len(latest)))


def min_offsets(offset_maps):
    """Per partition, the smallest offset over maps; a partition missing from any map
    is left out (not every query has processed it yet)."""
    maps = [m for m in offset_maps]
    if not maps or any(not m for m in maps):
        return {}
    common = set(maps[0])
    for m in maps[1:]:
        common &= set(m)
    return {p: min(m[p] for m in maps) for p in sorted(common)}
