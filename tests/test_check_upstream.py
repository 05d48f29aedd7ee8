"""``aipc check-upstream`` (issue 10's demonstration, ``nox -s upstream``): its checks, on fakes. Fast, offline.

The real run builds genai for minutes; here a fake ``python`` stands in for ``python -m aipc build|verify`` and
leaves what the real commands leave (wheels, a Ninja log, ORT_HOME, verify.json), or a specific fault.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aipc.errors import AipcError, UsageError
from aipc.wheelbuild import upstream as up
from conftest import ROOT, assert_one_line_error, run_aipc

GOLDEN = [5, 9, 2, 7]


def _upstream(root: Path) -> up.Upstream:
    (root / "onnxruntime-genai" / "cmake").mkdir(parents=True)
    (root / "onnxruntime-genai" / "build.py").write_text("# genai build.py\n")
    (root / "onnxruntime-genai" / "cmake" / "deps.txt").write_text("pybind11;https://x/p.zip;0\n")
    (root / "onnxruntime" / "include").mkdir(parents=True)
    (root / "onnxruntime" / "VERSION_NUMBER").write_text("1.24.1\n")
    (root / "deps" / "gsl").mkdir(parents=True)
    (root / "deps" / "gsl" / "gsl.h").write_text("// gsl\n")
    found = up.locate_upstream(root)
    assert found is not None
    return found


FAKE = r'''#!{python}
"""Stands in for `python -m aipc build|verify` in test_check_upstream.py; FAKE_FAULT picks a fault."""
import json, os, sys, zipfile
from pathlib import Path

args = sys.argv[3:]  # after "-m aipc"
cmd, fault = sys.argv[3], os.environ.get("FAKE_FAULT", "")
opt = lambda name: args[args.index(name) + 1]
if cmd == "build":
    work, wheels = Path(opt("--workdir")), Path(opt("--wheels"))
    assert "--offline" in args and opt("--ort-release") == "pypi", args
    if fault == "build-fails":
        sys.exit(3)
    if fault == "write-tree":
        (Path(opt("--genai-source")) / "__pycache__").mkdir()
    if fault == "bytecode" and not os.environ.get("PYTHONDONTWRITEBYTECODE"):  # like build.py importing util
        (Path(opt("--genai-source")) / "__pycache__").mkdir()
    if fault == "chmod-tree":
        os.chmod(Path(opt("--deps-dir")) / "gsl" / "gsl.h", 0o600)
    (work / "ort_home" / "lib").mkdir(parents=True, exist_ok=True)
    build = work / "genai-build" / "Release"
    build.mkdir(parents=True, exist_ok=True)
    jobs = int(opt("--jobs"))
    n = jobs + 1 if fault == "overlap" else jobs
    lines = [f"{{i}}\t{{1000 + i}}\t0\tobj{{i}}.o\th{{i}}" for i in range(n)]
    (build / ".ninja_log").write_text("# ninja log v7\n" + "\n".join(lines) + "\n")
    wheels.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels / "onnxruntime_genai-0.15.2-cp311-cp311-linux_x86_64.whl", "w") as zf:
        zf.write(os.environ["FAKE_ELF"], "onnxruntime_genai/onnxruntime_genai.so")
        zf.writestr("onnxruntime_genai/__init__.py", "")
    if fault != "no-ort-wheel":
        with zipfile.ZipFile(wheels / "onnxruntime-1.24.4-cp311-cp311-manylinux_2_28_x86_64.whl", "w") as zf:
            zf.writestr("onnxruntime/__init__.py", "")
elif cmd == "verify":
    out = Path(opt("--json"))
    model = out.parent / "tiny"
    model.mkdir(exist_ok=True)
    (model / "golden.json").write_text(json.dumps({{"golden": {golden}}}))
    home_seen = (out.parent / "build" / "ort_home").exists()
    fp32 = {golden} if fault != "fp32-wrong" else [1, 2, 3, 4]
    rows = [{{"path": "genai", "precision": "fp32", "status": "pass", "device": "cpu", "tokens": fp32,
              "reason": "ids equal the golden reference"}},
            {{"path": "genai", "precision": "int4", "status": "pass", "device": "cpu", "tokens": [3, 3],
              "reason": "ok"}}]
    if home_seen or fault == "int4-fails":  # a wheel leaning on ORT_HOME would fail to load without it
        rows[1].update(status="fail", reason="ORT_HOME still there" if home_seen else "load error")
    out.write_text(json.dumps({{"model": str(model), "results": rows}}))
    sys.exit(1 if any(r["status"] == "fail" for r in rows) else 0)
'''


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "fakepy"
    path.write_text(FAKE.format(python=sys.executable, golden=GOLDEN))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_ELF", "/bin/true")
    return str(path)


def _check(tmp_path: Path, python: str, fault: str = "", monkeypatch: pytest.MonkeyPatch | None = None
           ) -> up.CheckResult:
    if monkeypatch is not None:
        monkeypatch.setenv("FAKE_FAULT", fault)
    upstream = _upstream(tmp_path / "shared" / "upstream") if not (tmp_path / "shared").exists() else \
        up.Upstream(tmp_path / "shared" / "upstream")
    return up.check_upstream(upstream, tmp_path / "work", jobs=2, python=python, echo=lambda _: None)


def test_a_good_build_passes_every_check(tmp_path: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch) -> None:
    res = _check(tmp_path, fake_python, "", monkeypatch)
    assert res.problems == []
    f = res.figures
    assert f["ninja"][0]["max_overlap"] == 2
    assert f["trees_before"] == f["trees_after"]
    assert [r["status"] for r in f["verify_rows"]] == ["pass", "pass"]
    assert (tmp_path / "work" / "build" / "ort_home").is_dir()  # put back after verify
    assert not (tmp_path / "work" / "build" / "ort_home.moved-away").exists()
    assert any("unchanged" in line for line in up.format_result(res, 2))


@pytest.mark.parametrize("fault, words", [
    ("build-fails", "aipc build exited 3"),
    ("write-tree", "the build changed the source tree onnxruntime-genai: added __pycache__"),
    ("chmod-tree", "the build changed the source tree deps: changed gsl/gsl.h"),
    ("overlap", "3 jobs ran at once (--jobs 2)"),
    ("no-ort-wheel", "lacks the ORT wheel"),
    ("fp32-wrong", "genai fp32 ids [1, 2, 3, 4] differ from the golden ids [5, 9, 2, 7]"),
    ("int4-fails", "genai int4: fail: load error"),
])
def test_each_fault_is_reported(tmp_path: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch, fault: str,
                                words: str) -> None:
    res = _check(tmp_path, fake_python, fault, monkeypatch)
    assert any(words in p for p in res.problems), res.problems
    assert (tmp_path / "work" / "build" / "ort_home").exists() or fault == "build-fails"


def test_build_runs_as_where_python_writes_bytecode(tmp_path: Path, fake_python: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHONDONTWRITEBYTECODE=1 here would hide a build.py that writes __pycache__ into the tree: it is dropped."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    res = _check(tmp_path, fake_python, "bytecode", monkeypatch)
    assert res.problems == ["the build changed the source tree onnxruntime-genai: added __pycache__"]


def test_verify_would_see_ort_home_if_it_were_not_moved(tmp_path: Path, fake_python: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the good run: the fake verify fails int4 while ORT_HOME is in place, so moving it is what
    makes the good run pass (a wheel leaning on ORT_HOME would be caught the same way)."""

    class Stay(up.MovedAway):
        def __enter__(self) -> Path:
            return self.path

    monkeypatch.setattr(up, "MovedAway", Stay)
    res = _check(tmp_path, fake_python, "", monkeypatch)
    assert res.problems == ["genai int4: fail: ORT_HOME still there"]


