"""One settings model for every command: each lasting option declares, once, its command-line flag, its ``AIPC_*``
environment variable, its help text and its value type (an :mod:`aipc.argtypes` parser, used for the command line
and the variable alike). Precedence: command line > ``AIPC_*`` variable > default.

The declarations drive ``argparse`` (:func:`add_options`), the environment (:func:`resolve`), the option tables of
``docs/options.md`` and ``aipc options`` (:func:`options_markdown`), and the warning about ``AIPC_*`` variables aipc
does not know (:func:`warn_unknown`). Each area declares its options next to its command line (``OPTIONS`` in
``aipc.<area>.cli``, the build's in ``aipc.wheelbuild.settings``); the ones several areas share are here.

Per-invocation flags (``--force``, ``--check``, ``--write``, ``--plan``, ``--json``, output paths) have no variable
(``env=None``): a variable left set in a shell must never make a later run replace outputs. ``AIPC_FORCE`` was one;
it is now warned about and ignored.

This module is the one reader of ``AIPC_*`` variables in ``src/`` (:func:`env`); ``tests/test_settings.py`` checks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .platforms import PLATFORM_NAMES

PREFIX = "AIPC_"
DEFAULT_WHEELS_DIR = Path("wheels")
# several values in one variable (a ';' would split CMake list values)
LIST_SEP = "|"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")
# variables of aipc's own test suite and fixtures: never warned about
UNWARNED_PREFIXES = ("AIPC_TEST_", "AIPC_FIXTURE_")
CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                     "# This file is a cache directory tag created by aipc (venvs, models, exports, locks).\n"
                     "# For information about cache directory tags see https://bford.info/cachedir/\n")


@dataclass(frozen=True)
class Option:
    """One option of one or more commands.

    ``kind``: ``value`` (takes a value, parsed by ``parse``), ``switch`` (a flag; the variable is a boolean),
    ``list`` (repeatable; the variable separates values with :data:`LIST_SEP`), ``many`` (one or more values after
    the flag), ``optvalue`` (an optional value: the bare flag stores ``""``). ``env=None``: a per-invocation
    flag, command line only. ``default`` is the value when neither is given (None: the command applies its own,
    documented in ``help``).
    """

    name: str  # argparse dest
    cli: str
    env: str | None
    help: str
    parse: Callable[[str], Any] = str
    kind: str = "value"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    default: Any = None
    commands: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # more flags for the same option, e.g. -r
    env_parse: Callable[[str], Any] | None = None  # the variable's parser when not ``parse`` (e.g. no existence check)
    required: bool = False  # only for per-invocation options

    def but(self, **changes: Any) -> Option:
        """This option for other commands, or with a command-specific parser (``--wheels``: an input for verify,
        an output for the build): the variable and its meaning stay one."""
        return dataclasses.replace(self, **changes)

    @property
    def shown_type(self) -> str:
        if self.choices:
            return "|".join(self.choices) + (" ..." if self.kind == "many" else "")
        if self.kind == "switch":
            return "flag" if self.env is None else "flag (variable: 1/0)"
        if self.kind == "list":
            return f"{self.metavar or 'VALUE'}, repeatable" + (f" (variable: '{LIST_SEP}'-separated)" if self.env
                                                                else "")
        if self.kind == "many":
            return f"{self.metavar or 'VALUE'} ..."
        if self.kind == "optvalue":
            return f"[{self.metavar or 'VALUE'}]"
        if self.metavar:
            return self.metavar
        return "TEXT" if self.parse is str else getattr(self.parse, "__name__", "TEXT").replace("_", " ")


# --- variables read outside any command-line option ------------------------------------------------------------

# (name, what it does): read by aipc without a flag, or read by something else of the project (never warned about)
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("AIPC_CACHE", "aipc's cache: venvs, models, exports, locks, the NPU build (default: the user cache folder: "
                   "$XDG_CACHE_HOME/aipc or ~/.cache/aipc on Linux, %LOCALAPPDATA%\\aipc on Windows; macOS, not a "
                   "target: ~/Library/Caches/aipc); it holds a CACHEDIR.TAG, so backup tools skip it"),
    ("AIPC_DEBUG", "1: an internal error prints its Python traceback instead of one line"),
    ("AIPC_LOCK_TIMEOUT", "seconds to wait for a folder another aipc process holds (default 3600)"),
    ("AIPC_PROGRESS_INTERVAL", "seconds between the progress lines of a long step (a venv install, an export, a "
                               "build) in logs, pipes and CI (default 10); on a terminal the status is redrawn in "
                               "place every second"),
    ("AIPC_NPU_SDIST_DIR", "set by aipc for the NPU CMake project (src/aipc/native/npu): the unpacked sdist"),
    ("AIPC_OS_RELEASE", "scripts/bootstrap-linux.sh: an os-release file read instead of /etc/os-release (tests)"),
    ("AIPC_RUNNER", "GitHub repository variable (not an environment variable of aipc): 'true' runs the self-hosted "
                    "aipc job of .github/workflows/wheels.yml"),
    ("AIPC_ATTEST", "GitHub repository variable: 'true' attests release provenance on a private repository"),
)


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The one reader of ``AIPC_*`` variables: the value of ``name`` (None when unset)."""
    return (os.environ if environ is None else environ).get(name)


