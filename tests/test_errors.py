"""One error path (issue 11): bad input refused at parse time, outputs that cannot be written, interrupts.

Every case runs ``aipc`` as a user does (a subprocess), checks the exit code of the shared table
(:class:`aipc.errors.ExitCode`), that stderr ends in exactly one ``aipc: error:`` line with no traceback, and that
the user's files are byte for byte what they were.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aipc.errors import EXIT_CODE_TABLE, ExitCode
from conftest import ROOT, assert_one_line_error, run_aipc

USAGE = ExitCode.USAGE


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def user_files(tmp_path: Path) -> Path:
    """A folder of the user's own files (which aipc must never touch)."""
    home = tmp_path / "mine"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "thesis.docx").write_bytes(b"PK\x03\x04 my thesis \x00\xff")
    (home / "notes.txt").write_text("keep me\n", encoding="utf-8")
    return home


# --- the exit-code table ----------------------------------------------------------------------------------------


def test_exit_codes_are_one_table_in_code_and_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {int(m.group(1)) for m in re.finditer(r"^\| `(\d+)` \|", section, re.M)}
    assert rows == {int(code) for code, _ in EXIT_CODE_TABLE} == {int(c) for c in ExitCode}
    for command in ("verify", "smoke", "bench", "doctor", "build", "pins --check", "build-npu", "tiny-model",
                    "export", "stage"):
        assert f"`{command}`" in section, command