def test_ort_home_left_renamed_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    home = tmp_path / "ort_home"
    away = tmp_path / "ort_home.moved-away"
    away.mkdir()
    (away / "x").write_text("x")
    mover = up.MovedAway(home)
    with mover:
        assert not home.exists() and (away / "x").is_file()
    assert (home / "x").is_file() and not away.exists()


def test_no_ort_home_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AipcError, match="the build left no ORT_HOME"), up.MovedAway(tmp_path / "ort_home"):
        pass


def test_build_command_is_the_issue_route(tmp_path: Path) -> None:
    upstream = _upstream(tmp_path / "u")
    argv = up.build_argv("py", upstream, tmp_path / "w", tmp_path / "wh", 2)
    assert argv[:4] == ["py", "-m", "aipc", "build"]
    text = " ".join(argv)
    for part in (f"--genai-source {upstream.genai}", f"--ort-release pypi --ort-source {upstream.ort}",
                 f"--deps-dir {upstream.deps} --offline", "--jobs 2", "--generator ninja", "--ccache off",
                 f"--workdir {tmp_path / 'w'}", f"--wheels {tmp_path / 'wh'}"):
        assert part in text
    verify = up.verify_argv("py", tmp_path / "wh", tmp_path / "v.json", tmp_path / "v.xml")
    assert verify[3:7] == ["verify", "--paths", "genai", "--wheels"]


