"""The late-record rule and its replay-safe state.

Spark drops a record from a window aggregation when the window's end is at or before
the watermark, and never says which record it dropped (its numRowsDroppedByWatermark
counts partially aggregated groups, not records). So the job counts late records
itself, in a companion pass over the same topic, with Spark's rule:

    watermark(batch N) = max(event time seen in batches < N) - allowed lateness
                         (never decreasing; 0 before any data)
    a record is late for window size S when end of its S-window <= watermark

The state (watermark used by and max event time after each recent batch) lives beside
the query's checkpoint, so a replayed batch is classified exactly as the first time.
"""

import json

KEEP = 32  # recent batches remembered for replays


class LateTracker:
    def __init__(self, lateness_ms, history=None):
        self.lateness_ms = int(lateness_ms)
        # batch id -> (watermark used in the batch, max event time after the batch), ms
        self.history = {int(k): (int(v[0]), int(v[1])) for k, v in (history or {}).items()}

    def watermark_for(self, batch_id):
        """The watermark (ms) batch batch_id is classified with."""
        if batch_id in self.history:
            return self.history[batch_id][0]
        earlier = [b for b in self.history if b < batch_id]
        if not earlier:
            return 0
        wm, mx = self.history[max(earlier)]
        if mx <= 0:
            return wm
        return max(wm, mx - self.lateness_ms)

    def record(self, batch_id, batch_max_ms):
        """Remembers batch batch_id (whose max event time is batch_max_ms, or None when
        it had no rows) and returns the watermark it was classified with."""
        wm = self.watermark_for(batch_id)
        earlier = [b for b in self.history if b < batch_id]
        prev_max = self.history[max(earlier)][1] if earlier else 0
        mx = max(prev_max, int(batch_max_ms) if batch_max_ms is not None else 0)
        self.history[batch_id] = (wm, mx)
        for b in sorted(self.history)[:-KEEP]:
            del self.history[b]
        return wm

    def dumps(self):
        return json.dumps({"lateness_ms": self.lateness_ms,
                           "history": {str(b): list(v) for b, v in sorted(self.history.items())}})

    @classmethod
    def loads(cls, text, lateness_ms):
        if not text:
            return cls(lateness_ms)
        data = json.loads(text)
        return cls(lateness_ms, data.get("history", {}))


def is_late(event_micros, window_seconds, watermark_ms):
    """The rule, for tests and documentation: window end <= watermark."""
    us = window_seconds * 1_000_000
    end = event_micros - event_micros % us + us
    return end <= watermark_ms * 1000
