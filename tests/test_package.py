"""aipc behaves the same installed from its wheel as from a checkout (issue 13): the wheel carries what aipc needs at
run time (the NPU CMake project, constraints, workers, pins), and the installed ``aipc`` plans from an empty folder
with no checkout, no PYTHONPATH and no AIPC_* variable in sight."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "aipc"
pytestmark = pytest.mark.slow

TIMEOUT = 600  # pip on a busy 2-core machine


def run(argv: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)


def venv_bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def clean_env(home: Path) -> dict[str, str]:
    """The user's environment without PYTHONPATH or any AIPC_* variable, and a private home and cache."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIPC_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), USERPROFILE=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               LOCALAPPDATA=str(home / "AppData" / "Local"))
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """aipc's wheel, built from a copy of the sources (a build writes build/ and *.egg-info/ beside its input)."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "aipc-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    dist = tmp / "dist"
    out = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", dist, src],
              cwd=tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    (whl,) = dist.glob("aipc-*.whl")
    return whl


def test_the_wheel_holds_what_aipc_needs_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"aipc/native/npu/{n}" for n in ("CMakeLists.txt", "pyproject.toml", "openvino_preload.cpp")}
    wanted |= {f"aipc/{p.relative_to(PKG).as_posix()}" for pattern in ("constraints/*.txt", "workers/*.py")
               for p in PKG.glob(pattern)}
    wanted |= {"aipc/pins.toml"}
    assert len(wanted) > 10
    assert not wanted - names, f"missing from {wheel.name}: {sorted(wanted - names)}"
    checkout_files = {f"aipc/{p.relative_to(PKG).as_posix()}" for p in PKG.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert not checkout_files - names, f"in the checkout but not in the wheel: {sorted(checkout_files - names)}"


def test_the_installed_aipc_plans_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT)
    python = venv_bin(venv, "python")
    install = run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel], cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]

    home = tmp_path / "home"
    home.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = clean_env(home)
    where = run([python, "-c", "import aipc, pathlib; print(pathlib.Path(aipc.__file__).resolve().parent)"],
                cwd=empty, env=env)
    package = Path(where.stdout.strip())
    assert package.is_relative_to(venv.resolve()), f"aipc imported from {package}, not the fresh venv"

    aipc = venv_bin(venv, "aipc")
    npu = run([aipc, "build-npu", "--plan"], cwd=empty, env=env)
    assert npu.returncode == 0, npu.stderr
    assert str(package / "native" / "npu") in npu.stdout, npu.stdout
    assert "# npu-wheel" in npu.stdout

    plan = run([aipc, "plan"], cwd=empty, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "# fetch" in plan.stdout and "# build-genai" in plan.stdout, plan.stdout[:2000]

    verify = run([aipc, "verify", "--help"], cwd=empty, env=env)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("usage: aipc verify") and "--paths" in verify.stdout

    assert not any(empty.iterdir()), f"planning wrote into the folder: {sorted(empty.iterdir())}"