def test_upstream_folder_rules(tmp_path: Path) -> None:
    assert up.locate_upstream(tmp_path / "absent") is None
    (tmp_path / "partial" / "deps").mkdir(parents=True)
    with pytest.raises(UsageError, match=r"has no onnxruntime-genai/, onnxruntime/"):
        up.locate_upstream(tmp_path / "partial")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a folder"):
        up.locate_upstream(tmp_path / "file")


def test_workdir_inside_or_around_a_tree_is_refused(tmp_path: Path) -> None:
    upstream = _upstream(tmp_path / "u")
    for bad in (upstream.genai / "out", tmp_path / "u", tmp_path):
        with pytest.raises(UsageError, match="overlaps the upstream tree"):
            up.check_workdir(bad, upstream)
    up.check_workdir(tmp_path / "work", upstream)


def test_verify_findings_need_both_rows_and_golden() -> None:
    ok = {"results": [{"path": "genai", "precision": "fp32", "status": "pass", "tokens": GOLDEN},
                      {"path": "genai", "precision": "int4", "status": "pass", "tokens": [1]}]}
    assert up.verify_findings(ok, GOLDEN) == []
    assert up.verify_findings({"results": ok["results"][:1]}, GOLDEN) == ["verify reported no genai int4 row"]
    skipped = {"results": [dict(ok["results"][0]), dict(ok["results"][1], status="skip", reason="no wheel")]}
    assert up.verify_findings(skipped, GOLDEN) == ["genai int4: skip: no wheel"]  # a skip is not a pass
    assert "no golden ids" in up.verify_findings(ok, None)[0]


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_runpath_of_a_real_elf_in_a_wheel(tmp_path: Path) -> None:
    src = tmp_path / "x.c"
    src.write_text("int x(void) { return 1; }\n")
    wheel = tmp_path / "w-1-py3-none-any.whl"
    # genai's own build leaves "<ORT_HOME>/lib:" (a build path and an empty entry, the current directory)
    for rpath, bad in (("/opt/build/ort_home/lib:", ["/opt/build/ort_home/lib", "''"]), ("$ORIGIN", [])):
        so = tmp_path / "x.so"
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src), f"-Wl,-rpath,{rpath}",
                        "-Wl,--enable-new-dtags"], check=True)
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.write(so, "pkg/x.so")
            zf.writestr("pkg/__init__.py", "")
        problems, figures = up.runpath_findings(wheel)
        assert figures["elf_files"] == {"pkg/x.so": rpath.split(":")}
        assert all(b in problems[0] for b in bad) if bad else problems == [], problems


def test_a_wheel_without_elf_is_a_problem(tmp_path: Path) -> None:
    wheel = tmp_path / "w-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
    assert up.runpath_findings(wheel)[0] == ["w-1-py3-none-any.whl holds no ELF file"]


