"""Progress that never goes silent (issue 15): a long step reports its label, elapsed time and counts while it runs.

The slow step is a real child process (``python -c``) that sleeps and prints pip- and ninja-like lines; the
heartbeat's interval is set small so the test stays fast.
"""

from __future__ import annotations

import io
import itertools
import re
import sys
import time
from pathlib import Path

import pytest

from aipc.heartbeat import CMakeCounter, Heartbeat, NinjaCounter, PipCounter, UvCounter, is_live
from aipc.log import Log
from aipc.proc import stream
from aipc.runner import Command, Step, execute
from conftest import assert_one_line_error, run_aipc

# 1.6 s of output: 8 pip "Collecting" lines, then ninja steps [1/10]..[3/10], one line every 0.1-0.2 s
SLOW_CHILD = """
import sys, time
for i in range(8):
    print(f"Collecting pkg{i}>=1.0", flush=True)
    if i % 2:
        print(f"  Downloading pkg{i}-1.0-py3-none-any.whl (12 kB)", flush=True)
    time.sleep(0.1)
for n in range(1, 4):
    print(f"[{n}/10] Building CXX object foo{n}.o", flush=True)
    time.sleep(0.2)
time.sleep(0.3)
"""
INTERVAL = 0.2


class Recorder:
    """An echo that keeps each line with the time it was said."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    def beats(self) -> list[tuple[float, str]]:
        return [(t, ln) for t, ln in self.lines if ln.startswith("[aipc]   ... ")]


def test_a_long_step_reports_at_least_every_interval_with_its_counts(tmp_path: Path) -> None:
    echo = Recorder()
    hb = Heartbeat("fake install", echo, interval=INTERVAL, live=False)
    t0 = time.monotonic()
    with (tmp_path / "log.txt").open("w", encoding="utf-8") as log:
        done = stream([sys.executable, "-c", SLOW_CHILD], cwd=None, env=None, log=log, heartbeat=hb)
    t1 = time.monotonic()
    assert done.returncode == 0
    beats = echo.beats()
    # the child ran ~1.6 s: a heartbeat every 0.2 s gives ~8 lines; a loaded machine may delay a few
    assert len(beats) >= 4, echo.lines
    times = [t0, *(t for t, _ in beats)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < INTERVAL * 6, gaps  # never silent for long (generous for a busy 2-core machine)
    assert t1 - beats[-1][0] < INTERVAL * 6  # and not silent at the end either
    assert all(re.match(r"\[aipc\]   \.\.\. fake install: \d+ s", ln) for _, ln in beats), beats
    # the counts follow the child's output: pip's packages first, ninja's steps once they come
    assert "8 packages collected, 4 downloaded" in beats[-1][1]
    assert "step 3/10" in beats[-1][1]
    assert any("packages collected" in ln and "step" not in ln for _, ln in beats), beats
    assert hb.lines == 8 + 4 + 3
    # the heartbeat stopped with the child: nothing more is said afterwards
    n = len(echo.lines)
    time.sleep(INTERVAL * 2)
    assert len(echo.lines) == n


def test_a_quiet_child_still_gets_heartbeats(tmp_path: Path) -> None:
    """No output at all (the NPU wheel build under pip): the label and the elapsed time still come."""
    echo = Recorder()
    with (tmp_path / "log.txt").open("w", encoding="utf-8") as log:
        stream([sys.executable, "-c", "import time; time.sleep(1.0)"], cwd=None, env=None, log=log,
               heartbeat=Heartbeat("build npu wheel", echo, interval=INTERVAL, live=False))
    beats = echo.beats()
    assert len(beats) >= 2, echo.lines
    assert beats[-1][1].startswith("[aipc]   ... build npu wheel: ")
    assert beats[-1][1].endswith(" s")  # no counts to show


def test_runner_labels_progress_with_the_step_not_the_command_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPC_PROGRESS_INTERVAL", str(INTERVAL))
    echo = Recorder()
    step = Step("export-x", "export openvino int4 of tiny-phi3",
                [Command.make([sys.executable, "-c", SLOW_CHILD], tmp_path)])
    execute(step, tmp_path / "logs", echo)
    beats = echo.beats()
    assert len(beats) >= 4, echo.lines
    assert all(ln.startswith("[aipc]   ... export openvino int4 of tiny-phi3: ") for _, ln in beats), echo.lines
    assert "step 3/10" in beats[-1][1]


def test_live_terminal_status_is_redrawn_in_place_and_cleared() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    log = Log(out, ci=False)
    mp = pytest.MonkeyPatch()
    mp.delenv("CI", raising=False)
    mp.delenv("GITHUB_ACTIONS", raising=False)
    try:
        assert log.is_live() and is_live(log)
        hb = Heartbeat("venv genai: installing torch 2.13.0", log, interval=5.0)
        assert hb.live
        hb.feed("Collecting torch==2.13.0")
        hb.beat()
        log("[aipc] next line")
        hb.beat()
        hb.stop()
        mp.setenv("CI", "true")
        assert not log.is_live()  # a CI log gets lines, never carriage returns
    finally:
        mp.undo()
    text = out.getvalue()
    assert text.count("\r\x1b[2K[aipc]   ... venv genai: installing torch 2.13.0: 0 s, 1 package collected") == 2
    assert "\r\x1b[2K[aipc] next line\n" in text  # the status line is replaced, not left behind
    assert text.endswith("\r\x1b[2K")  # stopped: the status is cleared


def test_counters_parse_pip_uv_ninja_and_cmake() -> None:
    pip = PipCounter()
    for line in ["Collecting a", "  Downloading a-1.whl (1 kB)", "Collecting b", "Requirement already satisfied: c"]:
        pip.feed(line)
    assert pip.summary() == "2 packages collected, 1 downloaded, 1 already there"
    pip.feed("Installing collected packages: b, a")
    assert pip.summary() == "installing 2 packages"
    pip.feed("Successfully installed a-1 b-2")
    assert pip.summary() == "2 packages installed"

    uv = UvCounter()
    assert uv.summary() == ""
    uv.feed("Resolved 37 packages in 1.20s")
    assert uv.summary() == "37 packages resolved"
    uv.feed("Prepared 5 packages in 300ms")
    assert uv.summary() == "5 packages prepared"
    uv.feed(" + torch==2.13.0")
    assert uv.summary() == "1 package installed"

    ninja = NinjaCounter()
    ninja.feed("ninja: Entering directory `build'")
    assert ninja.summary() == ""
    ninja.feed("[12/345] Building CXX object x.o")
    assert ninja.summary() == "step 12/345"

    cmake = CMakeCounter()
    cmake.feed("[ 45%] Building CXX object y.o")
    assert cmake.summary() == "45 %"
    cmake.feed("[100%] Linking")
    assert cmake.summary() == "100 %"


def test_a_bad_progress_interval_is_one_line() -> None:
    proc = run_aipc("pins", env={"AIPC_PROGRESS_INTERVAL": "0"})
    assert_one_line_error(proc.returncode, proc.stderr, "AIPC_PROGRESS_INTERVAL='0'", code=2, alone=True)


def test_a_long_bench_target_reports_while_its_worker_measures(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from aipc.bench import run as bench_run
    from aipc.bench.targets import Settings, check_settings, targets
    from test_bench import fake_result, fake_services

    monkeypatch.setenv("AIPC_PROGRESS_INTERVAL", str(INTERVAL))

    def slow_worker(python: Path, worker: Path, req: dict[str, object], timeout: float, **_: object) -> object:
        if req.get("noop") or req.get("probe"):
            return {"status": "pass"}
        time.sleep(1.0)
        return fake_result(req)  # type: ignore[arg-type]

    s = check_settings(Settings(tiny=False))
    opts = bench_run.BenchOptions(settings=s, targets=targets(("genai",), ("cpu",), s), model=tmp_path,
                                  cache=tmp_path, services=fake_services(tmp_path, slow_worker))
    echo = Recorder()
    entry, = bench_run.run_bench(opts, echo=echo)["targets"]
    assert entry["status"] == "pass"
    beats = echo.beats()
    assert len(beats) >= 2 and all(ln.startswith(f"[aipc]   ... bench {opts.targets[0].key}: ") for _, ln in beats)
