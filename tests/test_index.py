"""``aipc index``: a PEP 503 package index (PEP 658/714 metadata) of a checked wheels folder, that pip installs from.

The wheels are small real ones (zipfile, METADATA/WHEEL/RECORD) named and versioned as aipc's DirectML wheels are
(the Windows platform's distributions at the pinned versions); the folder is written by aipc's own
:func:`aipc.wheelhouse.add_wheels`, so SHA256SUMS and manifest.json are exactly what a build leaves.
"""

from __future__ import annotations

import hashlib
import html.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest

from aipc.fsutil import MARKER, tree_snapshot
from aipc.pins import load_pins
from aipc.platforms import get_platform
from aipc.wheelhouse import SUMS, add_wheels, read_sums
from conftest import ROOT, assert_one_line_error, run_aipc
from fixture_deps import pure_wheel

PINS = load_pins()
WINDOWS = get_platform("windows")
GENAI = WINDOWS.genai_wheel_dist.replace("_", "-")  # onnxruntime-genai-directml
ORT = WINDOWS.ort_wheel_dist.replace("_", "-")  # onnxruntime-directml
GENAI_VERSION = PINS.onnxruntime_genai.version
ORT_VERSION = PINS.onnxruntime.version


class Links(html.parser.HTMLParser):
    """Every ``<a>`` of a page: (attributes, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self.meta: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)
            self.anchors.append((self._open, ""))
        elif tag == "meta":
            found = dict(attrs)
            self.meta[str(found.get("name"))] = found.get("content")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.anchors[-1]
            self.anchors[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None


def links(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def wheel_file(dist: str, version: str) -> str:
    return f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"


def make_wheels(tmp_path: Path, *, decoy: bool = True) -> Path:
    """An aipc wheels folder: the genai DirectML wheel (requires the ORT it was built against, Python >= 3.10), that
    ORT, and (``decoy``) a newer ORT that no Python here can install (Requires-Python >=99)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    specs = [
        (GENAI, GENAI_VERSION, "onnxruntime_genai", f"Requires-Python: >=3.10\nRequires-Dist: {ORT}>={ORT_VERSION}\n"),
        (ORT, ORT_VERSION, "onnxruntime", "Requires-Python: >=3.10\n"),
    ]
    if decoy:
        specs.append((ORT, "1.99.0", "onnxruntime", "Requires-Python: >=99\n"))
    built = []
    for dist, version, module, meta in specs:
        path = scratch / wheel_file(dist, version)
        code = f'"""aipc test fixture standing in for {dist}"""\n__version__ = "{version}"\n'.encode()
        # the project name as the real METADATA spells it (dashes), the file name with underscores (PEP 427)
        pure_wheel(path, dist, version, {f"{module}/__init__.py": code}, {}, metadata=meta)
        built.append(path)
    wheels = tmp_path / "wheels"
    add_wheels(wheels, built, {"producer": "test"})
    return wheels


def index(wheels: Path, site: Path, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_aipc("index", str(wheels), "--out", str(site), *extra, cwd=cwd, clean_env=True)


def test_the_site_is_a_pep503_index_with_hashes_requires_python_and_pep658_metadata(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path)
    sbom = tmp_path / "aipc-wheels.cdx.json"
    sbom.write_text('{"bomFormat": "CycloneDX"}\n', encoding="utf-8")
    site = tmp_path / "site"
    proc = index(wheels, site, "--include", str(sbom))
    assert proc.returncode == 0, proc.stderr
    assert f"{GENAI}: 1 wheel(s), version {GENAI_VERSION}" in proc.stdout

    root = links(site / "simple" / "index.html")
    assert root.meta.get("pypi:repository-version") == "1.0"
    assert sorted(text for _, text in root.anchors) == sorted([GENAI, ORT])  # normalized names (PEP 503)
    assert all(attrs["href"] == f"{text}/" for attrs, text in root.anchors)

    sums = read_sums(wheels)
    assert sums is not None and len(sums) == 3
    seen = {}
    for project in (GENAI, ORT):
        page = site / "simple" / project / "index.html"
        raw = page.read_text(encoding="utf-8")
        assert 'data-requires-python="&gt;=3.10"' in raw  # HTML-escaped
        for attrs, text in links(page).anchors:
            url, fragment = urldefrag(str(attrs["href"]))
            target = (page.parent / unquote(url)).resolve()
            assert target == (site / "files" / text).resolve() and target.is_file()
            assert fragment == f"sha256={sums[text]}" == f"sha256={hashlib.sha256(target.read_bytes()).hexdigest()}"
            assert target.read_bytes() == (wheels / text).read_bytes()
            metadata = target.with_name(target.name + ".metadata").read_bytes()
            with zipfile.ZipFile(target) as zf:
                assert metadata == zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
            digest = f"sha256={hashlib.sha256(metadata).hexdigest()}"
            assert attrs["data-dist-info-metadata"] == attrs["data-core-metadata"] == digest  # PEP 658, PEP 714
            seen[text] = attrs["data-requires-python"]
    assert seen == {wheel_file(GENAI, GENAI_VERSION): ">=3.10", wheel_file(ORT, ORT_VERSION): ">=3.10",
                    wheel_file(ORT, "1.99.0"): ">=99"}
    # beside the wheels: the folder's SHA256SUMS and manifest (sha256sum -c works there) and the included SBOM
    files = site / "files"
    assert (files / SUMS).read_bytes() == (wheels / SUMS).read_bytes()
    assert (files / "manifest.json").read_bytes() == (wheels / "manifest.json").read_bytes()
    assert (files / sbom.name).read_bytes() == sbom.read_bytes()
    landing = (site / "index.html").read_text(encoding="utf-8")
    assert f"pip install {GENAI}=={GENAI_VERSION} --extra-index-url" in landing
    assert (site / MARKER).is_file()
    # a rerun replaces the site aipc wrote (and only that)
    again = index(wheels, site, "--include", str(sbom))
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["scratch", "wheels", "site", sbom.name])


