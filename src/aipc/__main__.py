"""The entry module of ``python -m aipc`` and of the ``aipc`` console script (``aipc.__main__:entry``).

Interrupts are handled from the first statement: ``_signal`` is the interpreter's built-in signal module (no
imports behind it), so a Ctrl-C or SIGTERM while the rest of aipc is imported ends with the same one line and exit
code as later (:mod:`aipc.interrupts`, which takes over once imported).
"""

from __future__ import annotations

import _signal  # built in: the early handler is in place before any other import

_first: list[int] = []


def _early(signum: int, frame: object) -> None:
    if not _first:
        _first.append(signum)
    raise KeyboardInterrupt


for _sig in (_signal.SIGINT, _signal.SIGTERM):
    _signal.signal(_sig, _early)


def entry() -> int:
    """Install aipc's interrupt handler, import the command line and run it."""
    try:
        from aipc import interrupts

        interrupts.install()
        from aipc.cli import main
    except KeyboardInterrupt as exc:
        for sig in (_signal.SIGINT, _signal.SIGTERM):  # the one line is printed whatever comes next
            _signal.signal(sig, _signal.SIG_IGN)
        import sys

        from aipc.interrupts import finish

        line, code = finish(exc, signum=_first[0] if _first else None)
        print(line, file=sys.stderr)
        return code
    return main()


if __name__ == "__main__":
    raise SystemExit(entry())
