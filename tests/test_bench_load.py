"""The load test's write stream: what it sends and how it summarises a window with writes."""

from __future__ import annotations

import random

from benchmarks.load_test import SLOW_MS, Recorder, interaction_body, write_stream_summary
from sitegraph.api.schemas import InteractionCreate


def test_the_logged_interaction_is_valid_and_dated_now() -> None:
    body = interaction_body("site:a", random.Random(1))
    record = InteractionCreate.model_validate(body)
    assert record.site_id == "site:a" and record.channel == "call"
    assert record.note  # a note that tags a barrier, as a real call's would


def test_summary_counts_slow_seconds_and_the_recovery_after_each_write() -> None:
    rec = Recorder(started=100.0)
    # 6 seconds of reads: fast, then slow in seconds 2-3 (after a write at 2.1 s), fast again from 4
    for t in range(6):
        slow = t in (2, 3)
        for i in range(100):
            ms = (SLOW_MS * 4 if slow and i >= 90 else 5.0) / 1000
            rec.add("tactics", ms, True, at=100.0 + t + i / 200)
    rec.add("write", 0.02, True, at=102.1)
    rec.add("write", 0.02, False, "write: HTTP 500", at=104.5)
    out = write_stream_summary(rec, 6.0)
    assert out["reads"]["requests"] == 600 and out["reads"]["errors"] == 0
    assert out["writes"]["requests"] == 2 and out["writes"]["errors"] == 1
    assert [s["p99_ms"] for s in out["seconds"]] == [5.0, 5.0, SLOW_MS * 4, SLOW_MS * 4, 5.0, 5.0]
    assert out["slow_seconds"] == 2 and out["stalled_seconds"] == 0 and out["slow_share"] == round(2 / 6, 3)
    # the first write (in second 2) is followed by a slow second 3; reads are back under in second 4;
    # after the second write (second 4) the next second is already fast
    assert out["recovery_s"] == [2, 1]


def test_a_write_the_window_never_recovers_from_has_no_recovery() -> None:
    rec = Recorder(started=0.0)
    for t in range(3):
        rec.add("related", 0.5, True, at=t + 0.1)
    rec.add("write", 0.01, True, at=0.5)
    out = write_stream_summary(rec, 3.0)
    assert out["slow_seconds"] == 3 and out["stalled_seconds"] == 0 and out["recovery_s"] == [None]


def test_seconds_in_which_no_read_was_sent_count_as_stalled() -> None:
    """Every client waiting on a 3-second answer: the seconds in between see no request at all."""
    rec = Recorder(started=0.0)
    rec.add("write", 0.01, True, at=0.9)
    rec.add("tactics", 0.004, True, at=0.5)
    rec.add("tactics", 3.0, True, at=1.0)
    rec.add("tactics", 0.004, True, at=4.2)
    out = write_stream_summary(rec, 5.0)
    assert [s["requests"] for s in out["seconds"]] == [1, 1, 0, 0, 1]
    assert out["stalled_seconds"] == 2 and out["slow_seconds"] == 3
    assert out["recovery_s"] == [4]
