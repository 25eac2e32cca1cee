"""Baselines: an output of a window compared with the same output in earlier windows of
the same group, read back from Elasticsearch (issue 17). Go compiles the catalog's
`baselines` into the spec's `baselines` list (internal/catalog, BaselineSpec); this
module only executes it. No Spark import: the tests run without a JVM.

For a window starting at S (epoch seconds), the look-back starts are
S - k*step_seconds, k = 1..lookback_count (same_window_of_day: step 86400; last_windows:
step = the window size). Their documents (same group, same window size) give the past
values; a missing document or a null value is a missing sample, never a zero.

With n past values (samples) and the current value v:
  mean_stddev: expected = mean, spread = sample standard deviation (divisor n-1)
  median_mad:  expected = median, spread = mad_scale (1.4826) * median(|x - median|)
  spread is null when n < 2.
  n >= min_samples and spread > 0: score = (v - expected) / spread,
      anomaly = |score| >= z, lower/upper = expected -/+ z*spread
      (so anomaly <=> v <= lower or v >= upper).
  n >= min_samples and spread == 0 (a flat history): lower = upper = expected;
      score = 0 and anomaly false when v == expected, else score null and anomaly true.
  n < min_samples: score, lower, upper null, anomaly false; expected (and spread)
      from what exists, null when n = 0.
  v null (e.g. an average of no values): score null, anomaly false.
Written as document[baseline][output] = {expected, spread, lower, upper, score,
anomaly, samples} on the documents of the baseline's window size (document_field).

Reads: one _msearch per micro-batch (per window-size query): the documents wanted are
grouped by the set of look-back starts they need, and each set becomes searches of at
most max_docs_per_search documents (groups x starts); more than
max_searches_per_request searches go into further requests. Values of this
micro-batch's own documents are newer than Elasticsearch's and are used instead. With
cache_ttl_seconds > 0 (same_window_of_day), fetched values, missing ones included,
are cached per (group, time of day of the window start) for that long."""

import json
import math
import time
import urllib.error
from collections import OrderedDict
from datetime import datetime, timezone

from .es import Statuses

SAME_WINDOW_OF_DAY = "same_window_of_day"
LAST_WINDOWS = "last_windows"
STATISTICS = ("mean_stddev", "median_mad")
FIELDS = ("expected", "spread", "lower", "upper", "score", "anomaly", "samples")
REQUIRED_KEYS = ("output", "window", "window_seconds", "document_field", "leaves", "read_alias", "read_fields",
                 "lookback", "lookback_count", "step_seconds", "statistic", "spread", "z", "min_samples",
                 "max_docs_per_search", "max_searches_per_request", "cache_ttl_seconds", "cache_max_entries")


class BaselineError(RuntimeError):
    """A history read that failed: the micro-batch fails and is replayed."""


def check_spec(spec, where="spec"):
    """Checks the spec's baselines (raises ValueError naming the problem)."""
    windows = {w["name"]: int(w["seconds"]) for w in spec["windows"]}
    for b in spec.get("baselines") or []:
        missing = [k for k in REQUIRED_KEYS if k not in b]
        if missing:
            raise ValueError(f"{where}: baseline {b.get('output')!r}: missing keys {missing}")
        if tuple(b["leaves"]) != FIELDS:
            raise ValueError(f"{where}: baseline {b['output']!r}: leaves {b['leaves']} are not the ones this driver "
                             f"writes {list(FIELDS)} (internal/catalog owns them: rebuild the driver or the spec)")
        if windows.get(b["window"]) != int(b["window_seconds"]):
            raise ValueError(f"{where}: baseline {b['output']!r}: window {b['window']!r} is not a window of the spec")
        if b["statistic"] not in STATISTICS or b["lookback"] not in (SAME_WINDOW_OF_DAY, LAST_WINDOWS):
            raise ValueError(f"{where}: baseline {b['output']!r}: statistic {b['statistic']!r}, lookback {b['lookback']!r}")
        if int(b["step_seconds"]) <= 0 or int(b["lookback_count"]) <= 0 or float(b["z"]) <= 0 \
                or int(b["min_samples"]) < 2 or int(b["max_docs_per_search"]) <= 0 \
                or int(b["max_searches_per_request"]) <= 0:
            raise ValueError(f"{where}: baseline {b['output']!r}: bad bounds {b}")


def for_window(spec, window):
    """The spec's baselines that apply to documents of this window size."""
    return [b for b in spec.get("baselines") or [] if b["window"] == window["name"]]


# ---- the statistics (pure) ----

def lookback_starts(start, b):
    """Look-back window starts (epoch seconds) of the window starting at start, nearest
    first: start - k*step_seconds, k = 1..lookback_count."""
    step = int(b["step_seconds"])
    return [int(start) - k * step for k in range(1, int(b["lookback_count"]) + 1)]


