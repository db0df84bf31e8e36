"""The benchmark's own measuring tools (tests/bench/), checked on signals whose answer is known.

The benchmarks themselves are a command, not tests; these make sure the rulers they use are right.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from tests.bench import clicks
from tests.bench.procstat import CostMeter
from tests.bench.report import Report, Row
from tests.bench.stats import Sample, ratio


def test_click_round_trip_is_found_to_the_sample_under_noise() -> None:
    train, onsets = clicks.click_train(5, 1.0, lead_s=0.5)
    delay = 19_213  # samples: 400.27 ms
    heard = np.zeros(len(train) + 48_000)
    heard[:len(train)] += train
    heard[delay:delay + len(train)] += 0.25 * train  # the echo, 12 dB down
    heard += np.random.default_rng(7).normal(0, 200, heard.size)  # −44 dBFS of hiss
    heard = np.clip(heard, -32768, 32767).astype(np.int16)
    found = clicks.find_clicks(heard, clicks.click(), threshold=0.6, min_gap=2400)
    direct = [f for f in found if any(abs(f - o) <= 2 for o in onsets)]
    assert len(direct) == 5
    echoes = clicks.round_trip_ms(heard, direct, clicks.click(), window_s=0.9)
    assert len(echoes) == 5
    for delay_ms, level_db in echoes:
        assert abs(delay_ms - delay / 48) < 0.05
        assert abs(level_db - (-12.04)) < 0.5


def test_silence_does_not_match_the_click() -> None:
    heard = np.zeros(96_000, dtype=np.int16)
    heard[10_000:10_003] = 1  # a few LSBs: digital silence must not look like a perfect match
    assert clicks.find_clicks(heard, clicks.click(), threshold=0.3, min_gap=2400) == []


def test_cost_meter_sees_a_busy_process_and_an_idle_one() -> None:
    # Both say when they run their loop, outlast the measuring window (60 s at most) and are ended
    # once it is measured. Half a second is 50 ticks of the kernel's CPU clock for a whole core.
    ready = "import time, sys\nprint(flush=True)\nt = time.time()\n"
    busy = subprocess.Popen([sys.executable, "-c", ready + "while time.time() - t < 60: pass"], stdout=subprocess.PIPE)
    idle = subprocess.Popen([sys.executable, "-c", ready + "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        for proc in (busy, idle):
            assert proc.stdout is not None and proc.stdout.readline() == b"\n"
        meters = [CostMeter(busy.pid), CostMeter(idle.pid)]
        for meter in meters:
            meter.start()
        time.sleep(0.5)  # a window: what the meters measure
        busy_window, idle_window = (meter.stop() for meter in meters)
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
    # A loaded machine (CI's, a laptop's) gives the spinning process much less than a core, so the
    # check is the contrast, not an absolute share.
    assert busy_window.cpu_percent > 10 * max(idle_window.cpu_percent, 1.0), (busy_window, idle_window)
    assert idle_window.cpu_percent < 10
    assert 5 < idle_window.peak_rss_mb < 100


def test_sample_text_ratio_and_report_misses() -> None:
    app, base = Sample.of([120, 100, 140], "ms"), Sample.of([100, 90, 110], "ms")
    assert app.text() == "120 ms (100–140, n=3)"
    assert ratio(app, base) == 1.2
    report = Report(command="python -m tests.bench")
    report.add(Row("1. Call setup", "x", app.text(), base.text(), "1.20×", "≤ 1.1×", False, "because"))
    report.add(Row("5. Start-up", "y", "1 ms", met=True))
    text = report.markdown()
    assert "| 1. Call setup | x | 120 ms (100–140, n=3) | 100 ms (90–110, n=3) | 1.20× | ≤ 1.1× | **no** |" in text
    assert "- **1. Call setup, x**: because" in text
    assert "Machine: " in text and "Command: `python -m tests.bench`" in text
