"""Bulk upserts to Elasticsearch 8 / OpenSearch 2 over plain HTTP (urllib).

Documents are written with the bulk `index` action and a deterministic _id, so a
replayed micro-batch or a late update replaces the document, never duplicates it.
A batch is only reported done when every item succeeded: retryable failures (the
statuses the job spec lists in retryable_statuses: Go's internal/retry classification,
429 and 5xx; connection errors) are retried with backoff, anything else raises, which
fails the micro-batch so Spark replays it after a restart (never silent loss)."""

import base64
import json
import time
import urllib.error
import urllib.request



class Statuses:
    """HTTP statuses given as inclusive ranges, [{"from": 429, "to": 429}, ...]: the job
    spec's retryable_statuses. This module has no list of its own."""

    def __init__(self, ranges):
        self.ranges = tuple((int(r["from"]), int(r["to"])) for r in ranges)
        if not self.ranges or any(lo > hi for lo, hi in self.ranges):
            raise ValueError(f"status ranges {ranges!r}")

    def __contains__(self, status):
        return any(lo <= status <= hi for lo, hi in self.ranges)

    def __repr__(self):
        return "Statuses(" + ", ".join(f"{lo}-{hi}" for lo, hi in self.ranges) + ")"


class BulkError(RuntimeError):
    pass


def encode_bulk(items):
    """items: (index, id, source JSON text or dict). Returns the NDJSON body (bytes)."""
    lines = []
    for index, doc_id, source in items:
        lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}, separators=(",", ":")))
        if not isinstance(source, str):
            source = json.dumps(source, separators=(",", ":"), allow_nan=False)
        if "\n" in source:
            source = json.dumps(json.loads(source), separators=(",", ":"))
        lines.append(source)
    return ("\n".join(lines) + "\n").encode("utf-8")


def failed_items(answer, retryable):
    """(retryable, permanent) failed items of a bulk answer; retryable: Statuses."""
    retry, perm = [], []
    for i, item in enumerate(answer.get("items", [])):
        (op, res), = item.items()
        status = res.get("status", 0)
        if status < 300:
            continue
        entry = (i, status, res.get("_index"), res.get("_id"), res.get("error"))
        (retry if status in retryable else perm).append(entry)
    return retry, perm


class Client:
    """retryable: the HTTP statuses worth another attempt (Statuses, from the specs)."""

    def __init__(self, url, username=None, password=None, timeout=60, max_bytes=5 << 20,
                 max_retries=8, log=None, *, retryable):
        self.url = url.rstrip("/")
        self.retryable = retryable
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_retries = max_retries
        self.headers = {"Content-Type": "application/x-ndjson"}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = "Basic " + token
        self.log = log or (lambda *a: None)

    def request(self, method, path, body=None, content_type="application/json"):
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        headers = dict(self.headers, **{"Content-Type": content_type})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=self.timeout) as res:
            return json.loads(res.read() or b"{}")

    def bulk(self, items):
        """Writes items ((index, id, source)) in requests of at most max_bytes; returns
        the number of documents written."""
        chunk, size, n = [], 0, 0
        for it in items:
            line = len(it[2]) + 200 if isinstance(it[2], str) else 1000
            if chunk and size + line > self.max_bytes:
                n += self._bulk_chunk(chunk)
                chunk, size = [], 0
            chunk.append(it)
            size += line
        if chunk:
            n += self._bulk_chunk(chunk)
        return n

    def _bulk_chunk(self, items):
        pending = list(items)
        delay = 0.2
        for attempt in range(self.max_retries + 1):
            try:
                answer = self.request("POST", "/_bulk", encode_bulk(pending), "application/x-ndjson")
            except urllib.error.HTTPError as e:
                if e.code not in self.retryable or attempt == self.max_retries:
                    raise BulkError(f"bulk of {len(pending)} documents: HTTP {e.code}: {e.read()[:500]!r}") from e
                self.log(f"bulk: HTTP {e.code}, retrying in {delay:.1f}s")
            except (urllib.error.URLError, OSError) as e:
                if attempt == self.max_retries:
                    raise BulkError(f"bulk of {len(pending)} documents: {e}") from e
                self.log(f"bulk: {e}, retrying in {delay:.1f}s")
            else:
                retry, perm = failed_items(answer, self.retryable)
                if perm:
                    i, status, index, doc_id, err = perm[0]
                    raise BulkError(f"bulk of {len(pending)} documents: {len(perm)} failed permanently, "
                                    f"first {index}/{doc_id}: {status} {err}")
                if not retry:
                    return len(items)
                pending = [pending[i] for i, *_ in retry]
                if attempt == self.max_retries:
                    raise BulkError(f"bulk: {len(pending)} documents still rejected after {attempt} retries")
                self.log(f"bulk: {len(pending)} documents rejected with {retry[0][1]}, retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 10)
        raise BulkError("bulk: unreachable")

    def index(self, index, doc_id, doc):
        self.bulk([(index, doc_id, doc)])
