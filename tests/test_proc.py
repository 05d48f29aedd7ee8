"""The process layer, the logger, the table printer and stamps (issue 13: one implementation of each)."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aipc import proc
from aipc.log import Log, group
from aipc.proc import Output, describe_returncode, display, run, stream
from aipc.runner import Command, Runner, Step, format_plan, run_once
from aipc.stamps import Stamp, changed_output, digests, fingerprint, legacy_fingerprint, portable
from aipc.tables import format_table

# --- proc ---------------------------------------------------------------------------------------------------------

def test_run_reports_missing_programs_timeouts_and_exit_codes(tmp_path: Path) -> None:
    assert run(["no-such-program-aipc"]).error == "not found: no-such-program-aipc"
    missing_cwd = run([sys.executable, "-c", "pass"], cwd=tmp_path / "nope")
    assert missing_cwd.returncode is None and "does not exist" in (missing_cwd.error or "")
    slow = run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert slow.error == "timeout after 0.3 s" and not slow.ok
    failed = run([sys.executable, "-c", "import sys; print('x\\nfatal: bad ref', file=sys.stderr); "
                  "print('hint: retry', file=sys.stderr); sys.exit(128)"], cwd=tmp_path)
    assert failed.returncode == 128 and failed.reason() == "exit code 128: hint: retry"
    assert failed.last_line() == "fatal: bad ref"  # git's reason, not its advice
    assert Output(1, "", "one\nlast\n").last_line() == "last"
    assert run([sys.executable, "-c", "import os; print(os.environ['AIPC_X'])"], env={"AIPC_X": "7"}).stdout == "7\n"


def test_exit_codes_are_named() -> None:
    assert describe_returncode(-9) == "-9 (killed by signal 9, SIGKILL)"
    assert describe_returncode(-200) == "-200 (killed by signal 200)"
    assert describe_returncode(3221225477) == "3221225477 (0xC0000005)"  # Windows access violation
    assert describe_returncode(2) == "2" and describe_returncode(None) == "none"


def test_display_is_paste_safe_per_platform() -> None:
    argv = ["echo", "a$HOME b"]
    assert display(argv, "linux") == "echo 'a$HOME b'"
    assert display(argv, "windows") == 'echo "a$HOME b"'
    assert display(["a b", 'say "hi"'], "win32") == '"a b" "say \\"hi\\""'
    # pasted into sh, the POSIX form gives back the argv unchanged
    tricky = ["printf", "%s|", "it's", "$(rm -rf x)", "`x`", "*", ""]
    out = subprocess.run(["sh", "-c", display(tricky, "linux")], capture_output=True, text=True, check=True)
    assert out.stdout == "it's|$(rm -rf x)|`x`|*||"
    assert shlex.split(display(tricky, "linux")) == tricky


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX process groups")
def test_stream_logs_lines_and_kills_the_tree_on_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = io.StringIO()
    t0 = time.monotonic()
    res = stream([sys.executable, "-c", code], cwd=tmp_path, env=None, log=log, timeout=2.0)
    assert res.timed_out and res.returncode != 0 and time.monotonic() - t0 < 30
    assert "started" in log.getvalue() and res.tail == ("started",)
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_stream_returns_exit_code_and_tail(tmp_path: Path) -> None:
    log = io.StringIO()
    res = stream([sys.executable, "-c", "import sys\nfor i in range(30): print(i)\nsys.exit(4)"], cwd=tmp_path,
                 env={"X": "1"}, log=log, timeout=None, tail=3)
    assert res.returncode == 4 and not res.timed_out and res.tail == ("27", "28", "29")
    assert log.getvalue().splitlines()[0] == "0"
    with pytest.raises(FileNotFoundError):
        stream(["no-such-program-aipc"], cwd=tmp_path, env=None, log=log)


def test_new_group_kwargs_per_platform() -> None:
    """kill_tree's Windows branch (taskkill /T, then the child alone) is tested in test_verify."""
    assert proc.new_group_kwargs("linux") == {"start_new_session": True}
    assert "creationflags" in proc.new_group_kwargs("win32")


