"""Wheels fit to publish (issue 14): bundled licenses (PEP 639) and the manylinux tag auditwheel finds (PEP 600).

Fast: the wheels are made here (tiny shared libraries compiled with the C compiler, a fixture laid out like the
openvino wheel's site-packages); auditwheel and the ``wheel`` tool run for real. The real NPU wheel is checked in
tests/test_npu_build.py (slow).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.metadata import Metadata

from aipc import wheelfit
from aipc.errors import AipcError
from aipc.npu import build, licenses
from aipc.npu.wheel import lib_dir, required_members, wheel_name
from aipc.platforms import get_platform
from aipc.wheelbuild import wheelset
from aipc.wheelhouse import add_wheels, collected_name, read_manifest, read_sums, verify_sums

CC = shutil.which("cc") or shutil.which("gcc")
needs_linux_cc = pytest.mark.skipif(not sys.platform.startswith("linux") or CC is None,
                                    reason="needs Linux and a C compiler to make ELF fixtures")
LINUX = get_platform("linux")


def compile_lib(tmp: Path, name: str, code: str, *link: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(code, encoding="utf-8")
    out = tmp / name
    subprocess.run([str(CC), "-shared", "-fPIC", "-O1", "-o", str(out), str(src), *link], check=True,
                   capture_output=True, timeout=120)
    return out


def make_wheel(directory: Path, dist: str, tag: str, members: dict[str, bytes], *, version: str = "1.0",
               metadata_version: str = "2.1") -> Path:
    """A wheel with a correct RECORD (sha256 of every member) and WHEEL."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{dist}-{version}.dist-info"
    files = dict(members)
    files[f"{info}/METADATA"] = (f"Metadata-Version: {metadata_version}\nName: {dist}\nVersion: {version}\n"
                                 "License: Apache-2.0\n\nThe description\n\nkept as it is.\n").encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n").encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([name, f"sha256={digest}", len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files[f"{info}/RECORD"] = record.getvalue().encode()
    path = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def record_problems(wheel: Path) -> list[str]:
    """Every member listed in RECORD with its true sha256 and size, and every member listed."""
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        rows = {r[0]: r for r in csv.reader(io.StringIO(zf.read(record_name).decode()))}
        for name in names:
            if name not in rows:
                problems.append(f"{name} not in RECORD")
            elif name != record_name:
                data = zf.read(name)
                digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if rows[name][1] != digest or rows[name][2] != str(len(data)):
                    problems.append(f"{name}: RECORD says {rows[name][1:]}")
        problems += [f"{n} in RECORD but not in the wheel" for n in rows if n not in names]
    return problems


def wheel_text(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(suffix))).decode()


# --- manylinux tags ----------------------------------------------------------------------------------------------


@needs_linux_cc
def test_a_linux_wheel_gets_the_policy_auditwheel_reports(tmp_path: Path) -> None:
    lib = compile_lib(tmp_path, "libok.so", "#include <string.h>\nint ok(const char *s) { return (int)strlen(s); }\n")
    src = make_wheel(tmp_path / "in", "okpkg", "py3-none-linux_x86_64", {"okpkg/libok.so": lib.read_bytes()})
    before = src.read_bytes()
    verdict = wheelfit.audit(src)
    assert verdict.qualifies and verdict.overall_tag.startswith("manylinux_"), verdict
    # strlen is GLIBC_2.2.5: the oldest policy, with its PEP 600 legacy alias (as auditwheel repair tags it)
    assert verdict.overall_tag == "manylinux_2_5_x86_64"
    fitted = wheelfit.fit_wheel(src, tmp_path / "work")
    assert fitted.wheel.name == "okpkg-1.0-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl"
    assert src.read_bytes() == before  # the input is never changed
    assert record_problems(fitted.wheel) == []
    tags = [ln for ln in wheel_text(fitted.wheel, ".dist-info/WHEEL").splitlines() if ln.startswith("Tag:")]
    assert tags == ["Tag: py3-none-manylinux1_x86_64", "Tag: py3-none-manylinux_2_5_x86_64"]
    assert fitted.record["platform_tag"] == "manylinux1_x86_64.manylinux_2_5_x86_64"
    assert fitted.record["auditwheel"]["overall_tag"] == "manylinux_2_5_x86_64"
    assert fitted.record["from"] == src.name