def _pip_env() -> dict[str, str]:
    """No pip configuration at all: every PIP_* variable dropped, no config file (and --isolated on top)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    return env


def test_pip_installs_the_genai_wheel_and_its_ort_from_the_index_alone(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path)
    site = tmp_path / "site"
    proc = index(wheels, site)
    assert proc.returncode == 0, proc.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=_pip_env())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = subprocess.run(
        [str(python), "-m", "pip", "--isolated", "--disable-pip-version-check", "install", "-v", "--no-cache-dir",
         "--index-url", (site / "simple").as_uri(), f"{GENAI}=={GENAI_VERSION}"],
        capture_output=True, text=True, timeout=300, env=_pip_env(), check=False)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    # pip resolved from the PEP 658 metadata files, and passed over the newer ORT on the page's data-requires-python
    for name in (wheel_file(GENAI, GENAI_VERSION), wheel_file(ORT, ORT_VERSION)):
        assert f"/files/{name}.metadata" in install.stdout, install.stdout[-3000:]
    assert "requires a different Python" in install.stdout and "1.99.0" in install.stdout, install.stdout[-3000:]
    assert f"{wheel_file(ORT, '1.99.0')}.metadata" not in install.stdout
    show = subprocess.run([str(python), "-c", "import onnxruntime, onnxruntime_genai; "
                           "print(onnxruntime.__version__, onnxruntime_genai.__version__)"],
                          capture_output=True, text=True, timeout=60, env=_pip_env(), check=True)
    assert show.stdout.split() == [ORT_VERSION, GENAI_VERSION]


def test_a_tampered_wheel_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path, decoy=False)
    target = wheels / wheel_file(ORT, ORT_VERSION)
    data = bytearray(target.read_bytes())
    data[-30] ^= 0xFF  # one byte, after SHA256SUMS was written
    target.write_bytes(bytes(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = index(wheels, tmp_path / "site")
    line = assert_one_line_error(proc.returncode, proc.stderr, target.name, "refusing to publish", code=1)
    assert "sha256" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no site, no temporary folder left


def test_an_existing_site_survives_a_refused_run(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path, decoy=False)
    site = tmp_path / "site"
    assert index(wheels, site).returncode == 0
    snapshot = tree_snapshot(site)
    (wheels / wheel_file(GENAI, GENAI_VERSION)).write_bytes(b"not the wheel that was built")
    proc = index(wheels, site)
    assert_one_line_error(proc.returncode, proc.stderr, "refusing to publish", code=1)
    assert tree_snapshot(site) == snapshot


def test_a_folder_without_sha256sums_is_refused_with_the_way_out(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    pure_wheel(loose / wheel_file(ORT, ORT_VERSION), ORT, ORT_VERSION, {}, {})
    proc = index(loose, tmp_path / "site")
    assert_one_line_error(proc.returncode, proc.stderr, "has no SHA256SUMS", "aipc build", code=2)
    assert not (tmp_path / "site").exists()


def test_a_wheel_whose_metadata_names_another_project_is_refused(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    liar = scratch / wheel_file(GENAI, GENAI_VERSION)
    pure_wheel(liar, "something-else", GENAI_VERSION, {}, {})  # METADATA Name: something-else
    add_wheels(tmp_path / "wheels", [liar], {})
    proc = index(tmp_path / "wheels", tmp_path / "site")
    assert_one_line_error(proc.returncode, proc.stderr, "its METADATA says something-else", code=1)
    assert not (tmp_path / "site").exists()


def test_a_wheel_with_an_invalid_requires_python_is_refused(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    odd = scratch / wheel_file(ORT, ORT_VERSION)
    pure_wheel(odd, ORT, ORT_VERSION, {}, {}, metadata="Requires-Python: >=3.10,<\n")
    add_wheels(tmp_path / "wheels", [odd], {})
    proc = index(tmp_path / "wheels", tmp_path / "site")
    assert_one_line_error(proc.returncode, proc.stderr, odd.name, "invalid METADATA", code=1)
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("where", ["wheels", "parent", "cwd"])
def test_out_may_not_be_the_wheels_folder_or_hold_it(tmp_path: Path, where: str) -> None:
    wheels = make_wheels(tmp_path, decoy=False)
    out = {"wheels": wheels, "parent": tmp_path, "cwd": tmp_path / "here"}[where]
    out.mkdir(exist_ok=True)
    before = tree_snapshot(tmp_path)
    proc = index(wheels, out, cwd=out if where == "cwd" else None)
    assert_one_line_error(proc.returncode, proc.stderr, "output folder", code=2)
    assert tree_snapshot(tmp_path) == before


def test_an_existing_folder_of_someone_elses_files_is_untouched(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path, decoy=False)
    mine = tmp_path / "my-site"
    (mine / "simple").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine\n", encoding="utf-8")
    (mine / "simple" / "index.html").write_text("<p>my own page</p>\n", encoding="utf-8")
    before = tree_snapshot(mine)
    proc = index(wheels, mine)
    assert_one_line_error(proc.returncode, proc.stderr, "aipc did not make it", code=2)
    assert tree_snapshot(mine) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-site", "scratch", "wheels"]


def test_clumsy_command_lines(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path, decoy=False)
    missing = index(tmp_path / "nope", tmp_path / "site")
    assert_one_line_error(missing.returncode, missing.stderr, "does not exist", code=2)
    no_out = run_aipc("index", str(wheels), clean_env=True)
    assert_one_line_error(no_out.returncode, no_out.stderr, "--out", code=2)
    gone = index(wheels, tmp_path / "site", "--include", str(tmp_path / "sbom.json"))
    assert_one_line_error(gone.returncode, gone.stderr, "--include", "is not a file", code=2)
    clash = tmp_path / SUMS
    clash.write_text("x\n", encoding="utf-8")
    proc = index(wheels, tmp_path / "site", "--include", str(clash))
    assert_one_line_error(proc.returncode, proc.stderr, "already has a file named SHA256SUMS", code=2)
    a_file = tmp_path / "site.txt"
    a_file.write_text("mine\n", encoding="utf-8")
    proc = index(wheels, a_file)
    assert_one_line_error(proc.returncode, proc.stderr, "not a folder", code=2)
    assert a_file.read_text(encoding="utf-8") == "mine\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = index(empty, tmp_path / "site")
    assert_one_line_error(proc.returncode, proc.stderr, "holds no wheel", code=2)
    assert not (tmp_path / "site").exists()


def test_anchor_escapes_what_html_needs() -> None:
    from aipc.wheelbuild.index import IndexedWheel

    wheel = IndexedWheel("a_b-1.0+local-py3-none-any.whl", "a-b", "1.0+local", "0" * 64, '!=3.11.*,>=3.10,<"4"',
                         "1" * 64)
    parser = Links()
    parser.feed(wheel.anchor())
    ((attrs, text),) = parser.anchors
    assert attrs["data-requires-python"] == '!=3.11.*,>=3.10,<"4"'
    assert attrs["href"] == f"../../files/a_b-1.0%2Blocal-py3-none-any.whl#sha256={'0' * 64}"
    assert text == wheel.file


def test_the_readme_opens_with_the_one_command_at_the_pinned_version() -> None:
    """The README's first section names the real distribution (the Windows platform's genai wheel) at the pinned
    genai version, pinned with ==, from the Pages site's simple/ index; and the ORT it requires."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = readme.split("\n## ", 2)[1]
    command = f"pip install {GENAI}=={GENAI_VERSION} --extra-index-url https://OWNER.github.io/REPO/simple"
    assert command in first, first[:600]
    assert f"{ORT}>={ORT_VERSION}" in first and f"{ORT}=={ORT_VERSION}" in first
    pythons = sorted(PINS.wheel_pythons, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert f"Python {pythons[0]} to {pythons[-1]}" in first  # the Pythons the release builds wheels for


def test_an_interrupted_run_leaves_the_old_site_whole_and_no_temporary_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> None:
    from aipc.wheelbuild import index as index_mod

    wheels = make_wheels(tmp_path)
    site = tmp_path / "site"
    index_mod.build_index(wheels, site, echo=lambda _line: None)
    snapshot = tree_snapshot(site)
    real = index_mod._read_wheel
    calls = []

    def interrupted(path: Path, digest: str) -> object:
        calls.append(path.name)
        if len(calls) == 2:  # half way: one wheel and its metadata already copied into the new site
            raise KeyboardInterrupt
        return real(path, digest)

    monkeypatch.setattr(index_mod, "_read_wheel", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index_mod.build_index(wheels, site, echo=lambda _line: None)
    assert len(calls) == 2
    assert tree_snapshot(site) == snapshot
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != isolated_cache.name) == ["scratch", "site", "wheels"]