# --- log ----------------------------------------------------------------------------------------------------------

def test_log_folds_groups_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    ci = Log(out, ci=True)
    with ci.group("ort: build"):
        ci("line")
        with ci.group("inner"):  # groups do not nest in GitHub Actions
            ci("deeper")
    assert out.getvalue().splitlines() == ["::group::ort: build", "line", "[aipc] inner", "deeper", "::endgroup::"]

    out = io.StringIO()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    env_ci = Log(out)
    with env_ci.group("x"):
        pass
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    with env_ci.group("y"):
        pass
    monkeypatch.delenv("GITHUB_ACTIONS")
    with env_ci.group("z"):
        env_ci("done")
    assert out.getvalue().splitlines() == ["::group::x", "::endgroup::", "[aipc] y", "[aipc] z", "done"]


def test_group_through_a_plain_echo() -> None:
    lines: list[str] = []
    with group(lines.append, "step"):
        lines.append("body")
    assert lines == ["[aipc] step", "body"]


def test_log_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    Log(ci=False)("hello")
    assert capsys.readouterr().err == "hello\n"


# --- tables -------------------------------------------------------------------------------------------------------

def test_format_table_aligns_rules_and_wraps() -> None:
    text = format_table(["path", "status", "reason"], [["genai", "pass", ""], ["openvino-npu", "skip", "no NPU"]])
    assert text.splitlines() == [
        "path          status  reason",
        "------------  ------  ------",
        "genai         pass",
        "openvino-npu  skip    no NPU",
    ]
    assert format_table(None, [["a", 1], ["bb", 22]]) == "a   1\nbb  22"
    assert format_table(["k", "v"], [["a", "b"]], rule=False) == "k  v\na  b"
    wrapped = format_table(["k", "text"], [["x", "one two three four five six"]], wrap_last=10).splitlines()
    assert wrapped[2:] == ["x  one two", "   three four", "   five six"]
    assert format_table(None, []) == ""


# --- stamps -------------------------------------------------------------------------------------------------------

def test_portable_paths_under_a_root_only(tmp_path: Path) -> None:
    work = tmp_path / "w"
    material = {"out": work / "ort" / "x.whl", "argv": ["-DOUT=" + str(work / "b"), str(tmp_path / "w2" / "y")],
                "win": "C:\\w\\a", "same": str(work)}
    got = portable(material, {"WORKDIR": work, "WIN": "C:/w"})
    assert got == {"out": "${WORKDIR}/ort/x.whl", "argv": ["-DOUT=${WORKDIR}/b", str(tmp_path / "w2" / "y")],
                   "win": "${WIN}\\a", "same": "${WORKDIR}"}
    assert fingerprint({"p": str(work / "a")}, {"WORKDIR": work}) == fingerprint(
        {"p": str(tmp_path / "elsewhere" / "a")}, {"WORKDIR": tmp_path / "elsewhere"})
    assert legacy_fingerprint({"p": 1}) != fingerprint({"p": 2})


def test_stamp_versions_and_output_digests(tmp_path: Path) -> None:
    out = tmp_path / "w" / "out.txt"
    out.parent.mkdir()
    out.write_text("a", encoding="utf-8")
    roots = {"WORKDIR": tmp_path / "w"}
    stamp = Stamp(tmp_path / "w" / "state" / "s.stamp.json")
    assert stamp.read() is None and stamp.matches("f") is None
    stamp.write("f", digests=digests([out], roots))
    data = json.loads(stamp.path.read_text(encoding="utf-8"))
    assert data["version"] == 2 and list(data["digests"]) == ["${WORKDIR}/out.txt"]
    assert stamp.matches("f") == "current" and stamp.matches("g", legacy="f") is None
    assert changed_output(data["digests"], [out], roots) is None
    out.write_text("b", encoding="utf-8")
    assert changed_output(data["digests"], [out], roots) == out
    stamp.path.write_text(json.dumps({"fingerprint": "old"}), encoding="utf-8")  # version 1
    assert stamp.matches("new", legacy="old") == "legacy" and stamp.matches("new") is None
    stamp.path.write_text("{broken", encoding="utf-8")
    assert stamp.read() is None
    stamp.remove()
    assert not stamp.path.exists()