@needs_linux_cc
def test_a_newer_glibc_symbol_raises_the_policy(tmp_path: Path) -> None:
    # pthread_create moved into libc at glibc 2.34: its symbol version decides the policy on a glibc >= 2.34 host
    code = "#include <pthread.h>\nstatic void *f(void *a) { return a; }\n" \
           "int go(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n"
    lib = compile_lib(tmp_path, "libthr.so", code, "-pthread")
    src = make_wheel(tmp_path / "in", "thr", "py3-none-linux_x86_64", {"thr/libthr.so": lib.read_bytes()})
    verdict = wheelfit.audit(src)
    libc = verdict.versioned_symbols.get("libc.so.6", []) + verdict.versioned_symbols.get("libpthread.so.0", [])
    newest = max(tuple(int(x) for x in v.split("_", 1)[1].split(".")) for v in libc if v.startswith("GLIBC_"))
    want = f"manylinux_{newest[0]}_{newest[1]}_x86_64"
    assert verdict.overall_tag == want or (newest < (2, 5) and verdict.overall_tag == "manylinux_2_5_x86_64")
    fitted = wheelfit.fit_wheel(src, tmp_path / "work")
    assert want in fitted.wheel.name or newest < (2, 5)
    assert record_problems(fitted.wheel) == []


@needs_linux_cc
def test_a_wheel_needing_a_library_no_policy_allows_keeps_its_tag_with_the_reason(tmp_path: Path) -> None:
    # like the NPU plugin's libze_loader.so.1: a library the wheel needs, that neither the wheel nor a policy has
    dep = compile_lib(tmp_path, "libaipcdriver.so", "int drv(void) { return 1; }\n")
    lib = compile_lib(tmp_path, "libuses.so", "int drv(void);\nint uses(void) { return drv(); }\n",
                      f"-L{tmp_path}", "-laipcdriver")
    assert dep.is_file()
    src = make_wheel(tmp_path / "in", "uses", "py3-none-linux_x86_64", {"uses/libuses.so": lib.read_bytes()})
    fitted = wheelfit.fit_wheel(src, tmp_path / "work")
    assert fitted.wheel == src  # nothing to change: the input itself
    assert fitted.record["platform_tag"] == "linux_x86_64"
    assert "libaipcdriver.so" in fitted.record["auditwheel"]["external_libs"]
    assert "needs libaipcdriver.so, which no manylinux policy allows" in fitted.record["tag_reason"]
    assert fitted.record["auditwheel"]["sym_tag"].startswith("manylinux_")


def test_manylinux_and_windows_wheels_are_left_as_they_are(tmp_path: Path) -> None:
    win = make_wheel(tmp_path, "w", "py3-none-win_amd64", {"w/x.dll": b"MZ"})
    many = make_wheel(tmp_path, "m", "cp311-cp311-manylinux_2_27_x86_64", {"m/x.so": b"\x7fELF"})
    for wheel in (win, many):
        fitted = wheelfit.fit_wheel(wheel, tmp_path / "work")
        assert fitted.wheel == wheel
        assert "auditwheel" not in fitted.record
        assert "left as it is" in fitted.record["tag_reason"]


def test_a_linux_wheel_without_native_code_keeps_its_tag_with_auditwheels_reason(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "noelf", "py3-none-linux_x86_64", {"noelf/__init__.py": b""})
    fitted = wheelfit.fit_wheel(wheel, tmp_path / "work", linux=True)
    assert fitted.wheel == wheel
    assert "platform wheel" in fitted.record["tag_reason"]


def test_policy_tags_follow_pep_600_aliases() -> None:
    assert wheelfit.policy_tags("manylinux_2_17_x86_64") == ["manylinux2014_x86_64", "manylinux_2_17_x86_64"]
    assert wheelfit.policy_tags("manylinux_2_35_x86_64") == ["manylinux_2_35_x86_64"]
    assert wheelfit.tag_fits("manylinux_2_35_x86_64", "linux_x86_64")
    assert not wheelfit.tag_fits("manylinux_2_35_aarch64", "linux_x86_64")
    assert not wheelfit.tag_fits("manylinux_2_35_x86_64", "win_amd64")