def test_no_literal_exit_codes_in_the_commands() -> None:
    """Every command function (``set_defaults(func=...)``) returns ExitCode members or computed codes, never bare
    numbers; nothing sets an exit code or exits with a literal (one table, defined once)."""
    import ast

    offenders = []
    for path in sorted((ROOT / "src" / "aipc").rglob("*.py")):
        if "workers" in path.parts:  # worker processes speak the worker protocol, not the CLI's table
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        commands = {kw.value.id for node in ast.walk(tree) if isinstance(node, ast.Call)
                    for kw in node.keywords if kw.arg == "func" and isinstance(kw.value, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in commands:
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and any(isinstance(v, ast.Constant) and isinstance(v.value, int)
                                                           for v in ast.walk(ret.value) if ret.value is not None):
                        offenders.append(f"{path.relative_to(ROOT)}:{ret.lineno}: {node.name} returns a number")
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\bexit_code\s*=\s*\d|SystemExit\(\d|\.exit\(\d|return (?:1|2|130|143) if", code):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


# --- input validation at parse time -----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["bench", "--timeout", "-1"], "--timeout: -1 is not a number of seconds"),
    (["bench", "--timeout", "0"], "--timeout: 0 is not a number of seconds"),
    (["verify", "--timeout", "nan"], "--timeout: nan is not"),
    (["smoke", "genai", "--timeout", "inf"], "--timeout: inf is not"),
    (["smoke", "genai", "--timeout", "soon"], "'soon' is not a number of seconds"),
    (["fetch", "--fetch-backoff", "-5"], "--fetch-backoff: -5 is not"),
    (["fetch", "--fetch-backoff", "nan"], "--fetch-backoff: nan is not"),
    (["verify", "--paths", ""], "--paths: '' names no path"),
    (["verify", "--paths", ",,,"], "--paths: ',,,' names no path"),
    (["verify", "--paths", "genai,gpu"], "unknown path gpu"),
    (["bench", "--paths", ""], "--paths: '' names no path"),
    (["bench", "--devices", " , "], "--devices: ' , ' names no device"),
    (["smoke", "genai", "--wheels", "/nonexistent/wheels"], "--wheels: /nonexistent/wheels does not exist"),
    (["verify", "--wheels", "/nonexistent/wheels"], "--wheels: /nonexistent/wheels does not exist"),
    (["bench", "--wheels", "/nonexistent/wheels"], "--wheels: /nonexistent/wheels does not exist"),
    (["build-npu", "--find-links", "/nonexistent/house"], "--find-links: /nonexistent/house does not exist"),
])
def test_bad_values_are_refused_at_parse_time(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run_aipc(*args, cwd=tmp_path, env={"AIPC_CACHE": str(tmp_path / "cache")}, timeout=60)
    assert_one_line_error(proc.returncode, proc.stderr, needle, "fix:", code=USAGE)
    assert list(tmp_path.iterdir()) == []  # nothing was started: no cache, no workdir, no report


@pytest.mark.parametrize("what", ["missing", "folder", "not-json"])
def test_bad_inputs_found_by_the_command_are_exit_2_too(tmp_path: Path, what: str) -> None:
    """Inputs checked when read (bench compare's files, verify's --model) are bad input as well: exit 2."""
    given = {"missing": tmp_path / "nope.json", "folder": tmp_path, "not-json": tmp_path / "x.json"}[what]
    (tmp_path / "x.json").write_text("x", encoding="utf-8")
    proc = run_aipc("bench", "compare", str(given), str(tmp_path / "x.json"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(given), code=USAGE, alone=True)
    proc = run_aipc("smoke", "genai", "--model", str(tmp_path / "x.json"), cwd=tmp_path,
                    env={"AIPC_CACHE": str(tmp_path / "c")})
    assert_one_line_error(proc.returncode, proc.stderr, "x.json is not a folder", code=USAGE, alone=True)


def test_fetch_backoff_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    proc = run_aipc("fetch", "--workdir", str(tmp_path / "w"), env={"AIPC_FETCH_BACKOFF": "-5"}, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "--fetch-backoff/AIPC_FETCH_BACKOFF -5", code=USAGE,
                          alone=True)
    assert not (tmp_path / "w").exists()


def test_a_wheels_file_given_to_smoke_is_refused(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "wheels.txt"
    not_a_folder.write_text("x", encoding="utf-8")
    proc = run_aipc("smoke", "genai", "--wheels", str(not_a_folder), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, f"{not_a_folder} is not a folder", code=USAGE)


# --- outputs that cannot be written ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["smoke", "genai"], ["verify"], ["doctor"]])
def test_json_onto_a_folder_is_refused_before_any_work(tmp_path: Path, user_files: Path, command: list[str]) -> None:
    before = snapshot(user_files)
    proc = run_aipc(*command, "--json", str(user_files), cwd=tmp_path, env={"AIPC_CACHE": str(tmp_path / "c")})
    assert_one_line_error(proc.returncode, proc.stderr, f"output file {user_files} is a folder", code=USAGE)
    assert snapshot(user_files) == before
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("where", ["missing-parent", "parent-is-a-file"])
def test_json_in_a_folder_that_cannot_hold_it(tmp_path: Path, user_files: Path, where: str) -> None:
    parent = tmp_path / "nope" if where == "missing-parent" else user_files / "notes.txt"
    before = snapshot(user_files)
    for command in (["verify"], ["doctor", "--save-facts", str(parent / "f.json")],
                    ["verify", "--junit", str(parent / "v.xml")]):
        args = [*command] if "--save-facts" in command or "--junit" in command else [*command, "--json",
                                                                                     str(parent / "v.json")]
        proc = run_aipc(*args, cwd=tmp_path)
        assert_one_line_error(proc.returncode, proc.stderr, str(parent), code=USAGE)
    assert snapshot(user_files) == before


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder no file can be created in: read-only for a normal user; /sys for root (root ignores the mode)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("root without /sys: no folder is unwritable")
        yield Path("/sys")
        return
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    yield ro
    ro.chmod(0o755)


@pytest.mark.parametrize("command", [["verify", "--json", "{d}/v.json"], ["smoke", "genai", "--junit", "{d}/s.xml"],
                                     ["doctor", "--json", "{d}/d.json"], ["bench", "--out", "{d}/results"],
                                     ["wheels", "--wheels", "{d}/wheels"], ["tiny-model", "{d}/tiny"],
                                     ["export", "genai", "{model}", "{d}/exp"],
                                     ["stage", "--ort-source", "{model}", "--ort-build", "{model}", "--out", "{d}/h"]])
def test_an_output_in_an_unwritable_folder_is_refused_before_any_work(tmp_path: Path, unwritable: Path,
                                                                     command: list[str]) -> None:
    proc = run_aipc(*[a.format(d=unwritable, model=tmp_path) for a in command], cwd=tmp_path,
                    env={"AIPC_CACHE": str(tmp_path / "c")})
    assert_one_line_error(proc.returncode, proc.stderr, str(unwritable), "not writable", code=USAGE)
    assert not (tmp_path / "c").exists()


def test_verify_default_report_paths_are_checked_before_the_run(tmp_path: Path) -> None:
    """verify writes verify.json/verify.xml by default: a folder in the way is found before any smoke runs."""
    (tmp_path / "verify.json").mkdir()
    (tmp_path / "verify.json" / "mine.txt").write_text("x", encoding="utf-8")
    proc = run_aipc("verify", cwd=tmp_path, env={"AIPC_CACHE": str(tmp_path / "c")})
    assert_one_line_error(proc.returncode, proc.stderr, "--json verify.json", "is a folder", code=USAGE, alone=True)
    assert (tmp_path / "verify.json" / "mine.txt").read_text() == "x"
    assert not (tmp_path / "c").exists()


def test_an_output_may_not_be_another_output_or_an_input(tmp_path: Path) -> None:
    proc = run_aipc("verify", "--json", str(tmp_path / "r"), "--junit", str(tmp_path / "r"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "--json and --junit name the same file", code=USAGE)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    proc = run_aipc("bench", "--model", str(model), "--out", str(model), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, f"--out {model} is also the --model input", code=USAGE)
    assert snapshot(model) == {"config.json": b"{}"}


@pytest.mark.parametrize("args", [
    ["bench", "--out", "{file}"],
    ["wheels", "--wheels", "{file}"],
    ["fetch", "--workdir", "{file}"],
    ["build", "--workdir", "{file}"],
    ["build-npu", "--wheels", "{file}"],
    ["build-npu", "--build-dir", "{file}"],
])
def test_an_output_folder_that_is_a_file_is_refused_and_kept(tmp_path: Path, args: list[str]) -> None:
    mine = tmp_path / "mine.bin"
    mine.write_bytes(b"\x00user data\xff")
    proc = run_aipc(*[a.format(file=mine) for a in args], cwd=tmp_path, env={"AIPC_CACHE": str(tmp_path / "c")})
    assert_one_line_error(proc.returncode, proc.stderr, str(mine), "not a folder", code=USAGE)
    assert mine.read_bytes() == b"\x00user data\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.bin"]


@pytest.mark.parametrize("command", [["pins"], ["fetch"], ["plan"]])
def test_pins_given_as_a_folder_is_one_line(tmp_path: Path, command: list[str]) -> None:
    proc = run_aipc(*command, "--pins", str(tmp_path), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(tmp_path), "folder")
    assert proc.returncode in (ExitCode.FAILED, ExitCode.USAGE)


def test_results_are_printed_before_a_report_that_cannot_be_written(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A smoke that passed, then its --json cannot be written (the folder became read-only, a disk filled):
    the table is printed, then one line naming the file and the reason; exit 2, not the "a row failed" 1."""
    from aipc import cli
    from aipc.verify import report, run

    class FakeVerifier:
        def __init__(self, opts: object, progress: object) -> None:
            self.model, self.setup_seconds = tmp_path, 0.0

        def run(self) -> list[report.Row]:
            return [report.Row(path="genai", api="og", device="cpu", precision="fp32", status="pass", seconds=1.0)]

    def denied(path: Path, *a: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(run, "Verifier", FakeVerifier)
    monkeypatch.setattr(run, "run_meta", lambda *a: {"smoke_seconds": 1.0})
    monkeypatch.setattr(report, "write_json", denied)
    out = tmp_path / "smoke.json"
    code = cli.main(["smoke", "genai", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert "pass" in captured.out and "genai" in captured.out
    assert_one_line_error(code, captured.err, f"cannot write the JSON report {out}", "Permission denied",
                          code=USAGE)


@pytest.mark.slow
def test_bench_prints_its_results_when_the_out_folder_refuses_them(tmp_path: Path) -> None:
    """After the whole benchmark, bench.json cannot be written (a folder is in its place): results on stdout, then
    one line (the tiny model comes from the shared test cache; the NPU target is a quick skip here)."""
    from aipc.fsutil import mark_dir
    from conftest import shared_cache

    out = tmp_path / "results"
    (out / "bench.json").mkdir(parents=True)
    (out / "bench.json" / "mine.txt").write_text("x", encoding="utf-8")
    mark_dir(out, "bench-results", record_files=False)  # a results folder aipc made (any other is refused up front)
    proc = run_aipc("bench", "--paths", "npu", "--devices", "npu", "--out", str(out), "--no-charts",
                    env={"AIPC_CACHE": str(shared_cache())}, timeout=1800)
    assert_one_line_error(proc.returncode, proc.stderr, "cannot write the bench results", "Is a directory",
                          code=USAGE)
    assert "npu" in proc.stdout and "harness overhead" in proc.stdout
    assert (out / "bench.json" / "mine.txt").read_text() == "x"


def test_a_manifest_entry_without_file_is_one_line(tmp_path: Path) -> None:
    from aipc.errors import AipcError
    from aipc.wheelhouse import read_manifest

    for entry in ({"sha256": "0" * 64}, {"file": "../../x.whl", "sha256": "0" * 64}, "x.whl", {"file": "a.whl"}):
        (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "wheels": [entry]}), encoding="utf-8")
        with pytest.raises(AipcError) as info:
            read_manifest(tmp_path)
        assert "\n" not in info.value.one_line() and "manifest.json: wheels[0]" in info.value.one_line()


def test_wheels_check_on_a_manifest_entry_without_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    manifest = b'{"schema": 1, "wheels": [{"sha256": "00"}]}'
    (folder / "manifest.json").write_bytes(manifest)
    proc = run_aipc("wheels", "--check", str(folder), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(folder), code=ExitCode.FAILED)
    assert 'has no valid "file"' in proc.stdout + proc.stderr
    assert (folder / "manifest.json").read_bytes() == manifest


def test_an_unexpected_error_is_still_one_line(tmp_path: Path) -> None:
    """A bug (here: a module that raises on import, put first on the path) is one line naming it; AIPC_DEBUG=1
    shows the traceback."""
    shadow = tmp_path / "shadow" / "aipc" / "bench"
    shadow.mkdir(parents=True)
    real = ROOT / "src" / "aipc"
    (shadow.parent / "__init__.py").write_text(f"__path__ = [{str(shadow.parent)!r}, {str(real)!r}]\n"
                                               "__version__ = 'test'\n", encoding="utf-8")
    (shadow / "__init__.py").write_text(f"__path__ = [{str(shadow)!r}, {str(real / 'bench')!r}]\n",
                                        encoding="utf-8")
    (shadow / "cli.py").write_text("raise ZeroDivisionError('boom')\n", encoding="utf-8")
    env = {"PYTHONPATH": str(tmp_path / "shadow")}
    proc = run_aipc("pins", env=env)
    assert_one_line_error(proc.returncode, proc.stderr, "internal error: ZeroDivisionError: boom", "AIPC_DEBUG=1",
                          code=ExitCode.FAILED, alone=True)
    proc = run_aipc("pins", env={**env, "AIPC_DEBUG": "1"})
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr


# --- signals ----------------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def _long_clone(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    """``aipc fetch`` whose ``git clone`` (a stand-in on PATH) starts a grandchild and waits: a long child."""
    real = shutil.which("git")
    assert real
    bin_dir, pids = tmp_path / "bin", tmp_path / "pids"
    bin_dir.mkdir()
    pids.mkdir()
    script = bin_dir / "git"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" clone "*)\n'
        '  echo $$ > "$PIDS/child.tmp"; sleep 600 & echo $! > "$PIDS/grandchild"; mv "$PIDS/child.tmp" "$PIDS/child"\n'
        "  wait; exit 1;;\n"
        "esac\n"
        f'exec "{real}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    args = ["fetch", "--workdir", str(tmp_path / "w"), "--ort-repo", "https://example.invalid/ort.git",
            "--genai-repo", "https://example.invalid/genai.git"]
    return args, {"PIDS": str(pids), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to watch the processes")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_whole_process_tree(tmp_path: Path, sig: signal.Signals) -> None:
    args, env, pids = _long_clone(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "aipc", *args], env={**os.environ, **env}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (pids / "child").is_file() and (pids / "grandchild").is_file())
        child, grandchild = (int((pids / n).read_text()) for n in ("child", "grandchild"))
        assert _alive(child) and _alive(grandchild)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_one_line_error(proc.returncode, err, f"interrupted by {sig.name}", "fix: rerun",
                          code=ExitCode.for_signal(sig))
    _wait_for(lambda: not _alive(child) and not _alive(grandchild), timeout=10)
    leftovers = [p for p in (tmp_path / "w").rglob("*") if p.name.endswith(".tmp") or ".old-" in p.name]
    assert not leftovers
    assert not (tmp_path / "w" / "state" / "fetch.stamp.json").exists()  # the step did not complete
    assert not (tmp_path / "w" / "ort").exists()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_the_imports_is_the_same_one_line(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal as soon as aipc's entry module has its first handler (its first statement, before aipc's imports):
    exit 130/143 with the one line, never a KeyboardInterrupt traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "aipc", "doctor", "--workdir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def handler_installed() -> bool:  # SIGTERM is caught only by aipc's handler (Python leaves it at default)
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except FileNotFoundError:
            return True
        caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
        return bool(caught & (1 << (signal.SIGTERM - 1)))

    _wait_for(handler_installed, timeout=30)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert_one_line_error(proc.returncode, err, f"interrupted by {sig.name}", code=ExitCode.for_signal(sig),
                          alone=True)


def test_sigterm_removes_the_temporary_path_of_an_atomic_write(tmp_path: Path) -> None:
    """An output being written (``atomic_path``'s temporary folder) when SIGTERM arrives is removed."""
    code = (
        "import sys, time, pathlib\n"
        "from aipc import interrupts; interrupts.install()\n"  # what the entry point does first
        "from aipc.fsutil import atomic_path\n"
        "from aipc import interrupts\n"
        "dest = pathlib.Path(sys.argv[1])\n"
        "try:\n"
        "    with atomic_path(dest) as tmp:\n"
        "        tmp.mkdir(); (tmp / 'half.bin').write_bytes(b'x' * 1000)\n"
        "        print(tmp, flush=True); time.sleep(600)\n"
        "except KeyboardInterrupt as exc:\n"
        "    line, rc = interrupts.finish(exc); print(line, file=sys.stderr); sys.exit(rc)\n"
    )
    dest = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", code, str(dest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_dir()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert_one_line_error(proc.returncode, err, "interrupted by SIGTERM", code=ExitCode.TERMINATED, alone=True)
    assert not tmp.exists() and not dest.exists()
    assert list(tmp_path.iterdir()) == []


def _run_until_marked(tmp_path: Path, code: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    """Start ``python -c code args`` (which installs aipc's handler first, as the entry point does) and wait until the
    long child it starts has written its pid to ``tmp_path/child.pid``."""
    marker = tmp_path / "child.pid"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "MARKER": str(marker)})
    try:
        _wait_for(lambda: (marker.is_file() and marker.read_text().strip() != "") or proc.poll() is not None)
    except AssertionError:
        proc.kill()
        raise
    assert proc.poll() is None, proc.communicate()
    return proc, int(marker.read_text())


SLEEPER = ("import os, time; p = os.environ['MARKER']; open(p + '.tmp', 'w').write(str(os.getpid())); "
           "os.replace(p + '.tmp', p); time.sleep(600)")
FINISH = ("except KeyboardInterrupt as exc:\n"
          "    line, rc = interrupts.finish(exc); print(line, file=sys.stderr); sys.exit(rc)\n")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to watch the processes")
def test_sigterm_during_an_sdist_download_removes_incoming(tmp_path: Path) -> None:
    """The NPU sdist's ``pip download`` (here a stand-in that sleeps) is killed and ``.incoming`` removed."""
    code = (
        "import sys, pathlib\n"
        "from aipc import interrupts; interrupts.install()\n"
        "from aipc import interrupts\n"
        "from aipc.npu import build, sdist\n"
        "from aipc.runner import Command\n"
        "pin = sdist.SdistPin.from_pins(build.load_pins())\n"
        "dest = pathlib.Path(sys.argv[1]) / pin.file\n"
        "dest.parent.mkdir()\n"
        f"cmd = Command.make([sys.executable, '-c', {SLEEPER!r}], dest.parent)\n"
        "try:\n"
        "    sdist.obtain_sdist(dest, pin, given=None, download=cmd)\n"
        + FINISH
    )
    proc, child = _run_until_marked(tmp_path, code, str(tmp_path / "sdist"))
    assert (tmp_path / "sdist" / ".incoming").is_dir()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert_one_line_error(proc.returncode, err, "interrupted by SIGTERM", code=ExitCode.TERMINATED, alone=True)
    _wait_for(lambda: not _alive(child), timeout=10)
    assert [p.name for p in (tmp_path / "sdist").iterdir()] == ["sdist-requirement.txt"]  # the pip -r file only


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to watch the processes")
def test_sigint_during_an_export_removes_the_export_folders(tmp_path: Path) -> None:
    """An export whose converter (a stand-in that sleeps) is running: SIGINT kills it and removes ``.export-*``
    and the output's temporary folder; the user's model is untouched."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    code = (
        "import sys, types, pathlib\n"
        "from aipc import interrupts; interrupts.install()\n"
        "from aipc import interrupts\n"
        "from aipc.runner import Command\n"
        "from aipc.runtimes import export\n"
        "export.ensure_venv = lambda *a, **k: pathlib.Path(sys.executable)\n"
        f"export.plan_export = lambda *a, **k: types.SimpleNamespace(command=Command.make([sys.executable, '-c', "
        f"{SLEEPER!r}], a[-1]), notes={{}})\n"
        "cache, out, model = (pathlib.Path(p) for p in sys.argv[1:4])\n"
        "try:\n"
        "    export._export('genai', model, 'int4', 'cpu', out, 'f' * 64, {}, None, cache, None, force=False, "
        "inputs=[model])\n"
        + FINISH
    )
    cache, out = tmp_path / "cache", tmp_path / "out" / "exp"
    out.parent.mkdir()
    proc, child = _run_until_marked(tmp_path, code, str(cache), str(out), str(model))
    assert [p.name[:8] for p in (cache / "exports").iterdir()] == [".export-"]
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert_one_line_error(proc.returncode, err, "interrupted by SIGINT", code=ExitCode.INTERRUPTED, alone=True)
    _wait_for(lambda: not _alive(child), timeout=10)
    assert list((cache / "exports").iterdir()) == []
    assert list(out.parent.iterdir()) == []
    assert snapshot(model) == {"config.json": b"{}"}


def test_windows_interrupt_kills_the_tracked_process_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no /proc: the first signal kills the tree (taskkill /T) of every tracked child still running."""
    from aipc import interrupts, proc

    class Child:
        def __init__(self, running: bool) -> None:
            self.running = running

        def poll(self) -> int | None:
            return None if self.running else 0

    live, done = Child(True), Child(False)
    interrupts.track(live)  # type: ignore[arg-type]
    interrupts.track(done)  # type: ignore[arg-type]
    killed: list[object] = []
    monkeypatch.setattr(interrupts.sys, "platform", "win32")
    monkeypatch.setattr(proc, "kill_tree", killed.append)
    interrupts._terminate_descendants()
    assert killed == [live]


def test_an_in_process_call_restores_the_callers_signal_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    """``aipc.cli.main`` called in-process (tests, embedding) has the handler only for the call."""
    from aipc import cli

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert cli.main(["pins"]) == ExitCode.OK
    assert {s: signal.getsignal(s) for s in before} == before
    capsys.readouterr()


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``aipc options | head -1``: the reader has gone; no traceback and no 'error' line about the pipe, exit 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before aipc writes (as after `head -1` has its line)
    try:
        proc = subprocess.run([sys.executable, "-m", "aipc", "options"], stdout=write_end, stderr=subprocess.PIPE,
                              cwd=tmp_path, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert "aipc: error" not in proc.stderr, proc.stderr
