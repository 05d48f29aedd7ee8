"""Subcommands of the verify area: ``tiny-model``, ``export``, ``smoke``, ``verify`` (registered by aipc.cli)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..argtypes import check_outputs, comma_list, count, existing_dir, output_file, seconds
from ..argtypes import output_dir as output_dir_arg
from ..errors import ExitCode, UsageError, writing
from ..fsutil import claim_output_dir, output_dir
from ..log import LOG
from ..runtimes import paths as runtime_paths
from ..runtimes.devices import DEVICES
from ..settings import INSTALLER, MODEL, WHEELS, Option, add_options

PATHS = runtime_paths()
PRECISIONS = ("fp32", "fp16", "int8", "int4")
_RUNS = ("smoke", "verify")
_REPLACE = ("replace OUT even when aipc made it for something else or its files were changed (a file aipc did not "
            "make is never replaced)")

# the options of this area's commands, each with its AIPC_* variable (aipc.settings drives argparse and the docs)
OPTIONS: tuple[Option, ...] = (
    Option("force", "--force", None, _REPLACE, kind="switch", commands=("tiny-model", "export")),
    Option("precision", "--precision", None, "genai: int4|int8|fp16|fp32 (default int4); openvino: int4|int8|fp16|fp32 "
           "(default int4); openvino-npu: int4", commands=("export",)),
    Option("device", "--device", None, "genai execution target: cpu|dml", default="cpu", commands=("export",)),
    MODEL.but(parse=Path, commands=_RUNS),
    INSTALLER.but(commands=("tiny-model", "export", *_RUNS)),
    Option("paths", "--paths", "AIPC_VERIFY_PATHS", f"comma-separated subset of: {','.join(PATHS)} (default: all)",
           parse=comma_list(PATHS, "path"), metavar="PATHS", commands=("verify",)),
    Option("build_npu", "--build-npu", "AIPC_BUILD_NPU",
           "when no intel-npu-acceleration-library wheel can be had for this platform, build aipc's own first (aipc "
           "build-npu); nox -s verify passes this", kind="switch", commands=("verify",)),
    Option("device", "--device", "AIPC_VERIFY_DEVICE", "device to run on (default: auto)", choices=DEVICES,
           default="auto", commands=_RUNS),
    Option("precision", "--precision", "AIPC_VERIFY_PRECISION",
           "run only this precision (default: fp32 golden check + int4 recipe)", choices=PRECISIONS, commands=_RUNS),
    Option("timeout", "--timeout", "AIPC_SMOKE_TIMEOUT", "seconds per smoke run (default 300)", parse=seconds,
           default=300.0, metavar="S", commands=_RUNS),
    Option("workers", "--workers", "AIPC_VERIFY_WORKERS",
           "CPU-heavy tasks run at once: venv installs, the tiny model, exports, smoke workers (default: the number "
           "of CPUs; --jobs is the build's compile jobs)", parse=count, metavar="N", commands=_RUNS),
    WHEELS.but(parse=existing_dir, env_parse=Path, commands=_RUNS),
    Option("json_out", "--json", None, "write the JSON report here (verify: default verify.json)", parse=output_file,
           metavar="FILE", commands=_RUNS),
    Option("junit", "--junit", None, "write JUnit XML here (verify: default verify.xml)", parse=output_file,
           metavar="FILE", commands=_RUNS),
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser("tiny-model", help="make aipc's deterministic tiny Phi-3 (with golden.json) and copy it to OUT")
    p.add_argument("out", nargs="?", type=output_dir_arg,
                   help="folder to copy the model to (default: print the cached folder)")
    add_options(p, OPTIONS, "tiny-model")
    p.set_defaults(func=_cmd_tiny)

    from ..runtimes.export import KINDS

    p = sub.add_parser("export", help="convert a Phi-3 folder for a path (genai builder, optimum-cli OpenVINO / NPU)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("model", type=Path, help="Hugging Face checkpoint folder")
    p.add_argument("out", type=output_dir_arg, help="output folder: new, empty, or one aipc made (replaced atomically)")
    add_options(p, OPTIONS, "export")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("smoke", help="smoke-test one path on a model (default: aipc's tiny Phi-3)")
    p.add_argument("path", choices=PATHS)
    add_options(p, OPTIONS, "smoke")
    p.set_defaults(func=_cmd_smoke)

    p = sub.add_parser("verify", help="smoke-test every path: table, verify.json, JUnit XML; exit 1 iff one fails")
    add_options(p, OPTIONS, "verify")
    p.set_defaults(func=_cmd_verify, json_default=Path("verify.json"), junit_default=Path("verify.xml"))


def _cmd_tiny(args: argparse.Namespace) -> int:
    from ..runtimes.tinymodel import KIND, ensure_tiny_model
    from ..venvs import cache_dir

    if args.out is not None:  # checked before the model is made
        claim_output_dir(args.out, KIND, force=args.force, inputs=[cache_dir()])
    model = ensure_tiny_model(echo=LOG)
    if args.out is None:
        print(model)
        return ExitCode.OK
    with output_dir(args.out, KIND, force=args.force, inputs=[cache_dir()]) as tmp:
        shutil.copytree(model, tmp, dirs_exist_ok=True)
    print(args.out)
    return ExitCode.OK


def _cmd_export(args: argparse.Namespace) -> int:
    from ..runtimes.export import ensure_export

    precision = args.precision or "int4"
    if not args.model.is_dir():
        raise UsageError(f"model folder {args.model} does not exist", hint="pass a Hugging Face checkpoint folder")
    out = ensure_export(args.kind, args.model, precision, device=args.device, out=args.out, echo=LOG,
                        force=args.force)
    print(out)
    return ExitCode.OK


def _cmd_smoke(args: argparse.Namespace) -> int:
    return _verify(args, [args.path], json_out=args.json_out, junit=args.junit)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .run import parse_paths

    paths = list(args.paths) if args.paths is not None else parse_paths(None)
    return _verify(args, paths, json_out=args.json_out or args.json_default,
                   junit=args.junit or args.junit_default)


def _verify(args: argparse.Namespace, paths: list[str], *, json_out: Path | None, junit: Path | None) -> int:
    from ..wheelhouse import refuse_tampered, wheels_dir
    from .progress import Progress
    from .report import exit_code, format_table, write_json, write_junit
    from .run import Options, Verifier, run_meta, summary_line

    # before any work: the reports can be written and are not the model (verify's defaults are checked here too)
    check_outputs({"--json": json_out, "--junit": junit}, {"--model": args.model})
    refuse_tampered(wheels_dir(args.wheels))
    opts = Options(paths=paths, model=args.model, device=args.device, precision=args.precision,
                   timeout=args.timeout, wheels=args.wheels, workers=args.workers,
                   prepare=getattr(args, "prepare", {}) if getattr(args, "build_npu", False) else {})
    started, t0 = time.time(), time.monotonic()
    verifier = Verifier(opts, Progress(sys.stderr))
    rows = verifier.run()
    wall = time.monotonic() - t0
    print(format_table(rows))
    timing = verifier.timing(wall) if hasattr(verifier, "timing") else None
    meta = run_meta(opts, verifier.model, started, wall, rows, verifier.setup_seconds, timing)
    if json_out is not None:  # the table is printed: a report that cannot be written is one line after it
        with writing(json_out, "the JSON report"):
            write_json(json_out, rows, meta)
    if junit is not None:
        with writing(junit, "the JUnit report"):
            write_junit(junit, rows, wall)
    written = [str(p) for p in (json_out, junit) if p is not None]
    print(summary_line(wall, meta) + (f"; wrote {', '.join(written)}" if written else ""))
    return exit_code(rows)


