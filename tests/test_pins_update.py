"""``aipc pins update``: upstream tags and files -> a proposed pins file, refused pairs, ``--check``/``--write``.

The upstreams are local git repositories made here: an onnxruntime-genai whose ``cmake/ortlib.cmake`` has the real
file's shape (a default ORT version, a ``USE_DML`` branch overriding it, DirectML and D3D12 NuGet downloads), its
``packages.config`` (DXC), ``build.py`` and ``requirements-dev.txt``; an ONNX Runtime with ``VERSION_NUMBER`` and its
``packages.config`` (the DirectML redistributable). Release lookups read a ``--releases`` JSON file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from aipc.errors import ExitCode
from aipc.pins import DEFAULT_PINS, check_compat, compat_row_for, load_pins
from aipc.wheelbuild import pinupdate
from conftest import assert_one_line_error, run_aipc

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
PINNED_GENAI = "ed5f4e87147731e5b07810f9f5c90103b3603cdf"
PINNED_ORT = "2d924974ef147392ced8409d36bd6d2e7fcc8a74"


def git(repo: Path, *args: str) -> str:
    import os

    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **GIT_ENV}, timeout=60)
    return out.stdout.strip()


def ortlib(dml_ort: str, default_ort: str = "1.26.0", dml: str = "1.15.2", d3d12: str = "1.614.1") -> str:
    """A cmake/ortlib.cmake shaped like genai's: ORT_HOME wins; else a default ORT package version, replaced in the
    USE_DML branch; a DirectML build also downloads DirectML and D3D12 from nuget.org."""
    return f"""# fixture: where the ONNX Runtime headers and libraries come from
if(ORT_HOME)
  message(STATUS "ORT from ${{ORT_HOME}}")
  set(ORT_HEADER_DIR ${{ORT_HOME}}/include)
