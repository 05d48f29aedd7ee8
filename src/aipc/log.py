"""The one logger: progress lines to stderr, and named groups folded in GitHub Actions.

:data:`LOG` is an ``Echo`` (a callable taking one line), so it goes wherever an ``echo`` parameter does. A
:meth:`Log.group` (one build step, one venv install) prints ``::group::<title>`` and ``::endgroup::`` around its
lines when ``GITHUB_ACTIONS`` is ``true`` (the workflow log shows the group folded, cibuildwheel's logger does the
same), and one ``[aipc] <title>`` line anywhere else. Groups do not nest in GitHub Actions: an inner group is
printed as a plain line.

The stream and the CI test are looked up at each call (not at import), so a test's captured stderr and a changed
environment are honoured.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

Echo = Callable[[str], None]


def in_github_actions(environ: dict[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


class Log:
    """See the module docstring. ``stream`` None: ``sys.stderr`` at the time of the call; ``ci`` None: from
    ``GITHUB_ACTIONS``."""

    def __init__(self, stream: TextIO | None = None, *, ci: bool | None = None) -> None:
        self.stream = stream
        self.ci = ci
        self._depth = 0

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _ci(self) -> bool:
        return in_github_actions() if self.ci is None else self.ci

    def __call__(self, line: str) -> None:
        print(line, file=self._out(), flush=True)

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
