"""Step 5, wheels: check the genai wheel's requirement on ORT against the ORT wheel built and its native libraries
for build-machine paths (:mod:`aipc.wheelbuild.wheelcheck`), give a ``linux_x86_64`` wheel the manylinux tag
``auditwheel`` finds it consistent with (or keep it, with the reason: :mod:`aipc.wheelfit`), then copy both into
``wheels/`` (atomically, with ``SHA256SUMS`` and ``manifest.json``: name, version, tags, sha256, source commits,
pins, the ``fit`` record).

The genai wheel must declare ``Requires-Dist: onnxruntime[-directml]>=<version>`` and the ORT wheel we built must
satisfy it (same distribution name, version inside the specifier); otherwise ``pip install`` would fetch another
ORT from PyPI, or fail (docs/upstream.md#build §7.8), and nothing is copied.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.metadata import InvalidMetadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import wheelfit
from ..errors import AipcError
from ..fsutil import sha256_file
from ..pins import Pins
from ..platforms import ORT_DISTS, Platform
from ..wheelhouse import WheelInfo, add_wheels, wheel_metadata
from .wheelcheck import require_clean


def ort_requirements(genai_wheel: Path, platform: Platform) -> list[Requirement]:
    """The genai wheel's ``Requires-Dist`` entries on an ONNX Runtime distribution that apply on ``platform``."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(platform.marker_env)
    env["extra"] = ""
    found = []
    try:
        requires = wheel_metadata(genai_wheel).requires_dist or []
    except InvalidMetadata as exc:
        raise AipcError(f"{genai_wheel.name} has invalid metadata: {exc}", hint="rebuild the genai wheel") from None
    for req in requires:
        if canonicalize_name(req.name) not in ORT_DISTS:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        found.append(req)
    return found


def check_requirement(genai_wheel: Path, ort_wheel: Path, platform: Platform) -> str:
    """Refuse unless the genai wheel requires exactly the ORT distribution built, at a version it accepts."""
    ort = WheelInfo.from_path(ort_wheel)
    reqs = ort_requirements(genai_wheel, platform)
    if not reqs:
        raise AipcError(
            f"{genai_wheel.name} declares no Requires-Dist on onnxruntime, so nothing ties it to {ort_wheel.name}",
            hint="rebuild genai with `aipc build-genai` (it sets ONNXRUNTIME_VERSION for genai's setup.py)",
        )
    for req in reqs:
        if canonicalize_name(req.name) != canonicalize_name(ort.name):
            raise AipcError(
                f"{genai_wheel.name} requires {req}, but the ORT wheel built is {ort.name} {ort.version} "
                f"({ort_wheel.name})",
                hint=f"build both for the same platform (--platform {platform.name}: {platform.ort_wheel_dist} "
                     f"and {platform.genai_wheel_dist}) and rebuild genai",
            )
        if not req.specifier.contains(Version(ort.version), prereleases=True):
            raise AipcError(
                f"{genai_wheel.name} requires {req}, which the ORT wheel built ({ort.name} {ort.version}) does not "
                "satisfy",
                hint=f"rebuild genai with ONNXRUNTIME_VERSION={ort.version} (`aipc build-genai --force`)",
            )
    check_same_python(genai_wheel, ort_wheel)
    return "; ".join(str(r) for r in reqs)


def _cpython_tags(wheel: Path) -> set[str]:
    return {t.split("-")[0] for t in WheelInfo.from_path(wheel).tags if t.startswith("cp")}


def check_same_python(genai_wheel: Path, ort_wheel: Path) -> None:
    """Both wheels must install into one Python: refuse CPython-specific tags that do not overlap (e.g. ORT built
    by the ``python`` on PATH, genai by another ``--python``)."""
    genai_py, ort_py = _cpython_tags(genai_wheel), _cpython_tags(ort_wheel)
    if genai_py and ort_py and not genai_py & ort_py:
        raise AipcError(
            f"{genai_wheel.name} is for {', '.join(sorted(genai_py))} but {ort_wheel.name} is for "
            f"{', '.join(sorted(ort_py))}: they cannot be installed together",
            hint="build both with one Python (run aipc from it, so the `python` on PATH is the same as --python)",
        )