@needs_linux_cc
def test_collect_replaces_only_the_linux_copy_aipc_made(tmp_path: Path) -> None:
    lib = compile_lib(tmp_path, "libok.so", "int ok(void) { return 1; }\n")
    src = make_wheel(tmp_path / "build", "okpkg", "py3-none-linux_x86_64", {"okpkg/libok.so": lib.read_bytes()})
    wheels = tmp_path / "wheels"
    add_wheels(wheels, [src], {"producer": "an older aipc"})  # the linux_x86_64 copy an earlier collect made
    entries = wheelset._add_fitted(wheels, src, LINUX, {"producer": "aipc build"})
    assert [e["file"] for e in entries] == ["okpkg-1.0-py3-none-manylinux1_x86_64.manylinux_2_5_x86_64.whl"]
    assert not (wheels / src.name).exists()  # aipc made it, unchanged: retired
    assert sorted(p.name for p in wheels.glob("*.whl")) == [entries[0]["file"]]
    assert verify_sums(wheels) == [] and list(read_sums(wheels) or {}) == [entries[0]["file"]]
    assert collected_name(wheels, src) == entries[0]["file"]
    assert read_manifest(wheels)["wheels"][0]["fit"]["from_sha256"] == entries[0]["fit"]["from_sha256"]

    # a file of that name aipc did not record is never deleted
    other = tmp_path / "other"
    stranger = other / src.name
    other.mkdir()
    add_wheels(other, [], {})
    shutil.copyfile(src, stranger)
    wheelset._add_fitted(other, src, LINUX, {"producer": "aipc build"})
    assert stranger.is_file()


# --- licenses (PEP 639) --------------------------------------------------------------------------------------------

OV_LIBS = ("libopenvino.so.2440", "libopenvino_intel_cpu_plugin.so", "libopenvino_intel_npu_plugin.so",
           "libopenvino_ir_frontend.so.2440", "libtbb.so.12", "libhwloc.so.15", "plugins.xml")
OV_LICENSES = {
    "LICENSE": "Apache License 2.0 (fixture)\n",
    "readme.txt": "legal notice (fixture)\n",
    "runtime-third-party-programs.txt": "runtime third-party programs (fixture)\n",
    "onednn_third-party-programs.txt": "oneDNN third-party programs (fixture)\n",
    "onetbb_third-party-programs.txt": "2. Portable Hardware Locality (hwloc) BSD 3-clause (fixture)\n",
}


def fake_openvino_site(root: Path, version: str = "2024.4.0", *, skip: tuple[str, ...] = (),
                       onetbb: str | None = None) -> Path:
    """A site-packages laid out like the openvino wheel's: openvino/{cmake,libs}, openvino-<v>.dist-info."""
    pkg = root / "openvino"
    (pkg / "cmake").mkdir(parents=True)
    major, minor, patch = version.split(".")
    (pkg / "cmake" / "OpenVINOConfig-version.cmake").write_text(
        f"set(PACKAGE_VERSION_MAJOR {major})\nset(PACKAGE_VERSION_MINOR {minor})\nset(PACKAGE_VERSION_PATCH {patch})\n",
        encoding="utf-8")
    (pkg / "libs").mkdir()
    for name in OV_LIBS:
        (pkg / "libs" / name).write_bytes(b"fixture " + name.encode())
    info = root / f"openvino-{version}.dist-info"
    info.mkdir()
    for name, text in OV_LICENSES.items():
        if name not in skip:
            content = onetbb if name.startswith("onetbb") and onetbb is not None else text
            (info / name).write_text(content, encoding="utf-8")
    return root


def fake_npu_wheel(directory: Path, extra: tuple[str, ...] = ()) -> Path:
    lib = lib_dir(LINUX)
    members = {m: b"fixture" for m in required_members(LINUX)}
    members.update({f"{lib}/{n}": b"fixture " + n.encode() for n in (*OV_LIBS, *extra)})
    path = make_wheel(directory, "intel_npu_acceleration_library", "py3-none-linux_x86_64", members, version="1.4.0")
    assert path.name == wheel_name("1.4.0", LINUX)
    return path


