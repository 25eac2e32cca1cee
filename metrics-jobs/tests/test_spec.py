import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs import spec as specmod  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "internal", "catalog", "testdata", "golden")


def golden(name):
    with open(os.path.join(GOLDEN, f"spark-{name}.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("name", ["avg_rtt", "request_rate", "error_rate", "latency", "bandwidth", "unique_clients"])
def test_golden_specs_are_accepted(name):
    specmod.check(golden(name), name)


def test_check_rejects_incomplete_and_non_utc():
    s = golden("latency")
    del s["id_sql"]
    with pytest.raises(specmod.SpecError, match="id_sql"):
        specmod.check(s)
    s = golden("latency")
    s["session_time_zone"] = "Europe/Paris"
    with pytest.raises(specmod.SpecError, match="UTC"):
        specmod.check(s)


def test_load_reports_the_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(specmod.SpecError, match="bad.json"):
        specmod.load(str(p))


def test_watermark_seconds():
    assert specmod.watermark_seconds(golden("latency")) == 600
    with pytest.raises(specmod.SpecError):
        specmod.watermark_seconds({"watermark": "10 minutes"})


@pytest.mark.parametrize("key", ["document_sql", "late_documents", "accepted_sql", "retryable_statuses"])
def test_check_wants_the_document_sql_from_go(key):
    s = golden("latency")
    del s[key]
    with pytest.raises(specmod.SpecError, match=key):
        specmod.check(s)


def test_check_rejects_incomplete_late_documents_and_clashing_columns():
    s = golden("latency")
    del s["late_documents"]["late"]["document_sql"]
    with pytest.raises(specmod.SpecError, match="late.document_sql"):
        specmod.check(s)
    s = golden("latency")
    s["late_documents"]["epoch_column"] = s["kafka_timestamp_column"]
    with pytest.raises(specmod.SpecError, match="distinct"):
        specmod.check(s)
    s = golden("latency")
    del s["windows"][1]["interval"]
    with pytest.raises(specmod.SpecError, match="bad window"):
        specmod.check(s)
    s = golden("latency")
    del s["windows_sql"]
    with pytest.raises(specmod.SpecError, match="windows_sql"):
        specmod.check(s)


def test_retryable_statuses_come_from_the_specs():
    a, b = golden("latency"), golden("request_rate")
    assert specmod.retryable_statuses([a, b]) == a["retryable_statuses"]
    b["retryable_statuses"] = [{"from": 429, "to": 429}]
    with pytest.raises(specmod.SpecError, match="differ"):
        specmod.retryable_statuses([a, b])
    for bad in ([], [{"from": 504, "to": 502}], [{"from": "429", "to": 429}], None):
        a["retryable_statuses"] = bad
        with pytest.raises(specmod.SpecError, match="retryable_statuses"):
            specmod.check(a)


@pytest.mark.parametrize("committed,want", [
    ({}, {"0": -2, "1": -2, "2": -2}),
    ({0: 10, 2: 7}, {"0": 10, "1": -2, "2": 7}),
    ({0: -1, 1: 0}, {"0": -2, "1": 0, "2": -2}),
])
def test_starting_offsets(committed, want):
    got = json.loads(specmod.starting_offsets("t", [2, 0, 1], committed))
    assert got == {"t": want}


def test_end_offsets_of_progress():
    assert specmod.end_offsets_of_progress('{"t":{"0":5,"1":7},"u":{"0":1}}', "t") == {0: 5, 1: 7}
    assert specmod.end_offsets_of_progress({"t": {"2": 3}}, "t") == {2: 3}
    assert specmod.end_offsets_of_progress(None, "t") == {}


def test_min_offsets_waits_for_every_query():
    assert specmod.min_offsets([{0: 5, 1: 9}, {0: 7, 1: 3}]) == {0: 5, 1: 3}
    assert specmod.min_offsets([{0: 5}, {}]) == {}
    assert specmod.min_offsets([{0: 5, 1: 2}, {0: 4}]) == {0: 4}
    assert specmod.min_offsets([]) == {}


def test_job_runs_come_from_the_spec():
    """Batch mode records its run where the spec says, with only the fields the
    spec names (internal/catalog/jobruns.go owns the document)."""
    from hourglass_jobs import batch

    class FakeES:
        def __init__(self):
            self.writes = []

        def index(self, index, doc_id, doc):
            self.writes.append((index, doc_id, dict(doc)))

    s = golden("latency")
    assert s["job_runs"]["index"] == "hourglass-jobruns"
    es = FakeES()
    batch.record_run(es, s, "r1", {"metric": "latency", "outcome": "running", "duration_seconds": 1.5})
    assert es.writes == [("hourglass-jobruns", "r1", {"metric": "latency", "outcome": "running", "duration_seconds": 1.5})]
    with pytest.raises(specmod.SpecError, match="duration"):
        batch.record_run(es, s, "r1", {"metric": "latency", "duration": "90s"})
    assert len(es.writes) == 1
    del s["job_runs"]
    with pytest.raises(specmod.SpecError, match="job_runs"):
        specmod.check(s)
