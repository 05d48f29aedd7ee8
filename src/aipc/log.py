"""The one logger: progress lines to stderr, and named groups folded in GitHub Actions.

:data:`LOG` is an ``Echo`` (a callable taking one line), so it goes wherever an ``echo`` parameter does. A
:meth:`Log.group` (one build step, one venv install) prints ``::group::<title>`` and ``::endgroup::`` around its
lines when ``GITHUB_ACTIONS`` is ``true`` (the workflow log shows the group folded, cibuildwheel's logger does the
same), and one ``[aipc] <title>`` line anywhere else. Groups do not nest in GitHub Actions: an inner group is
printed as a plain line. On a terminal outside CI (:meth:`Log.is_live`), :meth:`Log.status` redraws one status line
in place (a long step's heartbeat, :mod:`aipc.heartbeat`); the next line printed replaces it.

The stream and the CI test are looked up at each call (not at import), so a test's captured stderr and a changed
environment are honoured.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

Echo = Callable[[str], None]


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """A CI job (``CI`` set to anything but false/0, as GitHub Actions, GitLab and most CI services do)."""
    env = os.environ if environ is None else environ
    return in_github_actions(env) or env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class Log:
    """See the module docstring. ``stream`` None: ``sys.stderr`` at the time of the call; ``ci`` None: from
    ``GITHUB_ACTIONS``."""

    def __init__(self, stream: TextIO | None = None, *, ci: bool | None = None) -> None:
        self.stream = stream
        self.ci = ci
        self._depth = 0
        self._status_shown = False

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _ci(self) -> bool:
        return in_github_actions() if self.ci is None else self.ci

    def __call__(self, line: str) -> None:
        out = self._out()
        if self._status_shown:
            out.write("\r\x1b[2K")
            self._status_shown = False
        print(line, file=out, flush=True)

    def is_live(self) -> bool:
        """A terminal outside CI: a status line may be redrawn in place."""
        out = self._out()
        try:
            tty = out.isatty()
        except (AttributeError, ValueError):  # a closed or unusual stream
            tty = False
        return tty and not in_ci()

    def status(self, text: str) -> None:
        """Redraw the status line in place (live) or print it as a line."""
        if not self.is_live():
            self(text)
            return
        out = self._out()
        out.write("\r\x1b[2K" + text[:200])
        out.flush()
        self._status_shown = True

    def clear_status(self) -> None:
        if self._status_shown:
            out = self._out()
            out.write("\r\x1b[2K")
            out.flush()
            self._status_shown = False

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        fold = self._ci() and self._depth == 0
        self(f"::group::{title}" if fold else f"[aipc] {title}")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if fold:
                self("::endgroup::")


LOG = Log()


def group(echo: Echo, title: str) -> contextlib.AbstractContextManager[None]:
    """``echo.group(title)`` when ``echo`` is a :class:`Log`, else one ``[aipc] <title>`` line through ``echo`` (tests
    and callers that collect lines keep working)."""
    if isinstance(echo, Log):
        return echo.group(title)
    echo(f"[aipc] {title}")
    return contextlib.nullcontext()
