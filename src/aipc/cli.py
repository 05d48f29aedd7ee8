"""The ``aipc`` command line. Each area registers its subcommands; errors print one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import AipcError

# Each module defines ``register(subparsers)``; every subcommand sets ``func(args) -> int`` as its default.
AREAS = (
    "aipc.build.cli",
    "aipc.verify.cli",
    "aipc.npu.cli",
    "aipc.doctor.cli",
    "aipc.bench.cli",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"aipc: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aipc", description="Build, package and verify Phi-3-class models on AI PCs.")
    parser.add_argument("--version", action="version", version=f"aipc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _register_pins(sub)
    for area in AREAS:
        importlib.import_module(area).register(sub)
    return parser


def _register_pins(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("pins", help="print the pinned versions and the genai <-> ORT compatibility table")
    p.add_argument("--pins", type=Path, default=None, help="pins file (default: the one shipped with aipc)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true", help="exit 1 when the pinned genai/ORT pair is incompatible")
    p.set_defaults(func=_cmd_pins)


def _cmd_pins(args: argparse.Namespace) -> int:
    from .pins import check_compat, format_pins, load_pins

    pins = load_pins(args.pins)
    print(format_pins(pins, as_json=args.json))
    if args.check:
        check_compat(pins)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AipcError as exc:
        print(f"aipc: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aipc: interrupted; completed steps are kept, rerun to resume", file=sys.stderr)
        return 130