def check_tags(genai_wheel: Path, platform: Platform, python_version: str | None) -> None:
    """The genai wheel must carry the target platform's tag (``linux_x86_64`` or a manylinux one, ``win_amd64``)
    and, when its tags name a CPython, the build Python's (``cp311`` for 3.11): genai's setup.py tags the wheel
    with the interpreter that ran its CMake, so another one means another Python built it."""
    info = WheelInfo.from_path(genai_wheel)
    plats = {t.split("-")[2] for t in info.tags}
    want = platform.wheel_platform_tag_prefix
    if not any(wheelfit.tag_fits(t, want) for t in plats):
        raise AipcError(f"{genai_wheel.name} is tagged {', '.join(sorted(plats))}, not {want}: it is not a "
                        f"{platform.name} wheel", hint=f"build genai on {platform.name} (aipc build-genai --force)")
    if python_version:
        want_py = "cp" + python_version.replace(".", "")
        pys = _cpython_tags(genai_wheel)
        if pys and want_py not in pys:
            raise AipcError(f"{genai_wheel.name} is for {', '.join(sorted(pys))}, but the build Python is "
                            f"{python_version} ({want_py})",
                            hint="rebuild genai (aipc build-genai --force) so its CMake finds the build venv's Python")


def provenance(pins: Pins, sources: dict[str, Any], platform: Platform, config: str) -> dict[str, Any]:
    return {
        "producer": "aipc build",
        "platform": platform.name,
        "config": config,
        "source": sources,
        "pins": {
            "file": str(pins.path),
            "sha256": sha256_file(pins.path),
            "onnxruntime": {"tag": pins.onnxruntime.tag, "commit": pins.onnxruntime.commit,
                            "version": pins.onnxruntime.version},
            "onnxruntime_genai": {"tag": pins.onnxruntime_genai.tag, "commit": pins.onnxruntime_genai.commit,
                                  "version": pins.onnxruntime_genai.version},
        },
    }


def collect_wheels(wheels: Path, ort_wheel: Path, genai_wheel: Path, *, pins: Pins, sources: dict[str, Any],
                   platform: Platform, config: str, build: dict[str, Any] | None = None,
                   ort_is_release: bool = False) -> list[dict[str, Any]]:
    """Check, then copy both wheels into ``wheels`` (each atomically) and rewrite its index. ``build`` (how the
    genai wheel was made: generator, jobs, defines, dependencies) goes into the genai entry. The wheels aipc built
    are made fit to publish (:func:`_add_fitted`); an ORT release (``ort_is_release``) is copied byte for byte, so
    its sha256 stays the one its publisher lists."""
    requirement = check_requirement(genai_wheel, ort_wheel, platform)
    check_tags(genai_wheel, platform, (build or {}).get("python_version"))
    native = require_clean(genai_wheel)  # no build machine's path in its RUNPATHs (one line otherwise)
    base = provenance(pins, sources, platform, config)
    ort_entry = {**base, "component": "onnxruntime"}
    entries = add_wheels(wheels, [ort_wheel], ort_entry) if ort_is_release else \
        _add_fitted(wheels, ort_wheel, platform, ort_entry)
    extra: dict[str, Any] = {"native": native.to_json()}
    if build is not None:
        extra["build"] = build
    entries += _add_fitted(wheels, genai_wheel, platform,
                           {**base, "component": "onnxruntime_genai", "requires_onnxruntime": requirement, **extra})
    return entries


def _add_fitted(wheels: Path, wheel: Path, platform: Platform, provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``wheel`` to ``wheels`` fit to publish (on Linux: its manylinux tag, :func:`aipc.wheelfit.fit_wheel`);
    the ``linux_x86_64`` copy an earlier collect put there is retired."""
    with tempfile.TemporaryDirectory(prefix="aipc-fit-") as tmp:
        fitted = wheelfit.fit_wheel(wheel, Path(tmp), linux=platform.binary_format == "elf")
        retire = [wheel.name] if fitted.wheel.name != wheel.name else []
        return add_wheels(wheels, [fitted.wheel], {**provenance, "fit": fitted.record}, retire=retire)