def parse_bool(name: str, text: str) -> bool:
    low = text.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise UsageError(f"{name}={text!r} is not a boolean", hint=f"set {name}=1 or {name}=0")


def env_value(option: Option, environ: Mapping[str, str] | None = None) -> Any:
    """``option``'s variable, parsed like the command line (None when unset or a per-invocation flag).

    A bad value is one line naming the variable: ``AIPC_X='v' ...; fix: ...``.
    """
    if option.env is None:
        return None
    text = env(option.env, environ)
    if text is None:
        return None
    if option.kind == "switch":
        return parse_bool(option.env, text)
    if option.kind == "list":
        return tuple(_parse(option, item.strip()) for item in text.split(LIST_SEP) if item.strip())
    if option.kind == "optvalue" and not text.strip():
        return ""
    value = _parse(option, text)
    check_choice(option, value)
    return value


def _parse(option: Option, text: str) -> Any:
    name = option.env or option.cli
    try:
        return (option.env_parse or option.parse)(text)
    except argparse.ArgumentTypeError as exc:  # argtypes' "<what>; fix: <how>"
        what, _, how = str(exc).partition("; fix: ")
        hint = (how or "see `aipc options`").replace("pass ", f"set {name} to ", 1)
        hint = hint.replace("leave the option out", f"unset {name}")
        if text and what.startswith((f"{text} is ", f"{text} does ")):  # "-5 is not ..." -> "--x/AIPC_X -5 is not"
            raise UsageError(f"{option.cli}/{name} {what}", hint=hint) from None
        raise UsageError(f"{name}={text!r}: {what}", hint=hint) from None
    except ValueError:
        kind = "a number" if (option.env_parse or option.parse) in (int, float) else "valid"
        raise UsageError(f"{name}={text!r} is not {kind}", hint=f"set {name} to {kind}, or unset it") from None


