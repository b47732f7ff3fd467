"""Control-loop timing without ROS: grid jitter and missed ticks, percentiles, staleness, and the decision worker
that turns a slow decision into `wait` instead of a late or missed tick."""

import threading
import time

import numpy as np
import pytest

from anytouch_policy.control.ticks import DecisionWorker, RollingStats, TickMonitor, stale_inputs


def test_tick_monitor_measures_jitter_against_the_grid_and_counts_skipped_ticks():
    ticks = TickMonitor(0.2, origin_s=100.0)
    first = ticks.tick(100.203)
    assert first.index == 1 and first.jitter_s == pytest.approx(0.003) and first.missed == 0
    assert ticks.tick(100.401).jitter_s == pytest.approx(0.001)
    late = ticks.tick(101.005)  # ticks 3 and 4 never ran (a timer skips what it missed)
    assert late.index == 5 and late.missed == 2 and late.jitter_s == pytest.approx(0.005)
    assert ticks.tick(101.29).index == 6  # a tick a little early still takes the next grid slot
    assert ticks.ticks == 4 and ticks.missed == 2


def test_rolling_stats_keep_the_newest_window():
    stats = RollingStats(size=100)
    assert np.isnan(stats.percentiles(50)[0])
    for v in range(1000):
        stats.add(v)
    p50, p99, top = stats.percentiles(50, 99, 100)
    assert (p50, top) == (949.5, 999.0) and p99 == pytest.approx(998.01) and stats.count == 1000
    assert stats.summary(1000.0, "_ms")["max_ms"] == 999_000.0


def test_stale_inputs_name_missing_and_old_ones():
    now = 10_000_000_000
    assert stale_inputs({"a": now - 100_000_000, "b": now}, now, max_age_s=0.3) == {}
    out = stale_inputs({"a": now - 400_000_000, "b": None}, now, max_age_s=0.3)
    assert out == {"a": pytest.approx(0.4), "b": None}


class _Recorder:
    def __init__(self) -> None:
        self.items: list[tuple[float, object, bool]] = []
        self.event = threading.Event()

    def __call__(self, tick, result, late) -> None:
        self.items.append((tick, result, late))
        self.event.set()


def test_a_fast_decision_is_published_with_its_tick():
    out = _Recorder()
    worker = DecisionWorker(lambda job: job * 2, out, period_s=0.2)
    try:
        assert worker.submit(1.0, 21)
        assert out.event.wait(2)
        assert out.items == [(1.0, 42, False)] and worker.compute.count == 1
    finally:
        worker.stop()


def test_slow_decisions_become_wait_or_are_dropped_and_busy_ticks_are_reported():
    out = _Recorder()
    delays = iter([0.07, 0.25])  # period 0.1: over the 0.05 deadline; then longer than a whole period

    def decide(job):
        time.sleep(next(delays))
        return job

    worker = DecisionWorker(decide, out, period_s=0.1, deadline=0.5)
    try:
        assert worker.submit(1.0, "a")
        assert out.event.wait(2)
        assert out.items == [(1.0, "a", True)] and worker.late == 1  # late: the caller publishes wait instead
        assert worker.submit(2.0, "b")
        time.sleep(0.1)
        assert not worker.submit(2.1, "c")  # still busy at the next tick: that tick publishes wait itself
        time.sleep(0.3)
        assert len(out.items) == 1 and worker.dropped == 1 and worker.busy_ticks == 1  # b came after tick 2.1
    finally:
        worker.stop()


def test_a_failing_decision_is_handed_back_as_the_exception():
    out = _Recorder()

    def decide(job):
        raise ValueError("embedding of sensor 'left' has dimension 31, expected 32")

    worker = DecisionWorker(decide, out, period_s=0.2)
    try:
        worker.submit(3.0, None)
        assert out.event.wait(2)
        (tick, result, late), = out.items
        assert tick == 3.0 and isinstance(result, ValueError) and not late
    finally:
        worker.stop()
