"""The ``aipc`` command line. Each area registers its subcommands; errors print one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__, installer, interrupts, settings
from .argtypes import input_file
from .errors import AipcError, ExitCode, UsageError, os_error_line
from .log import LOG

# Each module defines ``register(subparsers)``; every subcommand sets ``func(args) -> int`` as its default. Its
# ``OPTIONS`` (aipc.settings.Option) are the options of its commands, each with its AIPC_* variable.
AREAS = (
    "aipc.wheelbuild.cli",
    "aipc.verify.cli",
    "aipc.npu.cli",
    "aipc.doctor.cli",
    "aipc.bench.cli",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """A usage error is one line too (the value types of :mod:`aipc.argtypes` bring their own fix)."""
        if "; fix: " not in message:
            message += f"; fix: see `{self.prog} --help`"
        self.exit(ExitCode.USAGE, f"aipc: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aipc", description="Build, package and verify Phi-3-class models on AI PCs.")
    parser.add_argument("--version", action="version", version=f"aipc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _register_pins(sub)
    for area in AREAS:
        importlib.import_module(area).register(sub)
    parser.set_defaults(prepare={"npu": _build_npu_wheel})  # verify --build-npu: the npu area builds the wheel
    return parser


def _build_npu_wheel(wheels: Path, echo: Callable[[str], None]) -> str:
    from .npu.build import prepare_for_verify

    return prepare_for_verify(wheels, echo)


# the options of the commands defined here
OPTIONS: tuple[settings.Option, ...] = (
    settings.PINS.but(commands=("pins",), parse=input_file),
    settings.Option("json", "--json", None, "print JSON", kind="switch", commands=("pins",)),
    settings.Option("check", "--check", None, "exit 1 when the pinned genai/ORT pair is incompatible",
                    kind="switch", commands=("pins",)),
    # aipc pins update (maintainers): distinct dests, so `aipc pins --pins X update` cannot be undone by defaults
    settings.PINS.but(name="update_pins", commands=("pins update",), parse=input_file),
    settings.Option("update_genai_repo", "--genai-repo", None, "list and read onnxruntime-genai's tags from this git "
                    "URL or local repository (default: [onnxruntime_genai] repo of the pins)", metavar="URL",
                    commands=("pins update",)),
    settings.Option("update_ort_repo", "--ort-repo", None, "list and read ONNX Runtime's tags from this git URL or "
                    "local repository (default: [onnxruntime] repo of the pins)", metavar="URL",
                    commands=("pins update",)),
    settings.Option("update_releases", "--releases", None, "look DirectML releases up in this JSON file "
                    "({\"pypi\": {\"onnxruntime-directml\": [versions]}, \"nuget\": {...}}) instead of pypi.org "
                    "and nuget.org", parse=input_file, metavar="FILE", commands=("pins update",)),
    settings.Option("update_check", "--check", None, "exit 3 when newer upstream releases can be pinned (when "
                    "--write would change a file), 0 when the pins are current", kind="switch",
                    commands=("pins update",)),
    settings.Option("update_write", "--write", None, "write the proposed pins and the files that follow from them "
                    "(without it: show the diff only)", kind="switch", commands=("pins update",)),
    settings.Option("info", "--info", None, "print each part of aipc's cache (venvs, models, exports, the NPU build, "
                    "logs), the test cache and the project's .nox with size and path, and the total (the default)",
                    kind="switch", commands=("cache",)),
    settings.Option("clean", "--clean", None, "remove what aipc made in its cache (it is made again on the next run); "
                    "refused, nothing removed, while a lock is held or another aipc run uses the cache; no prompt",
                    kind="switch", commands=("cache",)),
    settings.Option("dry_run", "--dry-run", None, "with --clean: list what would be removed, remove nothing",
                    kind="switch", commands=("cache",)),
    settings.Option("test_cache", "--test-cache", None, "with --clean: clean the test suite's cache "
                    "(AIPC_TEST_CACHE) instead of aipc's", kind="switch", commands=("cache",)),
)


def all_options() -> list[settings.Option]:
    """Every option of every command: this module's and each area's ``OPTIONS``."""
    found = list(OPTIONS)
    for area in AREAS:
        found += getattr(importlib.import_module(area), "OPTIONS", ())
    return found


def _register_pins(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("pins", help="print the pinned versions and the genai <-> ORT compatibility table")
    settings.add_options(p, OPTIONS, "pins")
    p.set_defaults(func=_cmd_pins)
    pins_sub = p.add_subparsers(dest="pins_command", metavar="SUBCOMMAND", parser_class=_Parser)
    u = pins_sub.add_parser("update", help="maintainers: propose (--write: write) the newest stable genai release "
                            "and the ORT it builds DirectML against, read from upstream's tags and files")
    settings.add_options(u, OPTIONS, "pins update")
    u.set_defaults(func=_cmd_pins_update)
    c = sub.add_parser("cache", help="aipc's cache: what it holds (--info) and removing it (--clean)")
    settings.add_options(c, OPTIONS, "cache")
    c.set_defaults(func=_cmd_cache)
    o = sub.add_parser("options", help="print every option of every command with its AIPC_* variable (Markdown: "
                       "docs/options.md is this output)")
    o.set_defaults(func=_cmd_options)


def options_markdown() -> str:
    """docs/options.md: every option of every command (``aipc options`` prints it)."""
    from .wheelbuild.settings import COMMANDS

    return settings.options_markdown(all_options(), {"build commands": COMMANDS})


def _cmd_options(args: argparse.Namespace) -> int:
    print(options_markdown(), end="")
    return ExitCode.OK


def _cmd_cache(args: argparse.Namespace) -> int:
    from . import cache

    if (args.dry_run or args.test_cache) and not args.clean:
        raise UsageError(f"{'--dry-run' if args.dry_run else '--test-cache'} goes with --clean",
                         hint="run aipc cache --clean --dry-run [--test-cache], or aipc cache --info")
    if args.clean:
        root = (settings.test_cache_dir() if args.test_cache else settings.cache_dir()).resolve()
        n, size = cache.clean(root, dry_run=args.dry_run, echo=LOG)
        verb = "would remove" if args.dry_run else "removed"
        print(f"aipc cache: {verb} {n} item(s), {cache.human(size)}, from {root}")
    if args.info or not args.clean:
        print(cache.info())
    return ExitCode.OK


def _cmd_pins(args: argparse.Namespace) -> int:
    from .pins import check_compat, format_pins, load_pins

    pins = load_pins(args.pins)
    print(format_pins(pins, as_json=args.json))
    if args.check:
        check_compat(pins)
    return ExitCode.OK


def _cmd_pins_update(args: argparse.Namespace) -> int:
    from .wheelbuild.pinupdate import run_update

    settings.resolve("pins update", args, OPTIONS)
    if args.check:  # `aipc pins --check update` would otherwise run without --check
        raise UsageError("--check before `update` belongs to `aipc pins`, not to `aipc pins update`",
                         hint="write it after update: aipc pins update --check")
    if args.json:
        raise UsageError("`aipc pins update` has no --json (its report is text and a diff)", hint="leave --json out")
    return run_update(args.update_pins or args.pins, genai_repo=args.update_genai_repo,
                      ort_repo=args.update_ort_repo, releases_file=args.update_releases, check=args.update_check,
                      write=args.update_write)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure ends in one line on stderr and an exit code of :class:`ExitCode`.

    Results a command already computed are printed by the command before the error reaches here (e.g. the verify
    table before a ``--json`` file that cannot be written).
    """
    # the console script and python -m aipc installed the handler already; an in-process call has it for the call
    with interrupts.installed():
        try:
            return _main(argv)
        finally:
            installer.use(None)  # this run's --installer ends with it (in-process callers run main again)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        options = all_options()
        settings.warn_unknown(options)  # once per run, before any work
        settings.progress_interval()  # a bad AIPC_PROGRESS_INTERVAL is one line now, not in the middle of a step
        settings.resolve(args.command, args, options)  # command line > AIPC_* variable > default
        installer.use(getattr(args, "installer", None))  # --installer of this run (venvs take it)
        return int(args.func(args))
    except AipcError as exc:
        return _fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt as exc:
        line, code = interrupts.finish(exc)
        print(line, file=sys.stderr, flush=True)
        return code
    except BrokenPipeError:  # the reader went away (``aipc doctor | head``): nothing left to say to it
        _silence_stdout()
        return ExitCode.FAILED
    except OSError as exc:  # a failed step's file operation (outputs given by the user are OutputError, exit 2)
        return _fail(f"{os_error_line(exc)}", ExitCode.FAILED, hint="check the path, its permissions and free "
                     "space, then rerun")
    except RecursionError:
        return _fail("input nested too deeply to process", ExitCode.USAGE, hint="pass a file aipc wrote")
    except Exception as exc:  # a bug: still one line; AIPC_DEBUG=1 shows the traceback
        if settings.env("AIPC_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc}"[:500].replace("\n", " "), ExitCode.FAILED,
                     hint="rerun with AIPC_DEBUG=1 for the traceback and report it")


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush cannot fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _fail(text: str, code: int, hint: str | None = None) -> int:
    line = f"aipc: error: {text}" + (f"; fix: {hint}" if hint else "")
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    return code