def _number(x):
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _median(xs):
    s = sorted(xs)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def summarize(past, statistic, mad_scale=1.4826):
    """(samples, expected, spread) of the past values; None entries are missing."""
    xs = [v for v in (_number(x) for x in past) if v is not None]
    n = len(xs)
    if n == 0:
        return 0, None, None
    if statistic == "mean_stddev":
        expected = math.fsum(xs) / n
        spread = math.sqrt(math.fsum((x - expected) ** 2 for x in xs) / (n - 1)) if n >= 2 else None
    elif statistic == "median_mad":
        expected = _median(xs)
        spread = mad_scale * _median([abs(x - expected) for x in xs]) if n >= 2 else None
    else:
        raise ValueError(f"unknown statistic {statistic!r}")
    return n, expected, spread


def evaluate(value, past, b):
    """The baseline object of one document (see the module doc for the rules)."""
    n, expected, spread = summarize(past, b["statistic"], float(b.get("mad_scale") or 1.4826))
    out = {"expected": expected, "spread": spread, "lower": None, "upper": None,
           "score": None, "anomaly": False, "samples": n}
    if n < int(b["min_samples"]) or spread is None:
        return out
    z = float(b["z"])
    out["lower"], out["upper"] = expected - z * spread, expected + z * spread
    v = _number(value)
    if v is None:
        return out
    if spread > 0:
        out["score"] = (v - expected) / spread
        out["anomaly"] = abs(out["score"]) >= z
    elif v == expected:
        out["score"] = 0.0
    else:
        out["anomaly"] = True
    return out


def merge(doc, b, result):
    """Writes result at the baseline's document_field (baseline.<output>) of doc."""
    *parents, leaf = b["document_field"].split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = result
    return doc


# ---- time ----

