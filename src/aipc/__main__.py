"""The entry module of ``python -m aipc`` and of the ``aipc`` console script (``aipc.__main__:entry``).

The interrupt handler is installed before anything else is imported, so a Ctrl-C or SIGTERM at any moment,
during the imports too, ends with the same one line and exit code (:mod:`aipc.interrupts`).
"""

from __future__ import annotations

import sys

from aipc import interrupts

interrupts.install()


def entry() -> int:
    """Import the command line (after the handler) and run it."""
    try:
        from aipc.cli import main
    except KeyboardInterrupt as exc:
        line, code = interrupts.finish(exc)
        print(line, file=sys.stderr)
        return code
    return main()


if __name__ == "__main__":
    raise SystemExit(entry())
