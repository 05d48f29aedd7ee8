"""Subcommands of this area (registered by aipc.cli): ``aipc build-npu``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..argtypes import existing_dir, output_dir
from ..errors import ExitCode
from ..platforms import PLATFORM_NAMES


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "build-npu",
        help="rebuild intel-npu-acceleration-library 1.4.0 offline into a portable py3-none wheel in wheels/",
        description="Build the NPU library's native backend from its sha256-pinned PyPI sdist with aipc's own "
                    "CMakeLists (aipc/native/npu, scikit-build-core) against the openvino==2024.4.0 wheel, and add the "
                    "wheel to wheels/. Steps whose inputs are unchanged are skipped.",
    )
    p.add_argument("--platform", choices=PLATFORM_NAMES, default=None, help="target platform (default: this host)")
    p.add_argument("--plan", action="store_true", help="print the steps' commands (argv, cwd, env); run nothing")
    p.add_argument("--json", action="store_true", help="with --plan: print JSON")
    p.add_argument("--sdist", type=Path, default=None,
                   help="offline: the sdist file, or a directory holding it, instead of `pip download`")
    p.add_argument("--find-links", type=existing_dir, default=None,
                   help="offline: a wheelhouse for the build venv (scikit-build-core, cmake, ninja, openvino) and "
                        "the sdist; pip then uses --no-index")
    p.add_argument("--openvino", default=None, metavar="VERSION",
                   help="openvino wheel version to build against (default: the pin, 2024.4.0; must be < 2025.1)")
    p.add_argument("--openvino-dir", type=Path, default=None,
                   help="build against this installed `openvino` package (or its cmake/ dir) instead")
    p.add_argument("--python", default=None, metavar="EXE",
                   help="interpreter of the build venv (default: this one; openvino 2024.4.0 needs CPython 3.8-3.12)")
    p.add_argument("--wheels", type=output_dir, default=None,
                   help="wheels directory (default: $AIPC_WHEELS or ./wheels)")
    p.add_argument("--build-dir", type=output_dir, default=None,
                   help="build directory: sdist, sources, build venv, CMake cache (default: <aipc cache>/npu-build)")
    p.add_argument("--project", type=existing_dir, default=None,
                   help="the scikit-build-core project (default: aipc/native/npu)")
    p.add_argument("--force", action="store_true", help="rebuild the wheel even when its inputs are unchanged")
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