# --- the runner on these layers -------------------------------------------------------------------------------------

def _copy_step(work: Path) -> Step:
    """A step writing ``<work>/out/o.txt`` from ``<work>/in.txt``; its command names both by absolute path."""
    code = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
    out = work / "out" / "o.txt"
    return Step("copy", "copy in.txt", [Command.make([sys.executable, "-c", code, work / "in.txt", out], work / "out")],
                inputs={"source": str(work / "in.txt")}, outputs=[out])


def _workdir(root: Path) -> Path:
    work = root / "w"
    (work / "out").mkdir(parents=True)
    (work / "in.txt").write_text("data", encoding="utf-8")
    return work


def _runner(work: Path, lines: list[str] | None = None) -> Runner:
    return Runner(work / "state", work / "logs", echo=(lines.append if lines is not None else lambda s: None))


def test_a_workdir_moved_elsewhere_is_still_up_to_date(tmp_path: Path) -> None:
    work = _workdir(tmp_path / "a")
    assert _runner(work).run(_copy_step(work)).status == "ran"
    stamp = json.loads((work / "state" / "copy.stamp.json").read_text(encoding="utf-8"))
    assert stamp["version"] == 2 and stamp["outputs"] == ["${WORKDIR}/out/o.txt"]
    assert str(tmp_path) not in json.dumps(stamp)
    moved = tmp_path / "b" / "w"
    moved.parent.mkdir()
    work.rename(moved)
    assert _runner(moved).run(_copy_step(moved)).status == "skipped"
    (moved / "out" / "o.txt").write_text("tampered", encoding="utf-8")
    lines: list[str] = []
    assert _runner(moved, lines).run(_copy_step(moved)).status == "ran"  # a changed output reruns
    assert any("missing or changed" in ln for ln in lines)


def test_a_version_1_stamp_is_migrated_not_rerun(tmp_path: Path) -> None:
    """Stamps written before version 2 (absolute paths, maybe no digests) are kept: an ORT build costs hours."""
    work = _workdir(tmp_path)
    step = _copy_step(work)
    (work / "out" / "o.txt").write_text("built long ago", encoding="utf-8")
    v1 = {"fingerprint": step.legacy_fingerprint(), "outputs": [str(step.outputs[0])], "seconds": 3600.0}
    stamp_path = work / "state" / "copy.stamp.json"
    stamp_path.parent.mkdir()
    stamp_path.write_text(json.dumps(v1), encoding="utf-8")
    lines: list[str] = []
    assert _runner(work, lines).run(step).status == "skipped"
    assert any("stamp migrated" in ln for ln in lines)
    migrated = json.loads(stamp_path.read_text(encoding="utf-8"))
    assert migrated["version"] == 2 and migrated["seconds"] == 3600.0
    assert list(migrated["digests"]) == ["${WORKDIR}/out/o.txt"]
    assert (work / "out" / "o.txt").read_text(encoding="utf-8") == "built long ago"
    assert _runner(work).run(step).status == "skipped"  # now a plain version-2 stamp

    # a version-1 stamp of other inputs, or whose output is gone, runs the step as before
    stamp_path.write_text(json.dumps({**v1, "fingerprint": "0" * 64}), encoding="utf-8")
    assert _runner(work).run(step).status == "ran"
    stamp_path.write_text(json.dumps(v1), encoding="utf-8")
    (work / "out" / "o.txt").unlink()
    assert _runner(work).run(step).status == "ran"
    assert (work / "out" / "o.txt").read_text(encoding="utf-8") == "data"