def own_license(tmp_path: Path) -> Path:
    path = tmp_path / "sdist" / "LICENSE"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Apache-2.0 (the library's own, fixture)\n", encoding="utf-8")
    return path


def test_every_bundled_library_gets_the_license_files_of_its_package(tmp_path: Path) -> None:
    site = fake_openvino_site(tmp_path / "site")
    wheel = fake_npu_wheel(tmp_path / "out")
    files, covers = licenses.collect(wheel, LINUX, dist_info=licenses.openvino_dist_info(site, "2024.4.0"),
                                     libs_dir=site / "openvino" / "libs", own_license=own_license(tmp_path))
    assert set(covers) == {*OV_LIBS, LINUX.npu_native_lib, LINUX.npu_openvino_lib}
    assert covers["libhwloc.so.15"] == ["openvino/LICENSE", "openvino/readme.txt",
                                        "openvino/onetbb_third-party-programs.txt"]
    assert "openvino/onednn_third-party-programs.txt" in covers["libopenvino_intel_cpu_plugin.so"]
    assert covers[LINUX.npu_native_lib] == ["LICENSE"]
    fitted = wheelfit.fit_wheel(wheel, tmp_path / "work", licenses=files, linux=False)
    assert fitted.wheel.name == wheel.name and fitted.wheel != wheel
    assert record_problems(fitted.wheel) == []
    meta = Metadata.from_email(wheel_text(fitted.wheel, ".dist-info/METADATA"), validate=True)
    assert meta.metadata_version == "2.4"
    assert sorted(meta.license_files or []) == sorted({f.dest for f in files})
    assert wheel_text(fitted.wheel, ".dist-info/METADATA").endswith("The description\n\nkept as it is.\n")
    # reproducible: the same wheel and licenses give the same bytes from another folder (the wheel's own timestamps)
    again = wheelfit.fit_wheel(wheel, tmp_path / "elsewhere" / "work", licenses=files, linux=False)
    assert again.wheel.read_bytes() == fitted.wheel.read_bytes()
    with zipfile.ZipFile(fitted.wheel) as zf:
        info = "intel_npu_acceleration_library-1.4.0.dist-info/licenses/"
        assert zf.read(info + "openvino/onetbb_third-party-programs.txt").decode() == \
            OV_LICENSES["onetbb_third-party-programs.txt"]
        assert zf.read(info + "LICENSE").decode().startswith("Apache-2.0 (the library's own")
        for dests in covers.values():
            for dest in dests:
                assert info + dest in zf.namelist()


@pytest.mark.parametrize(("case", "needle"), [
    ("unknown", "bundles intel_npu_acceleration_library/lib/libmystery.so.1, but no license file is known"),
    ("missing", "its license file onednn_third-party-programs.txt is not in"),
    ("no-hwloc", "does not hold its notice ('Portable Hardware Locality (hwloc)')"),
    ("no-dist-info", "no openvino-2024.4.0.dist-info in"),
    ("not-from-openvino", "bundles libtbb.so.12, which is not in"),
])
def test_a_bundled_library_without_its_license_is_one_line_error(tmp_path: Path, case: str, needle: str) -> None:
    site = fake_openvino_site(tmp_path / "site", skip=("onednn_third-party-programs.txt",) if case == "missing" else (),
                              onetbb="oneTBB only\n" if case == "no-hwloc" else None)
    if case == "no-dist-info":
        shutil.rmtree(site / "openvino-2024.4.0.dist-info")
    if case == "not-from-openvino":
        (site / "openvino" / "libs" / "libtbb.so.12").unlink()
    wheel = fake_npu_wheel(tmp_path / "out", extra=("libmystery.so.1",) if case == "unknown" else ())
    with pytest.raises(AipcError) as err:
        licenses.collect(wheel, LINUX, dist_info=licenses.openvino_dist_info(site, "2024.4.0"),
                         libs_dir=site / "openvino" / "libs", own_license=own_license(tmp_path))
    line = err.value.one_line()
    assert needle in line and "; fix: " in line and "\n" not in line, line


def test_npu_collect_adds_licenses_and_records_the_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build-npu's last step on a fixture wheel: licenses from the --openvino-dir package, the manifest's record."""
    site = fake_openvino_site(tmp_path / "site")
    cfg = build.make_config(platform="linux", build_dir=tmp_path / "b", wheels=tmp_path / "wheels",
                            openvino_dir=site / "openvino")
    (cfg.src_dir).mkdir(parents=True)
    (cfg.src_dir / "LICENSE").write_text("Apache-2.0 (fixture)\n", encoding="utf-8")
    built = fake_npu_wheel(tmp_path / "pip-out")
    wheel = cfg.out_dir / cfg.wheel_file
    wheel.parent.mkdir(parents=True)
    shutil.copyfile(built, wheel)
    monkeypatch.setattr(build.isa, "check_library_isa", lambda _lib: [])
    build.claim_output_dir(cfg.wheels, "wheels", replace=False)
    cfg._collect(wheel, lambda _s: None)
    entry = read_manifest(cfg.wheels)["wheels"][0]
    assert entry["file"] == cfg.wheel_file  # fixture libraries are not ELF: auditwheel keeps linux_x86_64
    fit = entry["fit"]
    assert fit["licenses"]["openvino/LICENSE"] == "openvino-2024.4.0.dist-info/LICENSE"
    assert fit["bundled"]["libhwloc.so.15"][-1] == "openvino/onetbb_third-party-programs.txt"
    assert "platform wheel" in fit["tag_reason"]
    assert record_problems(cfg.wheels / entry["file"]) == []
    assert cfg.collected_wheel() == cfg.wheels / entry["file"]
    assert json.loads(json.dumps(fit)) == fit


def test_without_auditwheel_the_tag_stays_and_the_record_says_why(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheelfit, "auditwheel_version", lambda: None)
    wheel = make_wheel(tmp_path, "x", "py3-none-linux_x86_64", {"x/lib.so": b"\x7fELF"})
    fitted = wheelfit.fit_wheel(wheel, tmp_path / "work")
    assert fitted.wheel == wheel
    assert "auditwheel: not installed, so the tag was not checked" in fitted.record["tag_reason"]


def test_the_windows_wheel_maps_openvinos_dll_names_too(tmp_path: Path) -> None:
    win = get_platform("windows")
    site = tmp_path / "site"
    dlls = ("openvino.dll", "openvino_intel_cpu_plugin.dll", "openvino_intel_npu_plugin.dll",
            "openvino_ir_frontend.dll", "tbb12.dll", "tbbmalloc.dll", "tbbbind_2_5.dll", "plugins.xml")
    (site / "openvino" / "libs").mkdir(parents=True)
    for name in dlls:
        (site / "openvino" / "libs" / name).write_bytes(b"MZ fixture")
    info = site / "openvino-2024.4.0.dist-info"
    info.mkdir()
    for name, text in OV_LICENSES.items():
        (info / name).write_text(text, encoding="utf-8")
    lib = lib_dir(win)
    members = {m: b"fixture" for m in required_members(win)}
    members.update({f"{lib}/{n}": b"MZ fixture" for n in dlls})
    wheel = make_wheel(tmp_path / "out", "intel_npu_acceleration_library", "py3-none-win_amd64", members,
                       version="1.4.0")
    files, covers = licenses.collect(wheel, win, dist_info=licenses.openvino_dist_info(site, "2024.4.0"),
                                     libs_dir=site / "openvino" / "libs", own_license=own_license(tmp_path))
    assert covers[win.npu_native_lib] == ["LICENSE"]  # the DLL aipc compiles
    assert covers["openvino.dll"][-1] == "openvino/runtime-third-party-programs.txt"  # OpenVINO's own, not aipc's
    assert covers["tbb12.dll"][-1] == "openvino/onetbb_third-party-programs.txt"
    assert "openvino/onednn_third-party-programs.txt" in covers["openvino_intel_cpu_plugin.dll"]
    fitted = wheelfit.fit_wheel(wheel, tmp_path / "work", licenses=files)
    assert fitted.wheel.name == wheel.name and "auditwheel" not in fitted.record  # win_amd64: tag untouched
    assert record_problems(fitted.wheel) == []


def test_a_fit_record_applies_only_to_the_bytes_it_was_made_from(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = make_wheel(tmp_path / "build", "x", "py3-none-linux_x86_64", {"x/a.py": b"1"})
    renamed = make_wheel(tmp_path / "other", "x", "py3-none-manylinux_2_5_x86_64", {"x/a.py": b"1"})
    add_wheels(wheels, [renamed], {"fit": {"from": built.name, "from_sha256": hashlib.sha256(
        built.read_bytes()).hexdigest()}})
    assert collected_name(wheels, built) == renamed.name
    rebuilt = make_wheel(tmp_path / "build", "x", "py3-none-linux_x86_64", {"x/a.py": b"2"})  # same name, new bytes
    assert collected_name(wheels, rebuilt) == built.name


@pytest.mark.parametrize(("platform", "name", "found"), [
    ("linux", "intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl", True),
    ("linux", "intel_npu_acceleration_library-1.4.0-py3-none-manylinux_2_34_x86_64.whl", True),
    ("linux", "intel_npu_acceleration_library-1.4.0-py3-none-manylinux_2_34_aarch64.whl", False),
    ("linux", "intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl", False),
    ("windows", "intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl", True),
    ("windows", "intel_npu_acceleration_library-1.4.0-py3-none-manylinux_2_34_x86_64.whl", False),
])
def test_doctor_finds_the_npu_wheel_under_either_linux_tag(platform: str, name: str, found: bool) -> None:
    from aipc.doctor.checks import own_npu_wheel

    facts = {"host": {"platform": platform}, "runtime": {"aipc_wheels": {"files": [name]}}}
    assert (own_npu_wheel(facts) == name) is found
