"""The progress reporter: lines at start, at most every `every` seconds and at the end, with the
rate since it started and the ETA it implies; the clock is injected, so nothing sleeps."""
import logging

import pytest

from interplab.progress import Progress, duration, quantity


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "interplab.progress"]


def test_start_line_then_silence_until_the_interval_passes(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("caching", 1000, "tokens", every=10.0, clock=clock)
        clock.now += 9.9
        assert not progress.due(200)
        assert not progress.update(200)
    assert messages(caplog) == ["caching: starting at 0/1,000 tokens (0.0%)"]
    assert progress.done == 200, "a silent update still records the count"


def test_a_short_job_logs_rate_and_eta_at_each_quarter(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("measuring", 1000, "tokens", every=10.0, clock=clock)
        written = []
        for done in range(100, 1001, 100):
            clock.now += 0.5
            written.append(progress.update(done))
        progress.finish()
    assert written == [False, False, True, False, True, False, False, True, False, False]  # past 250, 500, 750
    assert messages(caplog)[1] == "measuring: 300/1,000 tokens (30.0%), 200 tokens/s, ETA 4s, elapsed 2s"
    assert len(messages(caplog)) == 5, "start, three quarters, finish"


def test_line_after_the_interval_has_rate_eta_and_note(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("SAE training", 40_000, "tokens", every=10.0, clock=clock)
        clock.now += 10.0
        assert progress.due()
        assert progress.update(10_000, note="mse 0.1")
    assert messages(caplog)[-1] == ("SAE training: 10,000/40,000 tokens (25.0%), 1,000 tokens/s, ETA 30s, "
                                    "elapsed 10s; mse 0.1")


def test_interval_counts_from_the_last_line(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("toy", 100, "steps", every=10.0, clock=clock)
        clock.now += 12
        assert progress.update(10)
        clock.now += 8  # 20 s since start, 8 since the last line
        assert not progress.update(20)
        clock.now += 2
        assert progress.update(30)
    assert len(messages(caplog)) == 3


def test_force_writes_a_line_inside_the_interval(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("distill", 8, "steps", every=10.0, clock=clock)
        clock.now += 2
        assert progress.update(4, note="held-out 1.5", force=True)
    assert messages(caplog)[-1] == "distill: 4/8 steps (50.0%), 2 steps/s, ETA 2s, elapsed 2s; held-out 1.5"


def test_resumed_rate_counts_only_work_done_here(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("grok", 1000, "epochs", done=600, every=5.0, clock=clock)
        clock.now += 100
        progress.update(700)
    first, line = messages(caplog)
    assert first == "grok: starting at 600/1,000 epochs (60.0%)"
    assert "1 epochs/s, ETA 5m00s, elapsed 1m40s" in line


def test_no_work_yet_means_no_eta(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("kd", 10, "tokens", every=0.0, clock=clock)
        progress.update(0)
        clock.now += 1
        progress.update(0)
    assert messages(caplog)[1:] == ["kd: 0/10 tokens (0.0%), 0 tokens/s, ETA unknown, elapsed 0s",
                                    "kd: 0/10 tokens (0.0%), 0 tokens/s, ETA unknown, elapsed 1s"]


def test_track_counts_each_item_as_it_is_handed_on(clock, caplog):
    progress = Progress("kd", 12, "tokens", every=10.0, clock=clock)
    seen = []
    for item in progress.track([[1, 2, 3], [4, 5], [6] * 7], size=len):
        seen.append((len(item), progress.done))
    assert seen == [(3, 0), (2, 3), (7, 5)], "an item is counted once the consumer has finished with it"
    assert progress.done == 12


def test_finish_reports_the_mean_rate(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("cache", 3000, "tokens", every=10.0, clock=clock)
        clock.now += 3723
        progress.update(3000)
        progress.finish("2 layers")
    assert messages(caplog)[-1] == "cache: finished 3,000/3,000 tokens (100.0%) in 1h02m03s (0.806 tokens/s); 2 layers"


def test_finish_takes_the_final_count_from_loops_that_update_only_when_due(clock, caplog):
    with caplog.at_level(logging.INFO):
        progress = Progress("toy", 2000, "steps", every=10.0, clock=clock)
        clock.now += 4
        progress.finish("converged early", done=1200)
    assert messages(caplog)[-1] == "toy: finished 1,200/2,000 steps (60.0%) in 4s (300 steps/s); converged early"


def test_interval_from_the_environment(clock, monkeypatch):
    monkeypatch.setenv("INTERPLAB_PROGRESS_SECONDS", "0.5")
    assert Progress("x", 1, "steps", clock=clock).every == 0.5
    monkeypatch.delenv("INTERPLAB_PROGRESS_SECONDS")
    assert Progress("x", 1, "steps", clock=clock).every == 10.0


def test_zero_total_has_no_percentage(clock, caplog):
    with caplog.at_level(logging.INFO):
        Progress("empty", 0, "tokens", clock=clock).finish()
    assert messages(caplog)[-1] == "empty: finished 0/0 tokens in 0s (0 tokens/s)"


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (7.4, "7s"), (63, "1m03s"), (3600, "1h00m00s"),
                                           (4023.2, "1h07m03s")])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("value, text", [(1234567.8, "1,234,568"), (100, "100"), (45.678, "45.7"), (0.1234, "0.123")])
def test_quantity(value, text):
    assert quantity(value) == text
