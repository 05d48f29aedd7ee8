"""The dependency-graph executor (aipc.dag): order, bound, failure propagation, tasks added while running, the
critical path, and an interrupt that never hangs. Fast: tasks are short sleeps."""

from __future__ import annotations

import _thread
import signal
import threading
import time
from pathlib import Path

import pytest

from aipc.dag import BLOCKED, DONE, FAILED, Dag, default_workers
from aipc.errors import AipcError


def test_dependencies_run_first_and_independent_tasks_overlap() -> None:
    dag = Dag(workers=4)
    spans: dict[str, tuple[float, float]] = {}
    lock = threading.Lock()

    def step(name: str, secs: float) -> None:
        t0 = time.monotonic()
        time.sleep(secs)
        with lock:
            spans[name] = (t0, time.monotonic())

    dag.add("venv-a", lambda: step("venv-a", 0.2))
    dag.add("venv-b", lambda: step("venv-b", 0.2))
    dag.add("export", lambda: step("export", 0.05), ["venv-a"])
    dag.add("smoke", lambda: step("smoke", 0.05), ["export", "venv-b"])
    dag.run()
    assert all(t.state == DONE for t in dag.tasks.values())
    assert spans["export"][0] >= spans["venv-a"][1]
    assert spans["smoke"][0] >= max(spans["export"][1], spans["venv-b"][1])
    assert spans["venv-b"][0] < spans["venv-a"][1]  # the two venvs ran at once
    assert dag.max_heavy == 2


def test_the_bound_holds_for_heavy_tasks_only() -> None:
    dag = Dag(workers=2)
    running = [0]
    most = [0]
    lock = threading.Lock()

    def heavy() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    for i in range(6):
        dag.add(f"h{i}", heavy)
    light_started = threading.Event()
    dag.add("light", light_started.set, heavy=False)
    dag.run()
    assert most[0] == 2 and dag.max_heavy == 2
    assert light_started.is_set()


def test_a_failure_blocks_its_dependents_with_the_root_reason_and_the_rest_runs() -> None:
    dag = Dag(workers=2)
    seen: list[str] = []
    ran: list[str] = []

    def boom() -> None:
        raise AipcError("venv install failed: no network")

    dag.add("venv", boom)
    dag.add("export", lambda: ran.append("export"), ["venv"])
    dag.add("smoke", lambda: ran.append("smoke"), ["export"], on_blocked=lambda exc: seen.append(str(exc)))
    dag.add("other", lambda: ran.append("other"))
    t0 = time.monotonic()
    dag.run()
    assert time.monotonic() - t0 < 5  # nothing waits on the failed input
    assert ran == ["other"]
    assert dag.tasks["venv"].state == FAILED
    assert [dag.tasks[k].state for k in ("export", "smoke")] == [BLOCKED, BLOCKED]
    assert dag.tasks["smoke"].cause == "venv" and seen == ["venv install failed: no network"]


def test_tasks_added_while_running_and_shared_inputs_run_once() -> None:
    dag = Dag(workers=2)
    calls: list[str] = []

    def decide() -> None:  # e.g. the device decision adds the exports its rows need
        for row in ("a", "b", "c"):
            dag.add("export:int4" if row != "c" else "export:fp32", lambda: calls.append("export"), ["decide"])
        dag.add("smoke", lambda: calls.append("smoke"), ["export:int4", "export:fp32"])

    dag.add("decide", decide, heavy=False)
    dag.run()
    assert calls == ["export", "export", "smoke"]
    assert set(dag.tasks) == {"decide", "export:int4", "export:fp32", "smoke"}


def test_critical_path_uses_own_clocks() -> None:
    dag = Dag(workers=4)
    dag.add("venv", lambda: time.sleep(0.05))
    dag.add("build", lambda: time.sleep(0.15))
    dag.add("smoke", lambda: 2.5, ["venv"], own=lambda secs: secs)  # the worker's own clock: 2.5 s
    dag.add("smoke-npu", lambda: None, ["build"])
    dag.run()
    seconds, chain = dag.critical_path()
    assert chain == ["venv", "smoke"]
    assert seconds == pytest.approx(dag.tasks["venv"].seconds + 2.5)
    assert dag.total() == pytest.approx(sum(t.weight for t in dag.tasks.values()))
    assert dag.tasks["smoke"].weight == 2.5


def test_unknown_dependency_and_bad_bound_are_refused() -> None:
    dag = Dag(workers=1)
    with pytest.raises(KeyError, match="unknown task"):
        dag.add("x", lambda: None, ["nope"])
    with pytest.raises(ValueError, match="at least 1"):
        Dag(workers=0)
    assert default_workers() >= 1


def test_an_interrupt_stops_new_starts_and_does_not_hang() -> None:
    """Ctrl-C arrives in the main thread while it waits: no task starts afterwards, the running ones get a moment
    (their process trees are killed by aipc.interrupts) and the run raises instead of waiting for them."""
    dag = Dag(workers=1, unwind=0.3)
    started: list[str] = []
    release = threading.Event()

    def hang() -> None:
        started.append("hang")
        release.wait(30)

    dag.add("hang", hang)
    dag.add("next", lambda: started.append("next"))
    # a shell starts a background job with SIGINT ignored, and Python then installs no handler: interrupt_main
    # would do nothing there (as in `.ci/run &`), so the test sets Python's own handler for its duration
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.2, _thread.interrupt_main).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            dag.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 5
    assert started == ["hang"]
    release.set()
    time.sleep(0.1)
    assert started == ["hang"]  # the freed slot started nothing


@pytest.mark.skipif(not hasattr(__import__("os"), "wait4"), reason="CPU of children: POSIX wait4")
def test_each_task_gets_the_cpu_of_its_own_commands(tmp_path: Path) -> None:
    """Two tasks at once, one burning CPU in a child, one sleeping in a child: each is charged its own."""
    import io
    import sys

    from aipc.proc import stream

    def run(code: str) -> None:
        stream([sys.executable, "-c", code], cwd=tmp_path, env=None, log=io.StringIO())

    dag = Dag(workers=2)
    dag.add("burn", lambda: run("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"))
    dag.add("sleep", lambda: run("import time; time.sleep(0.4)"))
    dag.run()
    burn, sleep = dag.tasks["burn"].cpu_seconds, dag.tasks["sleep"].cpu_seconds
    assert burn is not None and sleep is not None
    assert burn >= 0.4 and sleep < 0.3, (burn, sleep)


def test_the_longest_chain_of_work_starts_first() -> None:
    """One slot, two ready tasks: the one heading the longer chain (by estimates) goes first though added last."""
    dag = Dag(workers=1)
    order: list[str] = []
    dag.add("short", lambda: order.append("short"), estimate=5)
    dag.add("long", lambda: order.append("long"), estimate=2)
    dag.add("after-long", lambda: order.append("after-long"), ["long"], estimate=10)  # long's chain: 12
    dag.add("light", lambda: order.append("light"), heavy=False, estimate=0)
    dag.run()
    assert order.index("long") < order.index("short")
    assert order.index("after-long") > order.index("long")
