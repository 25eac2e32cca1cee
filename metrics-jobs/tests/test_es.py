import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs import es  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "internal", "catalog", "testdata", "golden")


def retryable():
    """The retryable statuses of a rendered spec (Go's internal/retry)."""
    with open(os.path.join(GOLDEN, "spark-latency.json"), encoding="utf-8") as f:
        return es.Statuses(json.load(f)["retryable_statuses"])


def test_retryable_statuses_are_go_s():
    r = retryable()
    # internal/retry.RetryableStatus: 429 and every status from 500 up; 0 (no
    # answer) is a connection error here, retried on its own path.
    assert [s for s in range(100, 1000) if s in r] == [429, *range(500, 1000)]
    with pytest.raises(ValueError):
        es.Statuses([])


def test_encode_bulk_is_ndjson_with_ids():
    body = es.encode_bulk([("i-2026.01", "abc", '{"a":\n1}'), ("j", "d", {"b": 2})]).decode()
    lines = body.split("\n")
    assert lines[-1] == "" and len(lines) == 5
    assert json.loads(lines[0]) == {"index": {"_index": "i-2026.01", "_id": "abc"}}
    assert json.loads(lines[1]) == {"a": 1}
    assert json.loads(lines[3]) == {"b": 2}


def test_failed_items_split_retryable_from_permanent():
    answer = {"items": [
        {"index": {"status": 201}},
        {"index": {"status": 429, "_index": "i", "_id": "1"}},
        {"index": {"status": 400, "_index": "i", "_id": "2", "error": {"type": "strict_dynamic_mapping_exception"}}},
        {"index": {"status": 500, "_index": "i", "_id": "3"}},
        {"index": {"status": 409, "_index": "i", "_id": "4"}},
    ]}
    retry, perm = es.failed_items(answer, retryable())
    assert [r[0] for r in retry] == [1, 3]
    assert [p[0] for p in perm] == [2, 4]


class FakeES(BaseHTTPRequestHandler):
    """A fake bulk endpoint: rejects the first attempt of every doc with 429."""
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        lines = [json.loads(l) for l in body.strip().split("\n")]
        items = []
        for meta in lines[0::2]:
            doc_id = meta["index"]["_id"]
            status = 201 if doc_id in FakeES.seen else 429
            FakeES.seen.append(doc_id)
            items.append({"index": {"_id": doc_id, "status": status}})
        out = json.dumps({"errors": True, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_es():
    srv = HTTPServer(("127.0.0.1", 0), FakeES)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


def test_bulk_retries_rejected_items_only(fake_es):
    FakeES.seen = []
    c = es.Client(fake_es, max_retries=3, retryable=retryable())
    c._sleep = None
    assert c.bulk([("i", "a", "{}"), ("i", "b", "{}")]) == 2
    assert FakeES.seen == ["a", "b", "a", "b"]


def test_bulk_gives_up_on_permanent_errors():
    c = es.Client("http://127.0.0.1:9", max_retries=0, retryable=retryable())  # nothing listens on port 9
    with pytest.raises(es.BulkError):
        c.bulk([("i", "a", "{}")])
