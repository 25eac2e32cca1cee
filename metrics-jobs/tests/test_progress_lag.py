"""offsetsBehindLatest as the job writes it to progress.json."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs import spec as specmod  # noqa: E402


def test_source_lag_sums_avg_over_latest_partitions():
    src = {
        "endOffset": {"t": {"0": 10, "1": 20, "2": 30}},
        "latestOffset": {"t": {"0": 15, "1": 20, "2": 31}},
        "metrics": {"minOffsetsBehindLatest": "0", "maxOffsetsBehindLatest": "5",
                    "avgOffsetsBehindLatest": "2.0"},
    }
    latest, behind = specmod.source_lag_of_progress(src, "t")
    assert latest == {0: 15, 1: 20, 2: 31}
    assert behind == 6


def test_source_lag_rounds_thirds():
    src = {"latestOffset": '{"t":{"0":1,"1":1,"2":0}}',
           "metrics": {"avgOffsetsBehindLatest": "0.6666666666666666"}}
    assert specmod.source_lag_of_progress(src, "t") == ({0: 1, 1: 1, 2: 0}, 2)


def test_source_lag_without_metrics():
    assert specmod.source_lag_of_progress({"latestOffset": {"t": {"0": 3}}}, "t") == ({0: 3}, None)
    assert specmod.source_lag_of_progress({}, "t") == ({}, None)
    assert specmod.source_lag_of_progress(None, "t") == ({}, None)