def test_cli_skips_with_a_reason_when_the_folder_is_absent(tmp_path: Path) -> None:
    proc = run_aipc("check-upstream", "--upstream", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w"),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("skip: ") and "is absent" in proc.stdout
    assert not (tmp_path / "w").exists()


def test_cli_default_folder_is_beside_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    checkout.mkdir()
    env = {k: "" for k in ("AIPC_UPSTREAM",)}
    proc = run_aipc("check-upstream", cwd=checkout, env=env)
    assert proc.returncode == 0 and f"skip: {os.path.join('..', 'shared', 'upstream')} is absent" in proc.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "u" / "deps").mkdir(parents=True)
    proc = run_aipc("check-upstream", "--upstream", str(tmp_path / "u"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "has no onnxruntime-genai/", code=2)
    _upstream(tmp_path / "v")
    proc = run_aipc("check-upstream", "--upstream", str(tmp_path / "v"), "--jobs", "0", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "--jobs 0 must be at least 1", code=2)
    proc = run_aipc("check-upstream", "--upstream", str(tmp_path / "v"), "--workdir", str(tmp_path / "v" / "deps"),
                    cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "overlaps the upstream tree deps", code=2)


def test_cli_failure_lists_problems_then_one_error_line(tmp_path: Path, fake_python: str) -> None:
    """Through the CLI: the fake build writes into the genai tree; exit 1, problems on stdout, one error line."""
    _upstream(tmp_path / "u")
    code = ("import sys; from aipc.wheelbuild import upstream as up; from aipc.cli import main; "
            f"up.check_upstream.__kwdefaults__['python'] = {fake_python!r}; "
            "sys.exit(main(sys.argv[1:]))")
    env = dict(os.environ, FAKE_FAULT="write-tree")
    proc = subprocess.run([sys.executable, "-c", code, "check-upstream", "--upstream", str(tmp_path / "u"),
                           "--workdir", str(tmp_path / "w")], capture_output=True, text=True, env=env, cwd=tmp_path,
                          check=False, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, "the real upstream check failed (", code=1)
    assert "FAIL: the build changed the source tree onnxruntime-genai: added __pycache__" in proc.stdout
    report = json.loads((tmp_path / "w" / up.REPORT).read_text())
    assert report["problems"] and report["trees_before"]["onnxruntime-genai"] != report["trees_after"][
        "onnxruntime-genai"]


def _bench_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_upstream", ROOT / "scripts" / "bench_upstream.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_variant_drops_only_enable_tests_and_moves_the_build_dir(tmp_path: Path) -> None:
    bench = _bench_module()
    argv = ["py", "build.py", "--config", "Release", "--build_dir", "/w/genai-build", "--skip_tests",
            "--cmake_extra_defines", "ENABLE_TESTS=OFF", "FETCHCONTENT_FULLY_DISCONNECTED=ON"]
    out = bench.default_tests_variant(argv, tmp_path / "b")
    assert out == ["py", "build.py", "--config", "Release", "--skip_tests", "--cmake_extra_defines",
                   "FETCHCONTENT_FULLY_DISCONNECTED=ON", "--build_dir", str(tmp_path / "b")]


def test_bench_compile_span_is_the_first_ninja_run(tmp_path: Path) -> None:
    bench = _bench_module()
    (tmp_path / "b" / "Release").mkdir(parents=True)
    (tmp_path / "b" / "Release" / ".ninja_log").write_text(
        "# ninja log v7\n5\t2000\t1000005000000\ta.o\t1\n10\t4005\t1000010000000\tb.o\t2\n"
        "0\t30\t1009000000000\ta.o\t3\n")  # mtime = wall-clock start (ns); a rerun 9 s later
    assert bench.ninja_span(tmp_path / "b") == 4.0


def test_ci_runs_the_upstream_session_after_the_tests() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
             if "nox -s" in ln and not ln.lstrip().startswith("#")]
    assert lines == ["python3 -m nox -s lint tests", "python3 -m nox -s upstream"]
    assert "\ndef upstream(session: nox.Session) -> None:" in (ROOT / "noxfile.py").read_text()
