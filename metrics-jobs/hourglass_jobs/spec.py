"""Pure assembly of Spark SQL from a rendered job spec. No Spark import here, so the
unit tests run without a JVM."""

import json

from . import baseline

REQUIRED_KEYS = (
    "metric", "topic", "consumer_group", "schema_ddl", "event_time_sql", "filter_sql",
    "watermark", "windows", "group_by", "aggregations", "outputs", "output_fields",
    "alias", "index_sql", "id_sql", "session_time_zone", "kafka_timestamp_column",
    "out_of_range_sql", "max_future_seconds", "late_index",
)

# The boolean column the driver adds from the spec's out_of_range_sql, and the
# condition that keeps the other rows (before withWatermark sees them).
OUT_OF_RANGE_COL = "_out_of_range"
ACCEPTED_SQL = "NOT `_out_of_range`"
# Reason of the documents counting out-of-range records in the spec's late_index
# (the router's DLQ code for the same rule); late records have reason "late".
REASON_LATE = "late"
REASON_OUT_OF_RANGE = "out_of_range"

# The document's timestamps: RFC 3339, UTC, second precision (the form DocID hashes).
TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss'Z'"
TS_MILLIS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"


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
    kts = spec["kafka_timestamp_column"]
    if not kts.startswith("_") or kts == OUT_OF_RANGE_COL:
        raise SpecError(f"{where}: kafka_timestamp_column {kts!r}: want a name starting with '_' (not a record field)")
    if int(spec["max_future_seconds"]) <= 0:
        raise SpecError(f"{where}: max_future_seconds {spec['max_future_seconds']!r}: want > 0")
    if "count(1) AS samples" not in spec["aggregations"]:
        raise SpecError(f"{where}: aggregations lack 'count(1) AS samples'")
    try:
        baseline.check_spec(spec, where)
    except ValueError as e:
        raise SpecError(str(e)) from e


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


def quote(ident):
    return "`" + ident.replace("`", "``") + "`"


def sql_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def output_select(spec, window):
    """Select expressions turning one aggregated row (columns window, group_by...,
    samples and the aggregation aliases) into (_id, _index, _source JSON).

    The document: metric, the group-by fields (tenant), window {start, end, size},
    samples, the output fields, computed_at. Null values are kept as JSON null."""
    inner = ["window", *[quote(g) for g in spec["group_by"]], "samples", *spec["outputs"],
             f"{sql_string(window['name'])} AS window_size"]
    fields = [f"'metric', {sql_string(spec['metric'])}"]
    fields += [f"{sql_string(g)}, {quote(g)}" for g in spec["group_by"]]
    fields.append(
        "'window', named_struct("
        f"'start', date_format(window.start, \"{TS_FORMAT}\"), "
        f"'end', date_format(window.end, \"{TS_FORMAT}\"), "
        "'size', window_size)"
    )
    fields.append("'samples', samples")
    fields += [f"{sql_string(f)}, {quote(f)}" for f in spec["output_fields"]]
    fields.append(f"'computed_at', date_format(current_timestamp(), \"{TS_MILLIS_FORMAT}\")")
    outer = [
        f"{spec['id_sql']} AS _id",
        f"{spec['index_sql']} AS _index",
        "to_json(named_struct(" + ", ".join(fields) + "), map('ignoreNullFields', 'false')) AS _source",
    ]
    return inner, outer


def window_end_micros_sql(seconds, ts_col="event_time"):
    """End of the tumbling window (aligned to the epoch, as Spark's window()) holding
    ts_col, in microseconds since the epoch."""
    us = int(seconds) * 1_000_000
    return f"((unix_micros({ts_col}) - pmod(unix_micros({ts_col}), {us})) + {us})"


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
