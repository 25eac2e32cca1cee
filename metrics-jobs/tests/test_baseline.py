import copy
import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs import baseline as bl  # noqa: E402
from hourglass_jobs import spec as specmod  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "internal", "catalog", "testdata", "golden")


def golden(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return json.load(f)


def rule(statistic="mean_stddev", z=3.0, min_samples=2, **kw):
    b = {"statistic": statistic, "z": z, "min_samples": min_samples}
    if statistic == "median_mad":
        b["mad_scale"] = 1.4826
    b.update(kw)
    return b


# ---- statistics, against values computed by hand ----

def test_mean_stddev_uses_the_sample_stddev():
    # mean 14; squared deviations 16+4+0+4+16 = 40; / (n-1 = 4) = 10; spread sqrt(10)
    r = bl.evaluate(24, [10, 12, 14, 16, 18], rule(min_samples=5))
    assert r["samples"] == 5 and r["expected"] == 14.0
    assert r["spread"] == pytest.approx(math.sqrt(10), abs=1e-12)
    assert r["score"] == pytest.approx(10 / math.sqrt(10), abs=1e-12)  # 3.1623 >= 3
    assert r["anomaly"] is True
    assert r["lower"] == pytest.approx(14 - 3 * math.sqrt(10)) and r["upper"] == pytest.approx(14 + 3 * math.sqrt(10))
    r = bl.evaluate(20, [10, 12, 14, 16, 18], rule(min_samples=5))
    assert r["score"] == pytest.approx(6 / math.sqrt(10)) and r["anomaly"] is False
    r = bl.evaluate(4, [10, 12, 14, 16, 18], rule(min_samples=5))
    assert r["score"] == pytest.approx(-10 / math.sqrt(10)) and r["anomaly"] is True, "a drop is anomalous too"


def test_median_mad_is_robust_and_scaled():
    # sorted 98 99 100 101 102 500 -> median 100.5; |dev| sorted 0.5 0.5 1.5 1.5 2.5 399.5 -> MAD 1.5
    past = [100, 102, 98, None, 101, 99, 500]
    r = bl.evaluate(110, past, rule("median_mad", min_samples=5))
    assert r["samples"] == 6, "the missing day is not a sample"
    assert r["expected"] == 100.5
    assert r["spread"] == pytest.approx(1.4826 * 1.5, abs=1e-12)
    assert r["score"] == pytest.approx(9.5 / (1.4826 * 1.5), abs=1e-12)  # 4.27
    assert r["anomaly"] is True
    assert bl.evaluate(103, past, rule("median_mad", min_samples=5))["anomaly"] is False  # 1.12
    # odd count: median is the middle value
    assert bl.summarize([3, 1, 2], "median_mad") == (3, 2, pytest.approx(1.4826 * 1))


def test_no_history_is_explicit():
    r = bl.evaluate(42, [None] * 7, rule(min_samples=3))
    assert r == {"expected": None, "spread": None, "lower": None, "upper": None,
                 "score": None, "anomaly": False, "samples": 0}


def test_fewer_than_min_samples_gives_expected_but_no_score():
    r = bl.evaluate(1000, [5, None, 7], rule(min_samples=3))
    assert r["samples"] == 2 and r["expected"] == 6.0 and r["spread"] == pytest.approx(math.sqrt(2))
    assert r["score"] is None and r["anomaly"] is False and r["lower"] is None and r["upper"] is None
    r = bl.evaluate(1000, [5], rule(min_samples=2))
    assert r["samples"] == 1 and r["expected"] == 5.0 and r["spread"] is None and r["anomaly"] is False


def test_flat_history_and_null_value():
    flat = [5, 5, 5]
    r = bl.evaluate(5, flat, rule())
    assert r["score"] == 0.0 and r["anomaly"] is False and r["lower"] == r["upper"] == 5.0
    r = bl.evaluate(6, flat, rule())
    assert r["score"] is None and r["anomaly"] is True, "any change from a flat history"
    r = bl.evaluate(None, [1, 2, 3], rule())
    assert r["score"] is None and r["anomaly"] is False and r["expected"] == 2.0
    # non-numbers in the history are missing samples
    assert bl.summarize([1, float("nan"), True, "x", 3], "mean_stddev")[0] == 2


def test_lookback_starts_match_go():
    for row in golden("baseline-starts.json"):
        b = {"step_seconds": row["step_seconds"], "lookback_count": row["lookback_count"]}
        got = [bl.format_start(s) for s in bl.lookback_starts(bl.parse_start(row["start"]), b)]
        assert got == row["starts"], row


# ---- specs ----

@pytest.mark.parametrize("name", ["spark-request_rate.json", "spark-latency.json", "spark-slow_api.json"])
def test_specs_with_baselines_are_accepted(name):
    specmod.check(golden(name), name)


def test_check_rejects_a_bad_baseline():
    s = golden("spark-latency.json")
    s["baselines"][0]["window"] = "5m"
    with pytest.raises(specmod.SpecError, match="not a window"):
        specmod.check(s)
    s = golden("spark-latency.json")
    del s["baselines"][0]["step_seconds"]
    with pytest.raises(specmod.SpecError, match="step_seconds"):
        specmod.check(s)
    s = golden("spark-latency.json")
    s["baselines"][0]["leaves"][0] = "mean"
    with pytest.raises(specmod.SpecError, match="leaves"):
        specmod.check(s)


# ---- reads, against a fake Elasticsearch ----

def _matches(q, src):
    if "term" in q:
        (f, v), = q["term"].items()
        return bl._get(src, f) == v
    if "terms" in q:
        (f, vs), = q["terms"].items()
        return bl._get(src, f) in vs
    if "exists" in q:
        return bl._get(src, q["exists"]["field"]) is not None
    b = q["bool"]
    ok = all(_matches(c, src) for c in b.get("filter", []))
    if "should" in b:
        ok = ok and any(_matches(c, src) for c in b["should"])
    if "must_not" in b:
        ok = ok and not _matches(b["must_not"], src)
    return ok


def _filter_source(d, fields):
    """_source filtering as Elasticsearch does it: dotted names keep their nesting."""
    out = {}
    for f in fields:
        v = bl._get(d, f)
        if v is None:
            continue
        *parents, leaf = f.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


class FakeES:
    """Answers _msearch over in-memory documents; records every request."""

    def __init__(self, docs):
        self.docs = docs
        self.requests = []

    def request(self, method, path, body, content_type):
        assert (method, path, content_type) == ("POST", "/_msearch", "application/x-ndjson")
        lines = [json.loads(l) for l in body.decode().strip().split("\n")]
        self.requests.append(lines)
        out = []
        for header, search in zip(lines[0::2], lines[1::2]):
            hits = [{"_source": _filter_source(d, search["_source"])}
                    for d in self.docs if d["metric"] == header["index"] and _matches(search["query"], d)]
            assert len(hits) <= search["size"], "size bounds every answer"
            out.append({"hits": {"hits": hits[:search["size"]]}})
        return {"responses": out}

    def searches(self):
        return [s for r in self.requests for s in r[1::2]]


def doc(metric, tenant, start, size="1h", **values):
    return {"metric": metric, "tenant": tenant, "window": {"start": bl.format_start(start), "size": size}, **values}


H = 3600
DAY = 86400
T0 = bl.parse_start("2026-03-08T00:00:00Z")


def request_rate_spec():
    return golden("spark-request_rate.json")


def history(metric, tenants, days, hours, value):
    return [dict(doc(metric, t, T0 - d * DAY + h * H, requests=value(t, d, h)), metric=metric)
            for t in tenants for d in range(1, days + 1) for h in range(hours)]


def items_of(docs):
    return [("idx", f"id{i}", json.dumps(d)) for i, d in enumerate(docs)]


def test_one_request_per_batch_of_many_windows_and_tenants_then_the_cache():
    spec = request_rate_spec()
    alias = spec["baselines"][0]["read_alias"]
    tenants = [f"t{i:03d}" for i in range(200)]
    es = FakeES([dict(d, metric=alias) for d in history("x", tenants, 7, 24, lambda t, d, h: 100 + d)])
    b = bl.Baseliner(es, spec, {"name": "1h", "seconds": 3600})
    # a replay: 24 hourly windows of 200 tenants (4800 documents, 33600 look-back windows)
    batch = [doc("request_rate", t, T0 + h * H, requests=100) for t in tenants for h in range(24)]
    batch[0]["requests"] = 300  # a surge of t000 at 00:00
    out = b.apply(items_of(batch))
    assert len(es.requests) == 1, "one _msearch for the whole micro-batch"
    searches = es.searches()
    assert all(s["size"] <= spec["baselines"][0]["max_docs_per_search"] for s in searches)
    assert len(searches) <= spec["baselines"][0]["max_searches_per_request"]
    # past values 101..107: median 104, MAD 2 -> spread 2.9652
    got = json.loads(out[1][2])["baseline"]["requests"]
    assert got["samples"] == 7 and got["expected"] == 104.0 and got["spread"] == pytest.approx(1.4826 * 2)
    assert got["score"] == pytest.approx(-4 / (1.4826 * 2)) and got["anomaly"] is False  # -1.35
    surge = json.loads(out[0][2])["baseline"]["requests"]
    assert surge["score"] == pytest.approx(196 / (1.4826 * 2)) and surge["anomaly"] is True  # 66.1
    assert sum(json.loads(o[2])["baseline"]["requests"]["anomaly"] for o in out) == 1
    # the open hour's next micro-batch: everything from the cache (keyed by tenant, hour of day)
    b.apply(items_of([doc("request_rate", t, T0 + 5 * H, requests=104) for t in tenants]))
    assert len(es.requests) == 1, "no request: the hour's history is cached"


def test_no_history_gives_samples_zero_and_is_cached_as_missing():
    spec = request_rate_spec()
    es = FakeES([])
    b = bl.Baseliner(es, spec, {"name": "1h", "seconds": 3600})
    out = b.apply(items_of([doc("request_rate", "new-tenant", T0, requests=5000)]))
    src = json.loads(out[0][2])
    assert src["baseline"]["requests"] == {"expected": None, "spread": None, "lower": None, "upper": None,
                                           "score": None, "anomaly": False, "samples": 0}
    assert src["requests"] == 5000 and src["tenant"] == "new-tenant", "the rest of the document is kept"
    b.apply(items_of([doc("request_rate", "new-tenant", T0, requests=5001)]))
    assert len(es.requests) == 1


def test_cache_expires():
    spec = request_rate_spec()
    now = [0.0]
    es = FakeES([])
    b = bl.Baseliner(es, spec, {"name": "1h", "seconds": 3600}, clock=lambda: now[0])
    b.apply(items_of([doc("request_rate", "a", T0, requests=1)]))
    now[0] = spec["baselines"][0]["cache_ttl_seconds"]
    b.apply(items_of([doc("request_rate", "a", T0, requests=1)]))
    assert len(es.requests) == 2


def test_cache_stays_bounded_in_a_driver_running_for_weeks():
    # A driver running for 30 days: each day's window of a time of day adds one
    # look-back start to that time of day's entry (yesterday's window). Starts
    # fetched longer than the TTL ago are never read again and must not pile up
    # (they did: only whole keys were evicted, never a key's old starts).
    spec = request_rate_spec()
    b = spec["baselines"][0]
    now = [0.0]
    es = FakeES([])
    baseliner = bl.Baseliner(es, spec, {"name": "1h", "seconds": 3600}, clock=lambda: now[0])
    for day in range(30):
        now[0] = day * DAY
        baseliner.apply(items_of([doc("request_rate", "a", T0 + day * DAY + h * H, requests=1) for h in range(24)]))
    assert len(es.requests) == 30
    assert len(baseliner.cache.entries) == 24, "one key per time of day"
    per_key = [len(e) for e in baseliner.cache.entries.values()]
    assert max(per_key) == b["lookback_count"], "only the starts of the last fetch are kept, not 30 + 6"
    # Within the TTL the cache still answers: the open hour's next micro-batch reads nothing.
    baseliner.apply(items_of([doc("request_rate", "a", T0 + 29 * DAY + 5 * H, requests=2)]))
    assert len(es.requests) == 30


def last_windows_spec(max_docs=10000, max_searches=100):
    s = copy.deepcopy(golden("spark-request_rate.json"))
    s["baselines"][0].update(lookback="last_windows", lookback_count=3, step_seconds=3600, statistic="mean_stddev",
                             spread="sample_stddev", min_samples=2, cache_ttl_seconds=0,
                             max_docs_per_search=max_docs, max_searches_per_request=max_searches)
    s["baselines"][0].pop("mad_scale")
    return s


def test_last_windows_uses_the_batch_own_values_and_does_not_cache():
    spec = last_windows_spec()
    alias = spec["baselines"][0]["read_alias"]
    # in ES: 07:00 = 10 (stale: this batch updates it to 30), 06:00 = 20, 05:00 = 40
    es = FakeES([dict(doc("", "a", T0 + 7 * H, requests=10), metric=alias),
                 dict(doc("", "a", T0 + 6 * H, requests=20), metric=alias),
                 dict(doc("", "a", T0 + 5 * H, requests=40), metric=alias)])
    b = bl.Baseliner(es, spec, {"name": "1h", "seconds": 3600})
    out = b.apply(items_of([doc("request_rate", "a", T0 + 7 * H, requests=30),
                            doc("request_rate", "a", T0 + 8 * H, requests=31)]))
    got = json.loads(out[1][2])["baseline"]["requests"]
    assert got["samples"] == 3 and got["expected"] == 30.0, "(30 + 20 + 40) / 3: the batch's 07:00, not ES's"
    starts = es.searches()[0]["query"]["bool"]["filter"][1]["terms"]["window.start"]
    assert bl.format_start(T0 + 7 * H) not in starts, "a window of the batch is not read"
    b.apply(items_of([doc("request_rate", "a", T0 + 8 * H, requests=32)]))
    assert len(es.requests) == 2, "last_windows is read every micro-batch"


def test_reads_stay_bounded_when_the_batch_is_large():
    tenants = [f"t{i}" for i in range(100)]
    batch = [doc("request_rate", t, T0 + h * H, requests=1) for t in tenants for h in range(0, 48, 4)]
    es = FakeES([])
    b = bl.Baseliner(es, last_windows_spec(max_docs=50, max_searches=1000), {"name": "1h", "seconds": 3600})
    b.apply(items_of(batch))
    assert len(es.requests) == 1
    sizes = [s["size"] for s in es.searches()]
    assert max(sizes) <= 50 and sum(sizes) == 100 * 12 * 3, "every (tenant, start) named exactly once"
    es2 = FakeES([])
    b2 = bl.Baseliner(es2, last_windows_spec(max_docs=50, max_searches=10), {"name": "1h", "seconds": 3600})
    b2.apply(items_of(batch))
    assert len(es2.requests) == math.ceil(len(es.searches()) / 10)


def test_groups_beyond_tenant_and_null_keys():
    searches = bl.plan_searches({("a", "h1"): {1, 2}, ("a", None): {1, 2}}, ["tenant", "host"], "1h",
                                ["tenant", "host", "window.start", "x"], 100)
    assert len(searches) == 1 and searches[0]["size"] == 4
    clause = searches[0]["query"]["bool"]["filter"][2]
    src_null = {"tenant": "a", "window": {"size": "1h"}}
    assert _matches(clause, {"tenant": "a", "host": "h1"}) and _matches(clause, src_null)
    assert not _matches(clause, {"tenant": "a", "host": "h2"})


def test_read_errors_fail_the_batch():
    class Broken:
        def request(self, *a):
            return {"responses": [{"error": {"type": "search_phase_execution_exception"}, "status": 500}]}
    b = bl.Baseliner(Broken(), request_rate_spec(), {"name": "1h", "seconds": 3600})
    with pytest.raises(bl.BaselineError):
        b.apply(items_of([doc("request_rate", "a", T0, requests=1)]))


def test_history_reads_retry_the_spec_s_retryable_statuses():
    import urllib.error

    class Flaky(FakeES):
        def __init__(self, codes):
            super().__init__([])
            self.codes = list(codes)

        def request(self, *a):
            if self.codes:
                code = self.codes.pop(0)
                raise urllib.error.HTTPError("http://es/_msearch", code, "fail", {}, None)
            return super().request(*a)

    for codes, ok in (([500, 503], True), ([429], True), ([400], False), ([404], False)):
        es = Flaky(codes)
        b = bl.Baseliner(es, request_rate_spec(), {"name": "1h", "seconds": 3600}, sleep=lambda s: None)
        if ok:
            assert json.loads(b.apply(items_of([doc("request_rate", "a", T0, requests=1)]))[0][2])["baseline"]
        else:
            with pytest.raises(bl.BaselineError):
                b.apply(items_of([doc("request_rate", "a", T0, requests=1)]))
        assert b.requests == len(codes) + ok


def test_no_baseliner_for_other_windows():
    assert bl.Baseliner.for_window(None, request_rate_spec(), {"name": "1m", "seconds": 60}) is None
    assert bl.Baseliner.for_window(None, golden("spark-avg_rtt.json"), {"name": "1h", "seconds": 3600}) is None


# ---- the streaming path's write (Spark's DataFrame faked) ----

class FakeDF:
    def __init__(self, rows):
        self.rows = rows

    def toLocalIterator(self):
        return iter(self.rows)


class FakeBulk(FakeES):
    def __init__(self, docs):
        super().__init__(docs)
        self.written = []

    def bulk(self, items):
        items = list(items)
        self.written.extend(items)
        return len(items)


def test_write_docs_with_and_without_baselines():
    """One bulk for every size; only the documents of a size with a baseliner get the
    baseline object."""
    stream = pytest.importorskip("hourglass_jobs.stream")
    rows = [{"_index": "i", "_id": "x", "_source": json.dumps(doc("request_rate", "a", T0, requests=3)), "window_size": "1h"},
            {"_index": "i", "_id": "y", "_source": json.dumps(doc("request_rate", "a", T0, "1m", requests=1)), "window_size": "1m"}]
    es = FakeBulk([])
    assert stream.write_docs(es, FakeDF(rows)) == 2
    assert es.written == [("i", "x", rows[0]["_source"]), ("i", "y", rows[1]["_source"])] and es.requests == [], \
        "unchanged without baselines"
    es = FakeBulk([])
    b = bl.Baseliner.for_window(es, request_rate_spec(), {"name": "1h", "seconds": 3600})
    assert stream.write_docs(es, FakeDF(rows), {"1h": b}) == 2
    written = {i: json.loads(src) for _, i, src in es.written}
    assert written["x"]["baseline"]["requests"]["samples"] == 0
    assert "baseline" not in written["y"], "the 1m document has no baseline"
    assert len(es.requests) == 1
