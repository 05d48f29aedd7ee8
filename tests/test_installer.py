"""The installer behind aipc's venvs (aipc.installer): uv or pip, the same sources, constraints and results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from aipc import installer
from aipc.errors import AipcError, UsageError
from aipc.installer import Installer, PipSources, UvInstaller, select
from aipc.venvs import MARKER, VenvSpec, ensure_venv
from conftest import assert_one_line_error, run_aipc

HAS_UV = installer.find_uv() is not None
needs_uv = pytest.mark.skipif(not HAS_UV, reason="uv is not installed (a dependency of aipc: pip install uv)")


@pytest.fixture(autouse=True)
def _no_chosen_installer() -> None:
    installer.use(None)


def _flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def _pip_env(tmp_path: Path, conf: str, **variables: str) -> dict[str, str]:
    """An environment whose only pip configuration is ``conf`` (PIP_CONFIG_FILE) and ``variables``."""
    file = tmp_path / "pip.conf"
    file.write_text(conf, encoding="utf-8")
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PIP_CONFIG_FILE": str(file), **variables}


def test_pip_configuration_becomes_uv_flags(tmp_path: Path) -> None:
    env = _pip_env(tmp_path, "[global]\nindex-url = https://mirror.example/simple\n"
                             "extra-index-url = file:///x/simple file:///y/simple\nconstraint = /etc/caps.txt\n"
                             "[install]\nfind-links = /wheels\n",
                   PIP_FIND_LINKS="/env-wheels /more", PIP_CONSTRAINT="/env-caps.txt")
    sources = PipSources.read(env, windows=False, prefix=str(tmp_path / "prefix"))
    assert str(tmp_path / "pip.conf") in sources.files
    uv = UvInstaller(uv="/bin/uv", sources=sources)
    argv = uv.install(Path("/v/bin/python"), ["torch==2.13.0"], [Path("/aipc/genai.txt")])
    assert argv[:3] == ["/bin/uv", "pip", "install"] and argv[-1] == "torch==2.13.0"
    assert "--no-config" in argv and _flag_values(argv, "--python") == ["/v/bin/python"]
    # uv compiles nothing at install (aipc's venv processes write the .pyc of what they import); on request it does
    assert "--compile-bytecode" not in argv
    assert "--compile-bytecode" in replace(uv, compile_bytecode=True).install(Path("/v/bin/python"), ["x"])
    assert _flag_values(argv, "--index-strategy") == ["unsafe-best-match"]  # pip's choice: best of all sources
    assert _flag_values(argv, "--index-url") == ["https://mirror.example/simple"]
    assert _flag_values(argv, "--extra-index-url") == ["file:///x/simple", "file:///y/simple"]
    assert _flag_values(argv, "--find-links") == ["/env-wheels", "/more"]  # PIP_* beats the files, as in pip
    assert _flag_values(argv, "-c") == ["/env-caps.txt", "/aipc/genai.txt"]  # pip's constraints and aipc's own
    assert "--no-index" not in argv
    offline = PipSources.read({**env, "PIP_NO_INDEX": "yes"}, windows=False, prefix=str(tmp_path))
    assert "--no-index" in offline.uv_args()
    # the pip backend passes aipc's constraints the same way and leaves the rest to pip's own configuration
    pip = Installer().install(Path("/v/bin/python"), ["torch==2.13.0"], [Path("/aipc/genai.txt")])
    assert pip[:4] == ["/v/bin/python", "-m", "pip", "install"] and _flag_values(pip, "-c") == ["/aipc/genai.txt"]


def test_no_pip_configuration_adds_nothing_and_devnull_reads_no_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"), "PIP_CONFIG_FILE": os.devnull}
    sources = PipSources.read(env, windows=False, prefix=str(tmp_path))
    assert sources == PipSources() and sources.uv_args() == []


def test_a_new_venv_has_no_site_pip_config_of_aipcs_interpreter(tmp_path: Path) -> None:
    site = tmp_path / "prefix"
    site.mkdir()
    (site / "pip.conf").write_text("[global]\nfind-links = /site-wheels\n", encoding="utf-8")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    assert "/site-wheels" in PipSources.read(env, windows=False, prefix=str(site)).find_links
    assert "/site-wheels" not in PipSources.read(env, windows=False).find_links  # the new venv's pip reads none


def test_uv_environment_drops_uv_settings_keeps_cache_and_carries_cert(tmp_path: Path) -> None:
    sources = PipSources(cert="/etc/ca.pem", timeout="180")
    overlay = sources.uv_env({"UV_INDEX_URL": "https://elsewhere/simple", "UV_RESOLUTION": "lowest",
                              "UV_CACHE_DIR": "/c", "PATH": "/bin"})
    assert overlay == {"UV_INDEX_URL": None, "UV_RESOLUTION": None, "SSL_CERT_FILE": "/etc/ca.pem",
                       "UV_HTTP_TIMEOUT": "180"}
    assert "SSL_CERT_FILE" not in sources.uv_env({"SSL_CERT_FILE": "/mine.pem"})


def test_auto_falls_back_to_pip_without_uv_and_uv_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "find_uv", lambda: None)
    assert select("auto").name == "pip" and type(select("auto")) is Installer
    with pytest.raises(AipcError, match="uv is not installed") as err:
        select("uv")
    assert "--installer pip" in (err.value.hint or "")
    monkeypatch.setattr(installer, "find_uv", lambda: "/opt/uv")
    chosen = select("auto")
    assert isinstance(chosen, UvInstaller) and chosen.uv == "/opt/uv"
    assert select("pip").name == "pip"  # asked for: pip even where uv is


def test_installer_precedence_cli_over_variable_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "find_uv", lambda: "/opt/uv")
    monkeypatch.delenv("AIPC_INSTALLER", raising=False)
    assert installer.choice() == "auto" and select().name == "uv"
    monkeypatch.setenv("AIPC_INSTALLER", "pip")
    assert installer.choice() == "pip" and select().name == "pip"
    installer.use("uv")  # --installer uv
    assert installer.choice() == "uv" and select().name == "uv"
    installer.use(None)
    monkeypatch.setenv("AIPC_INSTALLER", "conda")
    with pytest.raises(UsageError, match="conda"):
        installer.choice()


def test_cli_installer_flag_and_variable_reach_the_plan(tmp_path: Path) -> None:
    env = {"AIPC_CACHE": str(tmp_path / "cache"), "AIPC_INSTALLER": "pip"}
    pip = run_aipc("build-npu", "--plan", env=env)
    assert pip.returncode == 0, pip.stderr
    assert "-m venv" in pip.stdout and "-m pip install --disable-pip-version-check" in pip.stdout
    if HAS_UV:
        uv = run_aipc("build-npu", "--plan", "--installer", "uv", env=env)  # the flag beats the variable
        assert uv.returncode == 0, uv.stderr
        assert " venv --no-config" in uv.stdout and " pip install --no-config" in uv.stdout
        assert "-m venv" not in uv.stdout
    bad = run_aipc("build-npu", "--plan", env={**env, "AIPC_INSTALLER": "conda"})
    assert_one_line_error(bad.returncode, bad.stderr, "AIPC_INSTALLER", "conda")
    bad = run_aipc("verify", "--installer", "conda", env=env)
    assert_one_line_error(bad.returncode, bad.stderr, "--installer", "conda")


def test_build_plan_with_uv_on_this_host_and_for_another_platform(tmp_path: Path) -> None:
    env = {"AIPC_CACHE": str(tmp_path / "cache"), "AIPC_INSTALLER": "uv"}
    if not HAS_UV:
        bad = run_aipc("plan", "--json", "--workdir", str(tmp_path / "w"), env=env)
        assert_one_line_error(bad.returncode, bad.stderr, "uv is not installed", "--installer pip")
        return
    host = "windows" if sys.platform == "win32" else "linux"
    proc = run_aipc("plan", "--json", "--platform", host, "--workdir", str(tmp_path / "w"), env=env)
    assert proc.returncode == 0, proc.stderr
    venv = [e for e in json.loads(proc.stdout) if e["name"].startswith("build-venv[")]
    make, seed, tools = (e["argv"] for e in venv[:3])
    assert make[1:3] == ["venv", "--no-config"] and "--allow-existing" in make
    assert seed[1:3] == ["pip", "install"] and seed[-1].startswith("<the ensurepip wheels of")
    assert tools[1:3] == ["pip", "install"] and "unsafe-best-match" in tools and tools[-1].startswith("ninja==")
    assert tools[tools.index("--python") + 1] == str(tmp_path / "w" / "venv" / "bin" / "python")
    # a plan for another platform: the target's uv, none of this host's pip configuration
    other = "linux" if host == "windows" else "windows"
    proc = run_aipc("plan", "--json", "--platform", other, "--workdir", "C:\\b", env=env)
    assert proc.returncode == 0, proc.stderr
    venv = [e for e in json.loads(proc.stdout) if e["name"].startswith("build-venv[")]
    assert {e["argv"][0] for e in venv} == {"uv"}
    assert not any("--find-links" in e["argv"] or "--extra-index-url" in e["argv"] for e in venv)


@needs_uv
def test_uv_venv_is_seeded_like_python_m_venv(tmp_path: Path) -> None:
    """The uv backend's venv holds the interpreter's bundled ensurepip wheels, as ``python -m venv`` makes it."""
    seeds = installer.ensurepip_wheels(sys.executable)
    spec = VenvSpec("seeded", steps=())
    py = ensure_venv(spec, tmp_path / "venvs", echo=lambda s: None, installer=select("uv"))
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout
    got = {d["name"].lower(): d["version"] for d in json.loads(listed)}
    want = {Path(w).name.split("-")[0].lower(): Path(w).name.split("-")[1] for w in seeds}
    assert want and got == want
    marker = json.loads((py.parents[1] / MARKER).read_text(encoding="utf-8"))
    assert marker["installer"] == "uv"


def test_failed_uv_install_names_the_command_and_suggests_pip(tmp_path: Path) -> None:
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\necho \"uv: cannot do $2\"\nexit 2\n", encoding="utf-8")
    fake.chmod(0o755)
    spec = VenvSpec("broken", steps=(("six",),))
    with pytest.raises(AipcError) as err:
        ensure_venv(spec, tmp_path / "venvs", echo=lambda s: None,
                    installer=UvInstaller(uv=str(fake), sources=PipSources()))
    assert "`uv venv --no-config" in err.value.message and "uv: cannot do --no-config" in err.value.message
    assert "--installer pip" in (err.value.hint or "")
    assert not (tmp_path / "venvs" / "broken" / MARKER).exists()


def _torch_record_hash(record_dir: Path, member: str = "torch/version.py") -> str:
    for line in (record_dir / "RECORD").read_text(encoding="utf-8").splitlines():
        path, digest, _ = line.rsplit(",", 2)
        if path == member:
            return digest
    raise AssertionError(f"{member} not in {record_dir}/RECORD")


@pytest.mark.slow
@needs_uv
def test_uv_and_pip_install_the_same_torch(tmp_path: Path) -> None:
    """Both backends install the pinned torch from the same file (here the local CPU wheel pip's configuration
    points at, never a CUDA build from the index)."""
    from aipc.pins import load_pins

    torch = load_pins().releases["torch"]
    probe = ("import json, torch, importlib.metadata as m; d = m.distribution('torch'); "
             "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda, "
             "'dist_info': str(d._path)}))")
    seen = {}
    for name in ("uv", "pip"):
        spec = VenvSpec(f"torch-{name}", steps=(), torch=torch)
        # no .pyc at install: not what is compared here, and compiling torch twice would double the test's time
        inst = replace(select(name), compile_bytecode=False)
        py = ensure_venv(spec, tmp_path / "venvs", echo=lambda s: None, installer=inst)
        out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True).stdout
        seen[name] = json.loads(out)
        seen[name]["record"] = _torch_record_hash(Path(seen[name].pop("dist_info")))
    assert seen["uv"] == seen["pip"], seen
    assert seen["uv"]["version"].startswith(torch)
    local = [Path(p) / f for p in PipSources.read().find_links if Path(p).is_dir()
             for f in os.listdir(p) if f.startswith(f"torch-{torch}+cpu-")]
    if local:  # this machine's pip takes its local CPU wheel: both took exactly that file
        assert seen["uv"]["cuda"] is None and seen["uv"]["version"] == f"{torch}+cpu"
        with zipfile.ZipFile(local[0]) as zf:
            record = zf.read(f"torch-{torch}+cpu.dist-info/RECORD").decode()
        assert f"torch/version.py,{seen['uv']['record']}," in record


def test_find_uv_is_safe_from_concurrent_verify_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify's tasks (threads) each pick the installer at once; uv.find_uv_bin reads sysconfig, whose first use is
    not thread-safe on Python 3.11 (a real cold verify died with "can only concatenate str (not 'NoneType')"). aipc
    looks for uv in one thread at a time."""
    import threading
    import time
    import types

    active, peak = [0], [0]
    guard = threading.Lock()

    def find_uv_bin() -> str:
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with guard:
            active[0] -= 1
        return sys.executable

    monkeypatch.setitem(sys.modules, "uv", types.SimpleNamespace(find_uv_bin=find_uv_bin))
    found: list[str | None] = []
    threads = [threading.Thread(target=lambda: found.append(installer.find_uv())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [sys.executable] * 6
    assert peak[0] == 1