def parse_start(text):
    """RFC 3339 UTC ("2026-03-01T10:00:00Z", as documents hold it) -> epoch seconds."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def format_start(epoch):
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the reads ----

def _group_clause(group_by, groups):
    """A filter matching any of groups (tuples of group_by values)."""
    if len(group_by) == 1 and all(g[0] is not None for g in groups):
        return {"terms": {group_by[0]: sorted({g[0] for g in groups})}}
    should = []
    for g in sorted(groups, key=lambda g: tuple("" if v is None else str(v) for v in g)):
        parts = [{"term": {f: v}} if v is not None else {"bool": {"must_not": {"exists": {"field": f}}}}
                 for f, v in zip(group_by, g)]
        should.append({"bool": {"filter": parts}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def plan_searches(wants, group_by, window_name, read_fields, max_docs):
    """wants: {group tuple: set of starts}. Returns the search bodies: groups needing
    the same starts share a search; each search names at most max_docs
    (group, start) pairs, and a group and window start match at most one document,
    so `size` bounds the answer exactly."""
    by_starts = {}
    for g, starts in wants.items():
        if starts:
            by_starts.setdefault(tuple(sorted(starts)), []).append(g)
    searches = []
    for starts, groups in sorted(by_starts.items()):
        groups.sort(key=lambda g: tuple("" if v is None else str(v) for v in g))
        for i in range(0, len(starts), max_docs):
            piece = starts[i:i + max_docs]
            per = max(1, max_docs // len(piece))
            for j in range(0, len(groups), per):
                chunk = groups[j:j + per]
                searches.append({
                    "size": len(piece) * len(chunk),
                    "track_total_hits": False,
                    "_source": list(read_fields),
                    "query": {"bool": {"filter": [
                        {"term": {"window.size": window_name}},
                        {"terms": {"window.start": [format_start(s) for s in piece]}},
                        _group_clause(group_by, chunk),
                    ]}},
                })
    return searches


def encode_msearch(alias, searches):
    lines = []
    for s in searches:
        lines.append(json.dumps({"index": alias, "ignore_unavailable": True}, separators=(",", ":")))
        lines.append(json.dumps(s, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _get(src, dotted):
    node = src
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class Cache:
    """Past values per (group, time of day of the window start): for each, the values
    of the look-back starts fetched, with the time fetched. Bounded: at most
    max_entries keys (LRU), and a key keeps only the starts fetched less than
    max_ttl ago (an older one is expired for every baseline; without this, a
    driver running for weeks added a start per key and day, for ever)."""

    def __init__(self, max_entries, max_ttl, clock=time.monotonic):
        self.max_entries = max(1, int(max_entries))
        self.max_ttl = max_ttl
        self.clock = clock
        self.entries = OrderedDict()

    def get(self, group, start, ttl):
        key = (group, start % 86400)
        e = self.entries.get(key)
        if e is None or start not in e:
            return False, None
        at, values = e[start]
        age = self.clock() - at
        if age >= self.max_ttl:
            del e[start]
        if age >= ttl:
            return False, None
        self.entries.move_to_end(key)
        return True, values

    def put(self, group, start, values):
        key = (group, start % 86400)
        e = self.entries.setdefault(key, {})
        now = self.clock()
        for s in [s for s, (at, _) in e.items() if now - at >= self.max_ttl]:
            del e[s]
        e[start] = (now, values)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class Baseliner:
    """Adds the baselines of one window size to a micro-batch's documents."""

    def __init__(self, client, spec, window, clock=time.monotonic, log=None, max_retries=3, sleep=time.sleep):
        self.client = client
        self.baselines = for_window(spec, window)
        if not self.baselines:
            raise ValueError(f"{spec['metric']}: no baseline for window {window['name']}")
        self.window = window["name"]
        self.group_by = list(spec["group_by"])
        self.alias = self.baselines[0]["read_alias"]
        fields = []
        for b in self.baselines:
            for f in b["read_fields"]:
                if f not in fields:
                    fields.append(f)
        self.read_fields = fields
        self.max_docs = min(int(b["max_docs_per_search"]) for b in self.baselines)
        self.max_searches = min(int(b["max_searches_per_request"]) for b in self.baselines)
        self.cache = Cache(min(int(b["cache_max_entries"]) for b in self.baselines),
                           max(int(b["cache_ttl_seconds"]) for b in self.baselines), clock)
        self.log = log or (lambda *a: None)
        self.max_retries = max_retries
        self.sleep = sleep
        self.retryable = Statuses(spec["retryable_statuses"])
        self.requests = 0  # _msearch requests made (for tests and logs)

    @classmethod
    def for_window(cls, client, spec, window, **kw):
        """A Baseliner, or None when no baseline applies to this window size."""
        return cls(client, spec, window, **kw) if for_window(spec, window) else None

    def apply(self, items):
        """items: (index, id, source JSON text or dict). Returns them with the baseline
        objects merged into the sources (JSON text)."""
        docs = []
        for index, doc_id, source in items:
            doc = json.loads(source) if isinstance(source, str) else dict(source)
            docs.append((index, doc_id, doc))
        overlay, wants = {}, {}
        for _, _, doc in docs:
            group = tuple(doc.get(g) for g in self.group_by)
            start = parse_start(doc["window"]["start"])
            overlay[(group, start)] = doc
        for _, _, doc in docs:
            group = tuple(doc.get(g) for g in self.group_by)
            start = parse_start(doc["window"]["start"])
            for b in self.baselines:
                ttl = int(b["cache_ttl_seconds"])
                for s in lookback_starts(start, b):
                    if (group, s) not in overlay:
                        wants.setdefault((group, s), ttl)
                        wants[(group, s)] = min(wants[(group, s)], ttl)
        history = self.history(wants)
        out = []
        for index, doc_id, doc in docs:
            group = tuple(doc.get(g) for g in self.group_by)
            start = parse_start(doc["window"]["start"])
            for b in self.baselines:
                past = []
                for s in lookback_starts(start, b):
                    src = overlay.get((group, s)) or history.get((group, s))
                    past.append(_get(src, b["output"]) if src is not None else None)
                merge(doc, b, evaluate(doc.get(b["output"]), past, b))
            out.append((index, doc_id, json.dumps(doc, separators=(",", ":"), allow_nan=False)))
        return out

    def history(self, wants):
        """wants: {(group, start): cache ttl}. Returns {(group, start): _source} for the
        documents found (from the cache or one _msearch)."""
        found, fetch = {}, {}
        for (group, start), ttl in wants.items():
            if ttl > 0:
                hit, src = self.cache.get(group, start, ttl)
                if hit:
                    if src is not None:
                        found[(group, start)] = src
                    continue
            fetch.setdefault(group, set()).add(start)
        if not fetch:
            return found
        searches = plan_searches(fetch, self.group_by, self.window, self.read_fields, self.max_docs)
        got = {}
        for i in range(0, len(searches), self.max_searches):
            for answer in self._msearch(searches[i:i + self.max_searches]):
                for hit in (answer.get("hits") or {}).get("hits") or []:
                    src = hit.get("_source") or {}
                    start = _get(src, "window.start")
                    if start is None:
                        continue
                    got[(tuple(_get(src, g) for g in self.group_by), parse_start(start))] = src
        for group, starts in fetch.items():
            for s in starts:
                src = got.get((group, s))
                if src is not None:
                    found[(group, s)] = src
                if wants[(group, s)] > 0:
                    self.cache.put(group, s, src)
        return found

    def _msearch(self, searches):
        body = encode_msearch(self.alias, searches)
        delay = 0.2
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                answer = self.client.request("POST", "/_msearch", body, "application/x-ndjson")
            except urllib.error.HTTPError as e:
                if e.code not in self.retryable or attempt == self.max_retries:
                    raise BaselineError(f"baseline read of {len(searches)} searches from {self.alias}: HTTP {e.code}") from e
            except (urllib.error.URLError, OSError) as e:
                if attempt == self.max_retries:
                    raise BaselineError(f"baseline read from {self.alias}: {e}") from e
            else:
                responses = answer.get("responses") or []
                if len(responses) != len(searches):
                    raise BaselineError(f"baseline read from {self.alias}: {len(responses)} answers to {len(searches)} searches")
                for r in responses:
                    if r.get("error") and r.get("status") != 404:
                        raise BaselineError(f"baseline read from {self.alias}: {r.get('status')} {r['error']}")
                return responses
            self.log(f"baseline read from {self.alias}: retrying in {delay:.1f}s")
            self.sleep(delay)
            delay = min(delay * 2, 5)
        raise BaselineError("baseline read: unreachable")
