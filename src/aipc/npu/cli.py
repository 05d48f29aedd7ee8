"""Subcommands of this area (registered by aipc.cli): ``aipc build-npu``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..argtypes import existing_dir, output_dir
from ..errors import ExitCode
from ..settings import INSTALLER, PLATFORM, WHEELS, Option, add_options

_C = ("build-npu",)

# the options of `aipc build-npu`, each with its AIPC_* variable (aipc.settings drives argparse and the docs)
OPTIONS: tuple[Option, ...] = (
    PLATFORM.but(commands=_C),
    Option("plan", "--plan", None, "print the steps' commands (argv, cwd, env); run nothing", kind="switch",
           commands=_C),
    Option("json", "--json", None, "with --plan: print JSON", kind="switch", commands=_C),
    Option("sdist", "--sdist", "AIPC_NPU_SDIST", "offline: the sdist file, or a directory holding it, instead of "
           "`pip download`", parse=Path, metavar="PATH", commands=_C),
    Option("find_links", "--find-links", "AIPC_NPU_FIND_LINKS",
           "offline: a wheelhouse for the build venv (scikit-build-core, cmake, ninja, openvino) and the sdist; pip "
           "then uses --no-index", parse=existing_dir, metavar="DIR", commands=_C),
    Option("openvino", "--openvino", "AIPC_NPU_OPENVINO",
           "openvino wheel version to build against (default: the pin, 2024.4.0; must be < 2025.1)",
           metavar="VERSION", commands=_C),
    Option("openvino_dir", "--openvino-dir", "AIPC_NPU_OPENVINO_DIR",
           "build against this installed `openvino` package (or its cmake/ dir) instead", parse=Path, metavar="DIR",
           commands=_C),
    Option("python", "--python", "AIPC_NPU_PYTHON",
           "interpreter of the build venv (default: this one; openvino 2024.4.0 needs CPython 3.8-3.12)",
           metavar="EXE", commands=_C),
    WHEELS.but(parse=output_dir, commands=_C),
    INSTALLER.but(commands=_C),
    Option("build_dir", "--build-dir", "AIPC_NPU_BUILD_DIR",
           "build directory: sdist, sources, build venv, CMake cache (default: <aipc cache>/npu-build)",
           parse=output_dir, metavar="DIR", commands=_C),
    Option("project", "--project", "AIPC_NPU_PROJECT", "the scikit-build-core project (default: aipc/native/npu)",
           parse=existing_dir, metavar="DIR", commands=_C),
    Option("force", "--force", None, "rebuild the wheel even when its inputs are unchanged", kind="switch",
           commands=_C),
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "build-npu",
        help="rebuild intel-npu-acceleration-library 1.4.0 offline into a portable py3-none wheel in wheels/",
        description="Build the NPU library's native backend from its sha256-pinned PyPI sdist with aipc's own "
                    "CMakeLists (aipc/native/npu, scikit-build-core) against the openvino==2024.4.0 wheel, and add the "
                    "wheel to wheels/. Steps whose inputs are unchanged are skipped.",
    )
    add_options(p, OPTIONS, "build-npu")
    p.set_defaults(func=_cmd_build_npu)


def _cmd_build_npu(args: argparse.Namespace) -> int:
    from ..runner import format_plan, plan_json
    from .build import make_config, run_build

    cfg = make_config(
        platform=args.platform, build_dir=args.build_dir, wheels=args.wheels, project=args.project,
        sdist_path=args.sdist, openvino=args.openvino, openvino_dir=args.openvino_dir, find_links=args.find_links,
        python=args.python,
    )
    if args.plan:
        steps = cfg.steps()
        print(json.dumps(plan_json(steps), indent=2) if args.json else format_plan(steps, cfg.platform.name))
        return ExitCode.OK
    wheel, _results = run_build(cfg, force=args.force)
    print(wheel)
    sys.stdout.flush()
    return ExitCode.OK
