import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hourglass_jobs.late import LateTracker, is_late  # noqa: E402

MIN = 60_000


def test_watermark_follows_previous_batches():
    t = LateTracker(10 * MIN)
    assert t.record(0, 100 * MIN) == 0            # nothing is late before any data
    assert t.watermark_for(1) == 90 * MIN
    assert t.record(1, 95 * MIN) == 90 * MIN
    assert t.watermark_for(2) == 90 * MIN          # max stays 100
    assert t.record(2, None) == 90 * MIN           # an empty batch changes nothing
    assert t.record(3, 130 * MIN) == 90 * MIN
    assert t.watermark_for(4) == 120 * MIN


def test_replayed_batch_gets_the_same_watermark():
    t = LateTracker(10 * MIN)
    t.record(0, 100 * MIN)
    t.record(1, 200 * MIN)
    again = LateTracker.loads(t.dumps(), 10 * MIN)
    assert again.watermark_for(1) == 90 * MIN      # as the first time, not 190
    assert again.record(1, 200 * MIN) == 90 * MIN
    assert again.watermark_for(2) == 190 * MIN


def test_history_is_bounded():
    t = LateTracker(MIN)
    for b in range(100):
        t.record(b, b * MIN)
    assert len(t.history) == 32
    assert t.watermark_for(100) == 98 * MIN


def test_is_late_compares_window_end():
    wm = 130 * MIN  # 02:10
    at = lambda minutes, seconds=0: (minutes * 60 + seconds) * 1_000_000
    assert is_late(at(129, 30), 60, wm)            # 1m window ends 02:10 <= watermark
    assert not is_late(at(130, 0), 60, wm)         # ends 02:11
    assert not is_late(at(125), 3600, wm)          # 1h window 02:00-03:00
    assert is_late(at(119), 3600, wm)              # 01:00-02:00