else()
  # download a package from the feed
  set(ORT_VERSION "{default_ort}")
  if (USE_DML)
    set(ORT_VERSION "{dml_ort}")
    set(ORT_PACKAGE_NAME "Microsoft.ML.OnnxRuntime.DirectML")
  elseif(USE_CUDA)
    set(ORT_PACKAGE_NAME "Microsoft.ML.OnnxRuntime.Gpu")
  else()
    set(ORT_PACKAGE_NAME "Microsoft.ML.OnnxRuntime")
  endif()
  FetchContent_Declare(ortlib URL https://feed.invalid/${{ORT_PACKAGE_NAME}}/${{ORT_VERSION}})
endif()

if(USE_DML)
  set(DML_VERSION "{dml}")
  set(DML_PACKAGE_NAME "Microsoft.AI.DirectML")
  FetchContent_Declare(dmllib URL https://nuget.invalid/${{DML_PACKAGE_NAME}}/${{DML_VERSION}})
  set(D3D12_VERSION "{d3d12}")
  set(D3D12_PACKAGE_NAME "Microsoft.Direct3D.D3D12")
  FetchContent_Declare(d3d12lib URL https://nuget.invalid/${{D3D12_PACKAGE_NAME}}/${{D3D12_VERSION}})
endif()
"""


def packages_config(**packages: str) -> str:
    rows = "".join(f'  <package id="{name}" version="{version}" targetFramework="native" />\n'
                   for name, version in packages.items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<packages>\n{rows}</packages>\n'


def commit_genai(repo: Path, *, dml_ort: str, version: str, dml: str = "1.15.2", dxc: str = "1.7.2308.12",
                 requests: str = "2.33.0", telemetry: bool = True) -> str:
    (repo / "cmake").mkdir(parents=True, exist_ok=True)
    (repo / "cmake" / "ortlib.cmake").write_text(ortlib(dml_ort, dml=dml), encoding="utf-8")
    (repo / "packages.config").write_text(packages_config(**{"Microsoft.Direct3D.DXC": dxc}), encoding="utf-8")
    flag = '    parser.add_argument("--no_telemetry", action="store_true")\n' if telemetry else ""
    (repo / "build.py").write_text(f"import argparse\nparser = argparse.ArgumentParser()\n{flag}", encoding="utf-8")
    (repo / "requirements-dev.txt").write_text(f"# build tools\nrequests=={requests}\nwheel==0.47.0\npybind11==3.0.4\n",
                                               encoding="utf-8")
    (repo / "VERSION_INFO").write_text(version + "\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Release {version}")
    return git(repo, "rev-parse", "HEAD")


def commit_ort(repo: Path, version: str, dml_redist: str = "1.15.4", extra_requirement: str = "") -> str:
    (repo / "VERSION_NUMBER").write_text(version + "\n", encoding="utf-8")
    for system in ("windows", "linux"):  # ORT's Python build requirements, as its CI installs them
        folder = repo / "tools" / "ci_build" / "github" / system / "python"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "requirements.txt").write_text(f"numpy\nwheel\nprotobuf==4.25.1\nsympy\n{extra_requirement}\n",
                                                 encoding="utf-8")
    cfg = packages_config(**{"Microsoft.AI.DirectML": dml_redist, "GoogleTestAdapter": "0.18.0"})
    (repo / "packages.config").write_text(cfg, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"ORT {version}")
    return git(repo, "rev-parse", "HEAD")


class Upstreams:
    """Two local upstream repositories, a pins file pointing at them and a releases file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.genai = root / "onnxruntime-genai"
        self.ort = root / "onnxruntime"
        for repo in (self.genai, self.ort):
            repo.mkdir(parents=True)
            git(repo, "init", "-q", "-b", "main")
        self.genai_v0152 = commit_genai(self.genai, dml_ort="1.24.4", version="0.15.2")
        git(self.genai, "tag", "v0.15.2")  # lightweight, as upstream's
        git(self.genai, "tag", "-a", "v0.15.0-rc1", "-m", "rc")  # a pre-release: never a candidate
        self.ort_v1244 = commit_ort(self.ort, "1.24.4")
        git(self.ort, "tag", "-a", "v1.24.4", "-m", "ORT 1.24.4")
        self.releases = root / "releases.json"
        self.set_releases(pypi=["1.23.0", "1.24.4"], nuget=["1.24.4"])
        self.folder = root / "aipc"
        (self.folder / "constraints").mkdir(parents=True)
        for name in ("genai-build.txt", "ort-build.txt"):
            shutil.copy(DEFAULT_PINS.with_name("constraints") / name, self.folder / "constraints")
        text = DEFAULT_PINS.read_text(encoding="utf-8")
        for old, new in ((PINNED_GENAI, self.genai_v0152), (PINNED_ORT, self.ort_v1244),
                         ("https://github.com/microsoft/onnxruntime-genai.git", str(self.genai)),
                         ("https://github.com/microsoft/onnxruntime.git", str(self.ort))):
            assert old in text, old
            text = text.replace(old, new)
        self.pins = self.folder / "pins.toml"
        self.pins.write_text(text, encoding="utf-8")

    def set_releases(self, pypi: list[str], nuget: list[str]) -> None:
        data = {"pypi": {"onnxruntime-directml": pypi}, "nuget": {"Microsoft.ML.OnnxRuntime.DirectML": nuget}}
        self.releases.write_text(json.dumps(data), encoding="utf-8")

    def update(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_aipc("pins", "update", "--pins", str(self.pins), "--releases", str(self.releases), *args,
                        clean_env=True, cwd=self.root)


@pytest.fixture
def up(tmp_path: Path) -> Upstreams:
    return Upstreams(tmp_path)


@pytest.fixture(scope="module")
def still(tmp_path_factory: pytest.TempPathFactory) -> Upstreams:
    """Upstreams no test changes (read-only cases share one)."""
    return Upstreams(tmp_path_factory.mktemp("still"))


def test_current_pins_are_current(still: Upstreams) -> None:
    res = still.update("--check")
    assert res.returncode == ExitCode.OK, res.stdout + res.stderr
    assert "pins are current" in res.stdout
    assert "newest usable: onnxruntime-genai v0.15.2 (lightweight tag" in res.stdout
    assert "ONNX Runtime v1.24.4 (annotated tag" in res.stdout
    assert "USE_DML=ON; without it: 1.26.0" in res.stdout  # the DML branch overrides the default
    assert "---" not in res.stdout  # no diff


def test_a_new_annotated_genai_release_is_proposed_checked_written_then_current(up: Upstreams) -> None:
    new_genai = commit_genai(up.genai, dml_ort="1.25.1", version="0.16.0", dml="1.15.5", dxc="1.8.2505.1",
                             requests="2.34.0", telemetry=False)
    git(up.genai, "tag", "-a", "v0.16.0", "-m", "Release 0.16.0")
    tag_object = git(up.genai, "rev-parse", "v0.16.0")
    assert tag_object != new_genai  # an annotated tag: the pins must record the commit, not the tag object
    git(up.genai, "tag", "v0.17.0-rc1")  # newer, but a pre-release
    new_ort = commit_ort(up.ort, "1.25.1", dml_redist="1.15.6", extra_requirement="cmake-format>=0.6")
    git(up.ort, "tag", "v1.25.1")  # lightweight
    up.set_releases(pypi=["1.24.4"], nuget=["1.24.4", "1.25.1"])
    before = up.pins.read_text(encoding="utf-8")

    shown = up.update()
    assert shown.returncode == ExitCode.OK, shown.stdout + shown.stderr
    assert up.pins.read_text(encoding="utf-8") == before  # without --write nothing is written
    out = shown.stdout
    assert f"onnxruntime-genai v0.16.0 (annotated tag, {new_genai})" in out
    assert f"ONNX Runtime v1.25.1 (lightweight tag, {new_ort})" in out
    assert f'+commit = "{new_genai}"' in out and f'-commit = "{up.genai_v0152}"' in out
    assert tag_object not in out
    assert "Microsoft.ML.OnnxRuntime.DirectML 1.25.1 (nuget)" in out
    assert '+"Microsoft.AI.DirectML" = "1.15.5"' in out and '+"Microsoft.Direct3D.DXC" = "1.8.2505.1"' in out
    assert '+"Microsoft.AI.DirectML.ort" = "1.15.6"' in out
    assert "+requests==2.34.0" in out  # constraints/genai-build.txt follows genai's requirements-dev.txt
    assert "update: [onnxruntime_genai] has_no_telemetry -> false (build.py at v0.16.0 has no --no_telemetry)" in out
    assert f"update: [onnxruntime_genai] v0.15.2 ({up.genai_v0152[:12]}) -> v0.16.0 (annotated tag, {new_genai})" \
        in out
    # ORT's build requirements at the new tag name a package constraints/ort-build.txt does not pin: listed, not
    # guessed (pip resolves it per platform)
    assert "not updated: constraints/ort-build.txt (windows): cmake-format (cmake-format>=0.6) is not pinned" in out
    assert "not updated: constraints/ort-build.txt (linux): cmake-format" in out
    assert "not updated: README.md, first section: the pip install command" in out  # tests/test_index.py checks it

    check = up.update("--check")
    assert check.returncode == ExitCode.UPDATES == 3, check.stdout + check.stderr
    assert ExitCode.UPDATES not in (ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE)  # not `aipc pins --check`'s 1

    wrote = up.update("--write")
    assert wrote.returncode == ExitCode.OK, wrote.stdout + wrote.stderr
    assert "wrote " in wrote.stdout
    pins = load_pins(up.pins)
    assert (pins.onnxruntime_genai.tag, pins.onnxruntime_genai.commit, pins.onnxruntime_genai.version) == \
        ("v0.16.0", new_genai, "0.16.0")
    assert (pins.onnxruntime.tag, pins.onnxruntime.commit, pins.onnxruntime.version) == ("v1.25.1", new_ort, "1.25.1")
    assert pins.genai_has_no_telemetry is False
    assert pins.nuget["Microsoft.ML.OnnxRuntime.DirectML"] == "1.25.1"
    assert pins.nuget["Microsoft.Direct3D.D3D12"] == "1.614.1"  # unchanged upstream, unchanged here
    row = compat_row_for(pins, "0.16.0")  # the new row wins over the older "main (0.16.0-dev)" row
    assert (row.genai, row.ort_min) == ("==0.16.0", "1.25.1")
    assert "cmake/ortlib.cmake at v0.16.0" in row.source and "v1.25.1" in row.source
    check_compat(pins)
    text = up.pins.read_text(encoding="utf-8")
    assert "# build.py gained --no_telemetry in v0.15.0" in text  # comments and layout are kept
    assert text.count("[[compat]]") == len(load_pins(DEFAULT_PINS).compat) + 1
    assert "requests==2.34.0" in (up.folder / "constraints" / "genai-build.txt").read_text(encoding="utf-8")
    assert not list(up.folder.glob(".*tmp*")) and not list(up.folder.glob(".pins-update-*"))

    again = up.update("--check")
    assert again.returncode == ExitCode.OK, again.stdout + again.stderr
    assert "pins are current" in again.stdout


def test_an_ort_requirement_without_tag_or_directml_release_is_refused_with_the_reason(up: Upstreams) -> None:
    # v0.16.0: ORT 1.24.5 is tagged upstream but has no DirectML release; v0.17.0: a nightly ORT, no tag at all
    commit_genai(up.genai, dml_ort="1.24.5", version="0.16.0")
    git(up.genai, "tag", "v0.16.0")
    commit_genai(up.genai, dml_ort="1.27.0-dev-20260801", version="0.17.0")
    git(up.genai, "tag", "-a", "v0.17.0", "-m", "0.17.0")
    commit_ort(up.ort, "1.24.5")
    git(up.ort, "tag", "v1.24.5")
    before = up.pins.read_text(encoding="utf-8")

    res = up.update("--check")
    assert res.returncode == ExitCode.OK, res.stdout + res.stderr  # the pinned pair is still the newest usable
    out = res.stdout
    assert "refused: onnxruntime-genai v0.17.0: its DirectML build uses ONNX Runtime 1.27.0-dev-20260801" in out
    assert f"ORT tag v1.27.0-dev-20260801 does not exist in {up.ort}" in out
    assert "refused: onnxruntime-genai v0.16.0" in out
    assert ("ONNX Runtime 1.24.5 has no DirectML release: neither PyPI onnxruntime-directml nor NuGet "
            "Microsoft.ML.OnnxRuntime.DirectML has 1.24.5") in out
    assert "pins are current (2 newer release(s) refused, see above)" in out
    assert up.update("--write").returncode == ExitCode.OK
    assert up.pins.read_text(encoding="utf-8") == before

    # once the DirectML release appears, v0.16.0 is taken (v0.17.0 stays refused)
    up.set_releases(pypi=["1.24.4", "1.24.5"], nuget=["1.24.4"])
    res = up.update("--check")
    assert res.returncode == ExitCode.UPDATES, res.stdout + res.stderr
    assert "newest usable: onnxruntime-genai v0.16.0" in res.stdout
    assert "kept: constraints/ort-build.txt pins every name of tools/ci_build/github/windows/python/" \
           "requirements.txt at ORT v1.24.5 (windows" in res.stdout
    assert "onnxruntime-directml 1.24.5 (pypi)" in res.stdout


def test_nothing_pinnable_is_an_error(up: Upstreams) -> None:
    up.set_releases(pypi=[], nuget=[])
    res = up.update("--check")
    assert_one_line_error(res.returncode, res.stderr, "no onnxruntime-genai release", "v0.15.2",
                          "no DirectML release", code=ExitCode.FAILED)


def test_a_moved_tag_is_reported_never_taken(up: Upstreams) -> None:
    moved = commit_genai(up.genai, dml_ort="1.24.4", version="0.15.2", requests="2.99.0")
    git(up.genai, "tag", "-f", "v0.15.2", moved)
    before = up.pins.read_text(encoding="utf-8")
    for flags in (("--check",), ("--write",)):
        res = up.update(*flags)
        line = assert_one_line_error(res.returncode, res.stderr, "moved tag", "v0.15.2", moved,
                                     code=ExitCode.FAILED)
        assert "nothing was written" in line
        assert "PROBLEM: moved tag" in res.stdout
    assert up.pins.read_text(encoding="utf-8") == before


def test_a_moved_annotated_ort_tag_is_reported(up: Upstreams) -> None:
    moved = commit_ort(up.ort, "1.24.4", dml_redist="1.15.9")
    git(up.ort, "tag", "-f", "-a", "v1.24.4", "-m", "again", moved)
    res = up.update("--check")
    assert_one_line_error(res.returncode, res.stderr, "moved tag", "onnxruntime v1.24.4", moved, code=1)


@pytest.mark.parametrize("case", ["missing-repo", "not-a-repo", "missing-releases", "bad-releases", "both-modes",
                                  "repo-is-file", "empty-repo"])
def test_bad_input_is_one_line(still: Upstreams, case: str) -> None:
    up = still
    bad = up.root / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    plain = up.root / "plain"
    plain.mkdir(exist_ok=True)
    args, code, needle = {
        "missing-repo": (("--genai-repo", str(up.root / "nope")), 2, "--genai-repo"),
        "repo-is-file": (("--ort-repo", str(bad)), 2, "is not a folder"),
        "not-a-repo": (("--genai-repo", str(plain)), 1, "cannot list the tags"),
        "missing-releases": (("--releases", str(up.root / "nope.json")), 2, "nope.json"),
        "bad-releases": (("--releases", str(bad)), 2, "is not JSON"),
        "both-modes": (("--check", "--write"), 2, "--check and --write"),
        "empty-repo": (("--ort-repo", ""), 2, "--ort-repo is empty"),
    }[case]
    res = up.update(*args)
    assert_one_line_error(res.returncode, res.stderr, needle, code=code)


def test_repos_given_on_the_command_line_win_over_the_pins(up: Upstreams, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    subprocess.run(["git", "clone", "-q", "--mirror", str(up.genai), str(mirror)], check=True, timeout=60)
    commit_genai(up.genai, dml_ort="1.24.4", version="0.15.3")
    git(up.genai, "tag", "v0.15.3")  # only in the pinned repo, not in the mirror
    res = up.update("--check", "--genai-repo", str(mirror))
    assert res.returncode == ExitCode.OK and "pins are current" in res.stdout, res.stdout + res.stderr
    assert up.update("--check").returncode == ExitCode.UPDATES


# --- units ---------------------------------------------------------------------------------------------------------


def test_ls_remote_peels_annotated_tags() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    tags = pinupdate.parse_ls_remote(f"{a}\trefs/tags/v1.0.0\n{b}\trefs/tags/v2.0.0\n{c}\trefs/tags/v2.0.0^{{}}\n"
                                     f"{a}\trefs/heads/main\n")
    assert tags["v1.0.0"] == pinupdate.RemoteTag("v1.0.0", a, False)
    assert tags["v2.0.0"] == pinupdate.RemoteTag("v2.0.0", c, True)
    assert set(tags) == {"v1.0.0", "v2.0.0"}


@pytest.mark.parametrize(("tag", "stable"), [("v0.15.2", True), ("1.24.4", True), ("v0.16.0-rc1", False),
                                             ("v0.16.0rc1", False), ("rel-0.12.2", False), ("v1.2", False)])
def test_only_plain_release_tags_are_candidates(tag: str, stable: bool) -> None:
    assert (pinupdate.release_version(tag) is not None) == stable


def test_ortlib_reader_takes_the_dml_branch_and_the_nuget_downloads() -> None:
    facts = pinupdate.read_ortlib(ortlib("1.24.4"), "cmake/ortlib.cmake")
    assert (facts.ort_version, facts.default_version) == ("1.24.4", "1.26.0")
    assert facts.nuget == {"Microsoft.ML.OnnxRuntime.DirectML": "1.24.4", "Microsoft.AI.DirectML": "1.15.2",
                           "Microsoft.Direct3D.D3D12": "1.614.1"}
    # no DML override: the DirectML build downloads the default version
    plain = ortlib("X").replace('    set(ORT_VERSION "X")\n', "")
    assert pinupdate.read_ortlib(plain, "f").ort_version == "1.26.0"
    with pytest.raises(pinupdate.PinsError, match="does not decide the ORT version"):
        pinupdate.read_ortlib("set(OTHER 1)\n", "f")


def test_online_releases_answer_from_pypi_and_nuget_json_and_fail_in_one_line() -> None:
    import urllib.error

    answers = {
        "https://pypi.org/pypi/onnxruntime-directml/json": {"releases": {
            "1.24.4": [{"yanked": False}], "1.24.5": [], "1.20.0": [{"yanked": True}]}},
        "https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.directml/index.json": {
            "versions": ["1.24.4", "1.25.0-dev"]},
    }
    asked: list[str] = []

    def get(url: str) -> object:
        asked.append(url)
        return answers[url]

    online = pinupdate.OnlineReleases(get_json=get)
    assert {str(v) for v in online.versions("pypi", "onnxruntime-directml") or ()} == {"1.24.4"}
    online.versions("pypi", "onnxruntime-directml")
    assert len(asked) == 1  # once per run, however many candidates ask
    assert {str(v) for v in online.versions("nuget", "Microsoft.ML.OnnxRuntime.DirectML") or ()} == \
        {"1.24.4", "1.25.0.dev0"}

    def offline(url: str) -> object:
        raise urllib.error.URLError("Temporary failure in name resolution")

    with pytest.raises(pinupdate.AipcError) as info:
        pinupdate.OnlineReleases(get_json=offline).versions("pypi", "onnxruntime-directml")
    line = info.value.one_line()
    assert "name resolution" in line and "--releases FILE" in line and "\n" not in line


def test_toml_edits_keep_comments_and_trailing_text() -> None:
    text = '[a]\n# keep\nx = "1"  # why\n[b]\nx = "2"\n"Q.R" = "3"\n'
    assert pinupdate.set_value(text, "b", "x", '"9"') == '[a]\n# keep\nx = "1"  # why\n[b]\nx = "9"\n"Q.R" = "3"\n'
    assert pinupdate.set_value(text, "a", "x", '"9"').splitlines()[2] == 'x = "9"  # why'
    assert pinupdate.set_value(text, "b", "Q.R", '"4"').endswith('"Q.R" = "4"\n')
    with pytest.raises(pinupdate.PinsError, match="no y in"):
        pinupdate.set_value(text, "a", "y", '"1"')


def test_one_unreachable_registry_is_enough_when_the_other_has_the_release() -> None:
    import urllib.error

    def pypi_only(url: str) -> object:
        if "pypi.org" in url:
            return {"releases": {"1.24.4": [{"yanked": False}]}}
        raise urllib.error.URLError("Name or service not known")

    online = pinupdate.OnlineReleases(get_json=pypi_only)
    assert pinupdate.dml_release_problem("1.24.4", online) == (None, ["onnxruntime-directml 1.24.4 (pypi)"])
    with pytest.raises(pinupdate.AipcError, match="Name or service not known"):
        pinupdate.dml_release_problem("1.25.0", online)  # PyPI lacks it and NuGet cannot be asked: no verdict


def test_the_scheduled_workflow_checks_then_writes_and_opens_a_pull_request() -> None:
    import yaml

    from conftest import ROOT

    text = (ROOT / ".github" / "workflows" / "update-pins.yml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    triggers = data[True]  # YAML 1.1 reads `on:` as True
    assert "cron" in triggers["schedule"][0] and "workflow_dispatch" in triggers
    assert data["permissions"] == {}
    (job,) = data["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    steps = job["steps"]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    runs = [str(s.get("run", "")) for s in steps]
    check = next(r for r in runs if "aipc pins update --check" in r)
    assert f"{int(ExitCode.UPDATES)}) echo \"update=true\"" in check and '*) exit "$rc"' in check
    write = next(s for s in steps if "aipc pins update --write" in str(s.get("run", "")))
    assert write["if"] == "steps.check.outputs.update == 'true'"
    assert any("gh pr create" in r for r in runs)


def _real_genai() -> Path | None:
    from conftest import ROOT

    for base in (ROOT.parent, ROOT.parent.parent):
        tree = base / "shared" / "upstream" / "onnxruntime-genai"
        if (tree / "cmake" / "ortlib.cmake").is_file():
            return tree
    return None


@pytest.mark.skipif(_real_genai() is None, reason="the real upstream trees (../shared/upstream) are not here")
def test_the_real_v0152_tree_gives_the_shipped_pins() -> None:
    tree = _real_genai()
    assert tree is not None
    facts = pinupdate.read_ortlib((tree / "cmake" / "ortlib.cmake").read_text(encoding="utf-8"), "cmake/ortlib.cmake")
    pins = load_pins(DEFAULT_PINS)
    assert (facts.ort_version, facts.default_version) == (pins.onnxruntime.version, "1.26.0") == ("1.24.4", "1.26.0")
    for package, version in facts.nuget.items():
        assert pins.nuget[package] == version, package
    assert set(facts.nuget) == {"Microsoft.ML.OnnxRuntime.DirectML", "Microsoft.AI.DirectML",
                                "Microsoft.Direct3D.D3D12"}
    dxc = pinupdate.packages_config_versions((tree / "packages.config").read_text(encoding="utf-8"))
    assert dxc == {"Microsoft.Direct3D.DXC": pins.nuget["Microsoft.Direct3D.DXC"]}
    reqs = pinupdate.pinned_requirements((tree / "requirements-dev.txt").read_text(encoding="utf-8"))
    constraints = pinupdate.pinned_requirements((DEFAULT_PINS.with_name("constraints") / "genai-build.txt")
                                                .read_text(encoding="utf-8"))
    assert reqs and all(constraints[name] == version for name, version in reqs.items())


def test_a_tag_whose_sources_are_another_version_is_refused(up: Upstreams) -> None:
    # upstream's v0.12.2 tag names a main commit, not the release branch: VERSION_INFO tells
    commit_genai(up.genai, dml_ort="1.24.4", version="0.17.0-dev")
    git(up.genai, "tag", "v0.16.2")
    res = up.update("--check")
    assert res.returncode == ExitCode.OK, res.stdout + res.stderr
    assert "refused: onnxruntime-genai v0.16.2: VERSION_INFO at v0.16.2 says '0.17.0-dev', not 0.16.2" in res.stdout


def test_scripts_and_workflows_hard_code_nothing_pins_update_changes() -> None:
    """What `aipc pins update` rewrites (tags, commits and versions of the source pair, the [nuget] versions) is read
    from pins.toml by the bootstrap scripts and the workflows when they run: none of them may repeat a value in code
    (comments aside), or an update would leave it behind."""
    import re

    from conftest import ROOT

    pins = load_pins(DEFAULT_PINS)
    values = {v for src in (pins.onnxruntime, pins.onnxruntime_genai) for v in (src.tag, src.commit, src.version)}
    values |= set(pins.nuget.values())
    files = [*sorted((ROOT / "scripts").glob("bootstrap-*")), *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    assert len(files) >= 3
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
            found += [f"{path.name}:{number}: {value}" for value in values
                      if re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", code)]
    assert not found, found


def test_an_ort_tag_whose_version_number_differs_is_refused(up: Upstreams) -> None:
    commit_genai(up.genai, dml_ort="1.25.0", version="0.16.0")
    git(up.genai, "tag", "v0.16.0")
    commit_ort(up.ort, "1.26.0")
    git(up.ort, "tag", "v1.25.0")  # names a commit whose VERSION_NUMBER says 1.26.0
    up.set_releases(pypi=["1.24.4", "1.25.0"], nuget=[])
    res = up.update("--check")
    assert res.returncode == ExitCode.OK, res.stdout + res.stderr
    assert "refused: onnxruntime-genai v0.16.0: ORT tag v1.25.0 holds VERSION_NUMBER '1.26.0', not 1.25.0" \
        in res.stdout


def test_pins_options_before_update_are_refused_not_dropped(still: Upstreams) -> None:
    for flag, needle in (("--check", "aipc pins update --check"), ("--json", "has no --json")):
        res = run_aipc("pins", flag, "update", "--pins", str(still.pins), "--releases", str(still.releases),
                       clean_env=True, cwd=still.root)
        assert_one_line_error(res.returncode, res.stderr, needle, code=ExitCode.USAGE, alone=True)