def test_steps_are_groups_in_github_actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workdir(tmp_path)
    out = io.StringIO()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    Runner(work / "state", work / "logs", echo=Log(out)).run(_copy_step(work))
    lines = out.getvalue().splitlines()
    assert lines[0] == "::group::copy: copy in.txt" and lines[-1] == "::endgroup::"
    assert any(ln.startswith("[aipc]   $ ") for ln in lines)


def test_run_once_logs_without_a_stamp(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    res = run_once(_copy_step(work), work / "logs", lambda s: None)
    assert res.status == "ran" and res.log is not None and "# exit 0" in res.log.read_text(encoding="utf-8")
    assert not (work / "state").exists()


def test_plans_are_shown_for_the_target_shell(tmp_path: Path) -> None:
    step = Step("s", "d", [Command.make(["echo", "a$HOME b"], "C:\\b", {"V": "x y"})])
    assert format_plan([step], "linux").splitlines()[-2:] == ["  env: V='x y'", "  $ echo 'a$HOME b'"]
    assert format_plan([step], "windows").splitlines()[-1] == '  $ echo "a$HOME b"'


def test_venv_markers_name_local_wheels_and_are_migrated(tmp_path: Path) -> None:
    from aipc.venvs import MARKER, VenvSpec, is_ready, venv_dir, venv_python

    def spec_with(folder: Path) -> VenvSpec:
        folder.mkdir(parents=True, exist_ok=True)
        wheel = folder / "aipc_x-1.0-py3-none-any.whl"
        wheel.write_bytes(b"same wheel")
        return VenvSpec(name="v", steps=((str(wheel), "numpy"),), local_wheels=(wheel,), python="/usr/bin/python3")

    spec = spec_with(tmp_path / "wheels-a")
    assert spec.fingerprint() == spec_with(tmp_path / "wheels-b").fingerprint()  # by name and sha256
    assert spec.fingerprint() != spec.legacy_fingerprint()
    plain = VenvSpec(name="p", steps=(("numpy",),), python="/usr/bin/python3")
    assert plain.fingerprint() == plain.legacy_fingerprint()  # no local wheel: markers stay valid as they are

    root = tmp_path / "venvs"
    venv = venv_dir(spec, root)
    python = venv_python(venv)
    python.parent.mkdir(parents=True)
    python.write_text("", encoding="utf-8")
    (venv / MARKER).write_text(json.dumps({"fingerprint": spec.legacy_fingerprint(), "spec": {}}), encoding="utf-8")
    assert is_ready(spec, root)
    marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    assert marker["version"] == 2 and marker["fingerprint"] == spec.fingerprint()
    assert is_ready(spec_with(tmp_path / "wheels-b"), root)
    (venv / MARKER).write_text(json.dumps({"fingerprint": "0" * 64}), encoding="utf-8")
    assert not is_ready(spec, root)


def test_pins_show_the_compatibility_row_readably() -> None:
    from aipc.pins import format_pins, load_pins

    text = format_pins(load_pins())
    pair = next(ln for ln in text.splitlines() if ln.startswith("pinned pair:"))
    assert "compatible (row: genai >=" in pair and "needs ORT >= " in pair and "|" not in pair
    compat = [ln for ln in text.splitlines() if ln.startswith("  genai ")]
    assert compat and len({ln.index("needs ORT") for ln in compat}) == 1  # one aligned table


def test_nothing_new_starts_once_an_interrupt_arrived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread still working while Ctrl-C unwinds the run (verify's tasks) cannot start a process the interrupt's
    kill of the tree would miss: stream refuses with an OSError its callers already report."""
    import signal

    from aipc import interrupts

    monkeypatch.setitem(interrupts._state, "signum", signal.SIGINT)
    assert interrupts.stopping()
    with pytest.raises(InterruptedError, match="is not started"):
        stream([sys.executable, "-c", "open('x', 'w')"], cwd=tmp_path, env=None, log=io.StringIO())
    assert not (tmp_path / "x").exists()
