"""Read the FetchContent dependencies a CMake project would use, without running CMake.

A small, deliberately partial interpreter of CMake's language: enough to follow ``if``/``elseif``/``else``,
``set``/``unset``/``option``/``cmake_dependent_option``, ``include``, ``function``/``macro`` calls and
``return``, and to record every ``FetchContent_Declare`` and the ``FetchContent_MakeAvailable`` (or
``onnxruntime_fetchcontent_makeavailable``) calls that use it. Anything it cannot decide (an unknown command's
effect, ``TARGET``, a variable set under an undecidable condition) is *unknown*, and a dependency made available
under an unknown condition counts as needed: an offline build then asks for one folder too many rather than
failing half way through CMake's configure. Loop bodies (``foreach``/``while``) are skipped.

Only what the dependency discovery needs is modelled; it is not a CMake implementation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AipcError

Tri = bool | None  # True, False, or None = unknown


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
Value = str | _Unknown

_TRUE = {"1", "ON", "YES", "TRUE", "Y"}
_FALSE = {"0", "OFF", "NO", "FALSE", "N", "IGNORE", "NOTFOUND", ""}
_MAKE_AVAILABLE = {"fetchcontent_makeavailable", "onnxruntime_fetchcontent_makeavailable"}
_BINARY = {"STREQUAL", "STRLESS", "STRGREATER", "STRLESS_EQUAL", "STRGREATER_EQUAL", "EQUAL", "LESS", "GREATER",
           "LESS_EQUAL", "GREATER_EQUAL", "MATCHES", "VERSION_EQUAL", "VERSION_LESS", "VERSION_GREATER",
           "VERSION_LESS_EQUAL", "VERSION_GREATER_EQUAL", "IN_LIST", "PATH_EQUAL", "IS_NEWER_THAN"}
_UNARY = {"EXISTS", "COMMAND", "DEFINED", "TARGET", "POLICY", "TEST", "IS_DIRECTORY", "IS_SYMLINK", "IS_ABSOLUTE",
          "IS_READABLE", "IS_WRITABLE", "IS_EXECUTABLE"}


@dataclass(frozen=True)
class Arg:
    text: str
    quoted: bool  # "..." or [[...]]: never dereferenced as a variable name in if()


@dataclass(frozen=True)
class Call:
    name: str  # lower case
    args: tuple[Arg, ...]
    line: int


def parse(text: str) -> list[Call]:
    """The command invocations of a CMake file, in order (comments dropped, arguments split)."""
    calls: list[Call] = []
    i, n, line = 0, len(text), 1
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#":
            m = re.match(r"#\[(=*)\[", text[i:])
            if m:
                end = text.find("]" + m.group(1) + "]", i)
                end = n if end < 0 else end + len(m.group(1)) + 2
            else:
                end = text.find("\n", i)
                end = n if end < 0 else end
            line += text.count("\n", i, end)
            i = end
        else:
            m = ident.match(text, i)
            if not m:
                i += 1
                continue
            name = m.group(0)
            j = m.end()
            while j < n and text[j] in " \t":
                j += 1
            if j >= n or text[j] != "(":
                i = j
                continue
            args, end = _parse_args(text, j + 1)
            calls.append(Call(name.lower(), tuple(args), line))
            line += text.count("\n", i, end)
            i = end
    return calls


def _parse_args(text: str, i: int) -> tuple[list[Arg], int]:
    args: list[Arg] = []
    depth = 0
    n = len(text)
    cur: list[str] = []
    have = False

    def flush() -> None:
        nonlocal cur, have
        if have:
            args.append(Arg("".join(cur), False))
        cur, have = [], False

    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    buf.append({"n": "\n", "t": "\t", "\n": ""}.get(nxt, nxt if nxt in '"\\$;' else "\\" + nxt))
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            flush()
            args.append(Arg("".join(buf), True))
            i = j + 1
            continue
        m = re.match(r"\[(=*)\[", text[i:i + 40]) if c == "[" and not have else None
        if m:
            close = "]" + m.group(1) + "]"
            end = text.find(close, i)
            end = n if end < 0 else end
            body = text[i + len(m.group(0)):end]
            flush()
            args.append(Arg(body[1:] if body.startswith("\n") else body, True))
            i = end + len(close)
            continue
        if c == "#" and not have:
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "(":
            depth += 1
            flush()
            args.append(Arg("(", False))
        elif c == ")":
            if depth == 0:
                flush()
                return args, i + 1
            depth -= 1
            flush()
            args.append(Arg(")", False))
        elif c.isspace():
            flush()
        else:
            cur.append(c)
            have = True
        i += 1
    flush()
    return args, n


@dataclass
class Declared:
    """One ``FetchContent_Declare``: its name as written, keyword arguments, where, and whether it is used."""

    name: str
    options: dict[str, list[str]]
    file: Path
    line: int
    declared_when: Tri
    used: Tri = False  # made available: True, False, or None (under an undecidable condition)

    def first(self, key: str) -> str | None:
        values = self.options.get(key)
        return values[0] if values else None


_DECLARE_KEYS = {"URL", "URL_HASH", "GIT_REPOSITORY", "GIT_TAG", "SOURCE_SUBDIR", "SOURCE_DIR", "FIND_PACKAGE_ARGS",
                 "PATCH_COMMAND", "EXCLUDE_FROM_ALL", "GIT_SHALLOW", "DOWNLOAD_EXTRACT_TIMESTAMP", "SYSTEM",
                 "OVERRIDE_FIND_PACKAGE", "URL_MD5", "GIT_SUBMODULES", "DOWNLOAD_NO_EXTRACT"}


@dataclass
class _Frame:
    any_prev: Tri  # some earlier branch of this if() was taken
    current: Tri  # this branch is taken


class _Return(Exception):
    pass


@dataclass
class Scanner:
    """Interprets files in one variable scope; collects the declarations (first declaration of a name wins)."""

    variables: dict[str, Value]
    module_path: list[Path] = field(default_factory=list)
    declared: dict[str, Declared] = field(default_factory=dict)  # key: lower-case name
    commands: dict[str, list[Call]] = field(default_factory=dict)  # function()/macro() bodies
    files: list[Path] = field(default_factory=list)  # every file read
    depth: int = 0

    # --- values ---------------------------------------------------------------------------------------------------
    def expand(self, text: str) -> Value:
        """``${VAR}`` references replaced (innermost first); unknown when a referenced variable is unknown."""
        for _ in range(20):
            m = re.search(r"\$\{([^${}]*)\}", text)
            if not m:
                return text
            value = self.variables.get(m.group(1), "")
            if isinstance(value, _Unknown):
                return UNKNOWN
            text = text[:m.start()] + value + text[m.end():]
        return UNKNOWN

    def _args(self, call: Call) -> list[tuple[Value, bool]]:
        return [(self.expand(a.text), a.quoted) for a in call.args]

    # --- running --------------------------------------------------------------------------------------------------
    def run_file(self, path: Path, active: Tri = True) -> None:
        if self.depth > 30:
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise AipcError(f"cannot read {path} ({exc.strerror})",
                            hint="pass a complete source tree (aipc fetch or --genai-source)") from None
        self.files.append(path)
        saved = self.variables.get("CMAKE_CURRENT_LIST_DIR")
        self.variables["CMAKE_CURRENT_LIST_DIR"] = path.parent.as_posix()
        self.depth += 1
        try:
            self.run_calls(parse(text), path, active)
        except _Return:
            pass
        finally:
            self.depth -= 1
            if saved is None:
                self.variables.pop("CMAKE_CURRENT_LIST_DIR", None)
            else:
                self.variables["CMAKE_CURRENT_LIST_DIR"] = saved

    def run_calls(self, calls: list[Call], path: Path, active: Tri) -> None:
        frames: list[_Frame] = []
        i = 0
        while i < len(calls):
            call = calls[i]
            name = call.name
            if name in ("function", "macro"):
                end = _block_end(calls, i, name, "end" + name)
                if call.args and _tri_and(active, _frames_state(frames)) is not False:
                    fname = call.args[0].text.lower()
                    self.commands[fname] = calls[i + 1:end]
                i = end + 1
                continue
            if name in ("foreach", "while"):
                i = _block_end(calls, i, name, "end" + name) + 1
                continue
            if name == "if":
                state = _tri_and(active, _frames_state(frames))
                cond = self.condition(call) if state is not False else False
                frames.append(_Frame(any_prev=cond, current=cond))
                i += 1
                continue
            if name == "elseif" and frames:
                f = frames[-1]
                state = _tri_and(active, _frames_state(frames[:-1]))
                cond = self.condition(call) if state is not False else False
                f.current = _tri_and(_tri_not(f.any_prev), cond)
                f.any_prev = _tri_or(f.any_prev, cond)
                i += 1
                continue
            if name == "else" and frames:
                f = frames[-1]
                f.current = _tri_not(f.any_prev)
                f.any_prev = True
                i += 1
                continue
            if name == "endif" and frames:
                frames.pop()
                i += 1
                continue
            state = _tri_and(active, _frames_state(frames))
            if state is not False:
                self.command(call, path, state)
            i += 1

    def command(self, call: Call, path: Path, state: Tri) -> None:
        name = call.name
        if name == "set":
            self._set(call, state)
        elif name == "unset" and call.args:
            var = _text(self.expand(call.args[0].text))
            if var is not None:
                if state is True:
                    self.variables.pop(var, None)
                else:
                    self.variables[var] = UNKNOWN
        elif name == "option" and len(call.args) >= 1:
            var = _text(self.expand(call.args[0].text))
            if var is not None and var not in self.variables:
                default = self.expand(call.args[2].text) if len(call.args) > 2 else "OFF"
                self.variables[var] = default if state is True else UNKNOWN
        elif name == "cmake_dependent_option" and len(call.args) >= 5:
            var = _text(self.expand(call.args[0].text))
            if var is not None and var not in self.variables:
                deps_ok: Tri = True
                for cond in str(call.args[3].text).split(";"):
                    deps_ok = _tri_and(deps_ok, self.evaluate([(self.expand(t), False) for t in cond.split()]))
                if deps_ok is None or state is not True:
                    self.variables[var] = UNKNOWN
                else:
                    self.variables[var] = self.expand(call.args[2].text if deps_ok else call.args[4].text)
        elif name == "include" and call.args:
            target = self._find_include(call.args[0].text)
            if target is not None:
                self.run_file(target, state)
        elif name == "return":
            if state is True:
                raise _Return()
        elif name == "fetchcontent_declare" and call.args:
            self._declare(call, path, state)
        elif name in _MAKE_AVAILABLE:
            for a in call.args:
                dep = _text(self.expand(a.text))
                if dep is not None and dep.lower() in self.declared:
                    d = self.declared[dep.lower()]
                    d.used = _tri_or(d.used, state)
        elif name in self.commands:
            body = self.commands[name]
            self.run_calls(body, path, state)

    def _set(self, call: Call, state: Tri) -> None:
        if not call.args:
            return
        var = _text(self.expand(call.args[0].text))
        if var is None:
            return
        values = [self.expand(a.text) for a in call.args[1:]]
        texts = [a.text.upper() for a in call.args[1:]]
        cache = "CACHE" in texts and not call.args[1 + texts.index("CACHE")].quoted
        if cache:
            values = values[:texts.index("CACHE")]
            if var in self.variables and "FORCE" not in texts:
                return
        if "PARENT_SCOPE" in texts:
            return
        if state is not True or any(isinstance(v, _Unknown) for v in values):
            self.variables[var] = UNKNOWN
        elif not values:
            self.variables.pop(var, None)
        else:
            self.variables[var] = ";".join(str(v) for v in values)

    def _find_include(self, raw: str) -> Path | None:
        text = _text(self.expand(raw))
        if text is None:
            return None
        if text.endswith(".cmake") or "/" in text:
            p = Path(text)
            if not p.is_absolute():
                base = _text(self.variables.get("CMAKE_CURRENT_SOURCE_DIR", "")) or ""
                p = Path(base) / p
            return p if p.is_file() else None
        for d in self.module_path:
            p = d / f"{text}.cmake"
            if p.is_file():
                return p
        return None

    def _declare(self, call: Call, path: Path, state: Tri) -> None:
        name = _text(self.expand(call.args[0].text))
        if name is None or name.lower() in self.declared:
            return
        options: dict[str, list[str]] = {}
        key: str | None = None
        for a in call.args[1:]:
            if not a.quoted and a.text.upper() in _DECLARE_KEYS:
                key = a.text.upper()
                options.setdefault(key, [])
                continue
            if key is not None:
                value = self.expand(a.text)
                options[key].append(value if isinstance(value, str) else "")
        self.declared[name.lower()] = Declared(name, options, path, call.line, state)

    # --- conditions -----------------------------------------------------------------------------------------------
    def condition(self, call: Call) -> Tri:
        return self.evaluate([(self.expand(a.text) if a.text not in ("(", ")") or a.quoted else a.text, a.quoted)
                              for a in call.args])

    def evaluate(self, tokens: list[tuple[Value, bool]]) -> Tri:
        parser = _CondParser(self, tokens)
        try:
            result = parser.expr()
        except _CondError:
            return None
        return result if parser.pos == len(tokens) else None

    def value_of(self, token: Value, quoted: bool) -> Value:
        """An operand of a binary test: an unquoted variable name stands for its value."""
        if isinstance(token, _Unknown):
            return UNKNOWN
        if not quoted and token in self.variables:
            return self.variables[token]
        return token

    def truth(self, token: Value, quoted: bool) -> Tri:
        if isinstance(token, _Unknown):
            return None
        up = token.upper()
        if up in _TRUE or _is_nonzero_number(token):
            return True
        if up in _FALSE or up.endswith("-NOTFOUND"):
            return False
        if quoted:
            return False
        value = self.variables.get(token)
        if value is None:
            return False
        if isinstance(value, _Unknown):
            return None
        vup = value.upper()
        return not (vup in _FALSE or vup.endswith("-NOTFOUND"))


class _CondError(Exception):
    pass


class _CondParser:
    def __init__(self, scanner: Scanner, tokens: list[tuple[Value, bool]]) -> None:
        self.s = scanner
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        if self.pos >= len(self.tokens):
            return None
        tok, quoted = self.tokens[self.pos]
        return tok if isinstance(tok, str) and not quoted else None

    def take(self) -> tuple[Value, bool]:
        if self.pos >= len(self.tokens):
            raise _CondError()
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expr(self) -> Tri:
        value = self.and_expr()
        while self.peek() == "OR":
            self.pos += 1
            value = _tri_or(value, self.and_expr())
        return value

    def and_expr(self) -> Tri:
        value = self.not_expr()
        while self.peek() == "AND":
            self.pos += 1
            value = _tri_and(value, self.not_expr())
        return value

    def not_expr(self) -> Tri:
        if self.peek() == "NOT":
            self.pos += 1
            return _tri_not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Tri:
        if self.peek() == "(":
            self.pos += 1
            value = self.expr()
            if self.peek() != ")":
                raise _CondError()
            self.pos += 1
            return value
        op = self.peek()
        if op in _UNARY:
            self.pos += 1
            operand, quoted = self.take()
            return self.unary(op, operand, quoted)
        left, lq = self.take()
        op = self.peek()
        if op in _BINARY:
            self.pos += 1
            right, rq = self.take()
            return _binary(op, self.s.value_of(left, lq), self.s.value_of(right, rq), self.s)
        return self.s.truth(left, lq)

    def unary(self, op: str, operand: Value, quoted: bool) -> Tri:
        if isinstance(operand, _Unknown):
            return None
        if op == "DEFINED":
            if operand.startswith("ENV{") or operand.startswith("CACHE{"):
                return None
            value = self.s.variables.get(operand)
            return None if isinstance(value, _Unknown) else value is not None
        if op == "EXISTS":
            return Path(operand).exists() if operand else False
        if op == "IS_DIRECTORY":
            return Path(operand).is_dir() if operand else False
        if op == "IS_ABSOLUTE":
            return Path(operand).is_absolute() or operand.startswith("/")
        return None  # TARGET, COMMAND, POLICY, TEST...: not modelled


def _binary(op: str, left: Value, right: Value, scanner: Scanner) -> Tri:
    if isinstance(left, _Unknown) or isinstance(right, _Unknown):
        return None
    if op == "STREQUAL":
        return left == right
    if op.startswith("VERSION_"):
        a, b = _version_tuple(left), _version_tuple(right)
        return {"VERSION_EQUAL": a == b, "VERSION_LESS": a < b, "VERSION_GREATER": a > b,
                "VERSION_LESS_EQUAL": a <= b, "VERSION_GREATER_EQUAL": a >= b}[op]
    if op in ("EQUAL", "LESS", "GREATER", "LESS_EQUAL", "GREATER_EQUAL"):
        try:
            x, y = float(left), float(right)
        except ValueError:
            return False
        return {"EQUAL": x == y, "LESS": x < y, "GREATER": x > y, "LESS_EQUAL": x <= y, "GREATER_EQUAL": x >= y}[op]
    if op == "MATCHES":
        try:
            return re.search(right, left) is not None
        except re.error:
            return None
    if op == "IN_LIST":
        values = scanner.variables.get(right)
        if isinstance(values, _Unknown):
            return None
        return left in (values or "").split(";")
    return None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:4]:
        m = re.match(r"\d+", piece)
        parts.append(int(m.group(0)) if m else 0)
    while len(parts) < 4:
        parts.append(0)
    return tuple(parts)


def _is_nonzero_number(text: str) -> bool:
    try:
        return float(text) != 0
    except ValueError:
        return False


def _text(value: Value) -> str | None:
    return value if isinstance(value, str) else None


def _tri_and(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _tri_or(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _tri_not(a: Tri) -> Tri:
    return None if a is None else not a


def _frames_state(frames: list[_Frame]) -> Tri:
    state: Tri = True
    for f in frames:
        state = _tri_and(state, f.current)
    return state


def _block_end(calls: list[Call], start: int, opener: str, closer: str) -> int:
    depth = 0
    for j in range(start, len(calls)):
        if calls[j].name == opener:
            depth += 1
        elif calls[j].name == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(calls) - 1


def iter_used(declared: Mapping[str, Declared]) -> Iterator[Declared]:
    """Declarations made available (for sure or maybe), in declaration order."""
    for d in declared.values():
        if d.used is not False:
            yield d
