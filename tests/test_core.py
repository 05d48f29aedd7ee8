"""Tests of the foundation: pins, compatibility refusals, runner, atomic writes, wheels/ conventions, platforms."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aipc.cli import main
from aipc.errors import PinsError, StepFailed, UsageError
from aipc.fsutil import atomic_path, sha256_file
from aipc.pins import check_compat, load_pins
from aipc.platforms import get_platform
from aipc.runner import Command, Runner, Step, plan_json
from aipc.wheelhouse import add_wheels, read_manifest, verify_sums
from conftest import write_pins


def test_default_pins_are_valid_and_compatible() -> None:
    pins = load_pins()
    assert len(pins.onnxruntime.commit) == 40
    assert len(pins.onnxruntime_genai.commit) == 40
    row = check_compat(pins)
    assert "v0.15" in row.row


def test_incompatible_pair_is_refused_quoting_the_row(tmp_path: Path) -> None:
    pins = load_pins(write_pins(tmp_path, **{'version = "0.15.2"': 'version = "0.13.1"'}))
    with pytest.raises(PinsError) as exc:
        check_compat(pins)
    msg = exc.value.one_line()
    assert "needs ONNX Runtime >= 1.25.0.dev20260125" in msg
    assert "v0.13.0-v0.13.2" in msg  # the table row is quoted


def test_unknown_genai_version_is_refused(tmp_path: Path) -> None:
    pins = load_pins(write_pins(tmp_path, **{'version = "0.15.2"': 'version = "0.99.0"'}))
    with pytest.raises(PinsError, match="not in the compatibility table"):
        check_compat(pins)


def test_short_commit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PinsError, match="full 40-digit"):
        load_pins(write_pins(tmp_path, **{"ed5f4e87147731e5b07810f9f5c90103b3603cdf": "ed5f4e87"}))


def test_pins_cli_check_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pins(tmp_path, **{'version = "1.24.4"': 'version = "1.23.0"'})
    assert main(["pins", "--pins", str(path), "--check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aipc: error:") and "1.24.4" in err[0]


def test_cli_has_no_traceback_on_missing_pins(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "aipc", "pins", "--pins", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2  # bad input (ExitCode.USAGE); an incompatible pinned pair is 1
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr


def test_unknown_platform_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown platform"):
        get_platform("macos")


@pytest.mark.parametrize(
    ("name", "generator", "expected"),
    [("windows", "Visual Studio 17 2022", ("Release", "Release")), ("windows", "Ninja", ("Release",)),
     ("linux", "Ninja", ("Release",))],
)
def test_config_dirs_per_generator(name: str, generator: str, expected: tuple[str, ...]) -> None:
    assert get_platform(name).config_dirs(generator, "Release") == expected


def test_runner_skips_unchanged_and_reruns_changed(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    py = sys.executable
    def step(text: str) -> Step:
        cmd = Command.make([py, "-c", f"open({str(out)!r}, 'w').write({text!r})"], tmp_path)
        return Step("write", "write a file", [cmd], inputs={"text": text}, outputs=[out])

    lines: list[str] = []
    runner = Runner(tmp_path / "state", tmp_path / "logs", echo=lines.append)
    assert runner.run(step("a")).status == "ran"
    assert runner.run(step("a")).status == "skipped"
    assert runner.run(step("b")).status == "ran" and out.read_text() == "b"
    out.unlink()  # a missing output forces a rerun
    assert runner.run(step("b")).status == "ran"
    assert any("finished in" in line for line in lines)
    assert (tmp_path / "logs" / "write.log").is_file()


def test_runner_failure_names_command_and_log_and_writes_no_stamp(tmp_path: Path) -> None:
    cmd = Command.make([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], tmp_path)
    runner = Runner(tmp_path / "state", tmp_path / "logs", echo=lambda s: None)
    with pytest.raises(StepFailed) as exc:
        runner.run(Step("bad", "fails", [cmd]))
    assert "exited with 3" in str(exc.value) and "boom" in str(exc.value) and "bad.log" in str(exc.value)
    assert not (tmp_path / "state" / "bad.stamp.json").exists()


def test_plan_json_shape(tmp_path: Path) -> None:
    step = Step("x", "d", [Command.make(["a", "b"], "C:\\src", {"K": "V"})])
    (entry,) = plan_json([step])
    assert entry["name"] == "x" and entry["argv"] == ["a", "b"] and entry["cwd"] == "C:\\src"
    assert entry["env"] == {"K": "V"}


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "d" / "file.bin"
    dest.parent.mkdir()
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert dest.read_text() == "old"
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def _fake_wheel(path: Path, name: str, version: str, requires: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires)
        zf.writestr(f"{name}-{version}.dist-info/METADATA", meta)
    return path


def test_add_wheels_writes_sums_and_manifest(tmp_path: Path) -> None:
    src = _fake_wheel(tmp_path / "demo-1.0-py3-none-any.whl", "demo", "1.0", [])
    out = tmp_path / "wheels"
    add_wheels(out, [src], {"source": {"commit": "abc"}})
    manifest = read_manifest(out)
    (entry,) = manifest["wheels"]
    assert entry["sha256"] == sha256_file(src) and entry["source"] == {"commit": "abc"}
    assert entry["tags"] == ["py3-none-any"]
    assert verify_sums(out) == []
    (out / "demo-1.0-py3-none-any.whl").write_bytes(b"tampered")
    assert verify_sums(out) == ["demo-1.0-py3-none-any.whl: sha256 does not match SHA256SUMS"]
    assert json.loads((out / "manifest.json").read_text())["schema"] == 1


def test_find_wheels_orders_newest_first_and_can_prefer_a_version(tmp_path: Path) -> None:
    import os

    from aipc.wheelhouse import find_wheels

    names = ["demo-1.24.3-py3-none-any.whl", "demo-1.24.5-py3-none-any.whl", "demo-1.24.4-cp311-none-any.whl",
             "demo-1.24.4-cp312-none-any.whl", "other-9.0-py3-none-any.whl", "not a wheel.whl"]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (1000 + i, 1000 + i))
    newest = ["demo-1.24.5-py3-none-any.whl", "demo-1.24.4-cp312-none-any.whl", "demo-1.24.4-cp311-none-any.whl",
              "demo-1.24.3-py3-none-any.whl"]
    assert [p.name for p in find_wheels(tmp_path, "Demo")] == newest
    preferred = [p.name for p in find_wheels(tmp_path, "demo", prefer_version="1.24.4.0")]
    assert preferred == [newest[1], newest[2], newest[0], newest[3]]
    assert [p.name for p in find_wheels(tmp_path, "demo", prefer_version="2.0")] == newest
    assert [p.name for p in find_wheels(tmp_path, "demo", prefer_version="not-a-version")] == newest
    assert find_wheels(tmp_path / "missing", "demo") == []


def test_runner_timeout_stops_a_silent_hang_with_its_children(tmp_path: Path) -> None:
    """A command that prints nothing and never ends is killed at its timeout, together with what it started."""
    import os
    import time

    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    step = Step("hang", "hangs", [Command.make([sys.executable, "-c", code], tmp_path, timeout=2)])
    runner = Runner(tmp_path / "state", tmp_path / "logs", echo=lambda s: None)
    t0 = time.monotonic()
    with pytest.raises(StepFailed, match="hit its timeout and was stopped"):
        runner.run(step)
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "state" / "hang.stamp.json").exists()
    grandchild = int(pidfile.read_text())
    for _ in range(50):  # reaped by init shortly after the kill
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild survived the timeout")