def checked(check: Callable[[str], object], name: str) -> Callable[[str], str]:
    """A parser that keeps the text but refuses it, with ``check``'s :class:`UsageError`, when ``check`` does: the
    area's own validation runs at parse time, for the command line and the variable alike."""

    def parse(text: str) -> str:
        try:
            check(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(f"{exc.message}; fix: {exc.hint}" if exc.hint else exc.message) \
                from None
        return text

    parse.__name__ = name
    return parse


def check_choice(option: Option, value: Any) -> None:
    if value is not None and option.choices is not None and value not in option.choices:
        raise UsageError(f"{option.cli} {value!r} is not one of {', '.join(option.choices)}",
                         hint=f"pass {option.cli}" + (f" (or {option.env})" if option.env else "")
                         + " with one of those values")


# --- argparse --------------------------------------------------------------------------------------------------


def for_command(options: Iterable[Option], command: str) -> list[Option]:
    return [o for o in options if command in o.commands]


def add_options(parser: argparse.ArgumentParser | Any, options: Iterable[Option], command: str) -> None:
    """Add ``command``'s options to ``parser`` (an argument group too). Defaults are None: unset, so
    :func:`resolve` can tell the command line from the variable and the default."""
    for o in for_command(options, command):
        help_text = o.help + (f" [{o.env}]" if o.env else "")
        kwargs: dict[str, Any] = {"dest": o.name, "default": None, "help": help_text}
        if o.required:
            kwargs["required"] = True
        if o.kind == "switch":
            kwargs.update(action="store_const", const=True)
        else:
            kwargs["type"] = o.parse
            if o.kind == "list":
                kwargs["action"] = "append"
            elif o.kind == "many":
                kwargs["nargs"] = "+"
            elif o.kind == "optvalue":
                kwargs.update(nargs="?", const="")
            if o.choices is not None:
                kwargs["choices"] = o.choices
            if o.metavar is not None:
                kwargs["metavar"] = o.metavar
        parser.add_argument(o.cli, *o.aliases, **kwargs)


def resolve(command: str, args: argparse.Namespace, options: Iterable[Option],
            environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Fill ``args`` (parsed by a parser :func:`add_options` made) for ``command``: command line > variable >
    default. A repeatable option given on the command line becomes a tuple."""
    for o in for_command(options, command):
        value = getattr(args, o.name, None)
        if value is None:
            value = env_value(o, environ)
        if value is None:
            value = False if o.default is None and o.kind == "switch" else o.default
        if isinstance(value, list):
            value = tuple(value)
        setattr(args, o.name, value)
    return args


# --- shared options and locations ------------------------------------------------------------------------------


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$AIPC_CACHE``, else the user cache folder (platformdirs, no vendor folder, no ``Cache`` suffix: Linux
    ``$XDG_CACHE_HOME/aipc`` or ``~/.cache/aipc``, Windows ``%LOCALAPPDATA%\\aipc`` as before)."""
    text = env("AIPC_CACHE", environ)
    if text:
        return Path(os.path.expanduser(text))
    return default_cache_dir()


def default_cache_dir() -> Path:
    """The user cache folder aipc uses when ``AIPC_CACHE`` is not set."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("aipc", appauthor=False, opinion=False))


def test_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The test suite's cache (its slow tests' venvs, tiny model, downloads): ``$AIPC_TEST_CACHE``, else
    ``<cache>/test-cache`` (tests/conftest.py uses the same rule)."""
    text = env("AIPC_TEST_CACHE", environ)
    return Path(os.path.expanduser(text)) if text else cache_dir(environ) / "test-cache"


def mark_cache(folder: Path) -> None:
    """Make ``folder`` (aipc's cache) with a ``CACHEDIR.TAG``, so backup tools skip it. Best effort."""
    tag = folder / CACHEDIR_TAG
    if tag.is_file():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{CACHEDIR_TAG}.{os.getpid()}.tmp"
        tmp.write_text(CACHEDIR_TAG_TEXT, encoding="utf-8")
        os.replace(tmp, tag)
    except OSError:
        pass  # a read-only cache still works; the tag only helps backups


DEFAULT_PROGRESS_INTERVAL = 10.0


def progress_interval(environ: Mapping[str, str] | None = None) -> float:
    """``$AIPC_PROGRESS_INTERVAL`` (positive seconds, at most 30 so a CI log hears from aipc at least twice a
    minute), else :data:`DEFAULT_PROGRESS_INTERVAL`. A bad value is one line naming the variable."""
    text = env("AIPC_PROGRESS_INTERVAL", environ)
    if text is None or not text.strip():
        return DEFAULT_PROGRESS_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 30:  # also refuses nan and inf
        raise UsageError(f"AIPC_PROGRESS_INTERVAL={text!r} is not a number of seconds in (0, 30]",
                         hint="set AIPC_PROGRESS_INTERVAL to e.g. 10, or unset it")
    return value


def wheels_dir(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``--wheels DIR``, else ``$AIPC_WHEELS``, else ``./wheels``."""
    if path is not None:
        return Path(path)
    return Path(env("AIPC_WHEELS", environ) or DEFAULT_WHEELS_DIR)


def pins_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$AIPC_PINS`` (None: the pins file shipped with aipc)."""
    text = env("AIPC_PINS", environ)
    return Path(text) if text else None


# options several areas share: one variable, one meaning (areas adapt the parser with Option.but)
PLATFORM = Option("platform", "--platform", "AIPC_PLATFORM", "target platform (default: this host)",
                  choices=PLATFORM_NAMES)
WHEELS = Option("wheels", "--wheels", "AIPC_WHEELS", "aipc's wheels folder: where the build puts its wheels and "
                "verify, smoke and bench take them from (default: ./wheels)", metavar="DIR")
PINS = Option("pins", "--pins", "AIPC_PINS", "pins file (default: the one shipped with aipc)", metavar="FILE")
INSTALLER = Option("installer", "--installer", "AIPC_INSTALLER", "what makes aipc's venvs and installs into them: "
                   "uv (fast; told pip's index, find-links and constraints), pip, or auto: uv when installed, else "
                   "pip (default auto)", choices=("auto", "uv", "pip"), default="auto")
MODEL = Option("model", "--model", "AIPC_MODEL", "a local Phi-3 checkpoint folder (or an export for the path) "
               "instead of aipc's tiny model", metavar="DIR")


# --- unknown variables -----------------------------------------------------------------------------------------


def known_variables(options: Iterable[Option]) -> set[str]:
    return {o.env for o in options if o.env} | {name for name, _ in ENVIRONMENT}


def warn_unknown(options: Sequence[Option], environ: Mapping[str, str] | None = None,
                 echo: Callable[[str], None] | None = None) -> list[str]:
    """Warn once (one line each) about every ``AIPC_*`` variable aipc does not read; return their names. A
    variable named like a per-invocation flag (``AIPC_FORCE``) is said to be ignored: that flag has none."""
    env_map = os.environ if environ is None else environ
    known = known_variables(options)
    flags = {_variable_of(o.cli): o.cli for o in options if o.env is None}
    unknown = sorted(k for k in env_map if k.startswith(PREFIX) and k not in known
                     and not k.startswith(UNWARNED_PREFIXES))
    say = echo or _stderr
    for name in unknown:
        if name in flags:
            say(f"aipc: warning: {name} is ignored: {flags[name]} is given per run on the command line only (a "
                f"variable left set must never replace outputs); fix: unset {name}, pass {flags[name]} when wanted")
        else:
            say(f"aipc: warning: {name} is not an aipc variable and is ignored; fix: unset it, or see `aipc "
                "options` (docs/options.md) for the variables aipc reads")
    return unknown


def _variable_of(cli: str) -> str:
    return PREFIX + cli.lstrip("-").replace("-", "_").upper()


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


# --- docs ------------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def merged(options: Iterable[Option]) -> list[Option]:
    """One entry per variable (per flag for per-invocation flags), its commands joined, in declaration order."""
    out: dict[str, Option] = {}
    for o in options:
        key = o.env or f"{o.cli} {o.help}"
        if key in out:
            first = out[key]
            out[key] = first.but(commands=tuple(dict.fromkeys(first.commands + o.commands)))
        else:
            out[key] = o
    return list(out.values())


def options_markdown(options: Sequence[Option], groups: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """The text of ``docs/options.md`` (and ``aipc options``), generated from the declarations. ``groups`` names
    sets of commands (``{"build": ("plan", "fetch", ...)}``): an option of all of them shows the name."""
    named = dict(groups or {})

    def commands(o: Option) -> str:
        shown = list(o.commands)
        for label, members in named.items():
            if set(members) <= set(shown):
                at = shown.index(members[0])
                shown = [c for c in shown if c not in members]
                shown.insert(at, f"*{label}*")
        return ", ".join(shown)

    lines = [
        "# aipc options",
        "",
        "<!-- generated from the settings model (src/aipc/settings.py and each area's OPTIONS) by `aipc options`; "
        "tests/test_settings.py fails when this file differs: regenerate it (aipc options > docs/options.md), do "
        "not edit it -->",
        "",
        "Every lasting option of every command has one `AIPC_*` environment variable. Precedence: command line > "
        "variable > default. A switch's variable is `1`/`0` (also true/false, yes/no, on/off); a repeatable "
        f"option's variable holds several values separated by `{LIST_SEP}`. A bad value is refused in one line "
        "naming the variable.",
        "",
        "Per-invocation flags (`--force`, `--check`, `--plan`, `--json`, output paths) have no variable, so a "
        "variable left set in a shell never makes a later run replace outputs. aipc warns once about every `AIPC_*` "
        "variable it does not read (`AIPC_FORCE` included: it no longer exists). `aipc stage` is a step of the "
        "build, which gives it its whole command line: none of its options has a variable.",
        "",
        *[f"*{label}*: {', '.join(members)}." for label, members in named.items()],
        "",
        "## Options with a variable",
        "",
        "| variable | option | commands | value | help |",
        "|---|---|---|---|---|",
    ]
    for o in merged(x for x in options if x.env):
        lines.append(f"| `{o.env}` | `{o.cli}` | {commands(o)} | {_cell(o.shown_type)} | "
                     f"{_cell(o.help)} |")
    lines += ["", "## Per-invocation flags (command line only)", "", "| option | commands | value | help |",
              "|---|---|---|---|"]
    for o in merged(x for x in options if not x.env):
        lines.append(f"| `{o.cli}` | {commands(o)} | {_cell(o.shown_type)} | {_cell(o.help)} |")
    lines += ["", "## Other variables", "", "| variable | meaning |", "|---|---|"]
    for name, text in ENVIRONMENT:
        lines.append(f"| `{name}` | {_cell(text)} |")
    return "\n".join(lines) + "\n"
