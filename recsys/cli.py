"""What every ClickTune command line shares: logging set up once, output on stdout, user errors as one line.

A command's ``main(argv)`` returns its result to a caller (tests, scripts) and raises on bad input;
:func:`run_cli` runs it as a program, where a bad file or a bad flag ends in one clean line on
stderr and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from recsys.errors import UserError

USER_ERRORS = (UserError, OSError)  # bad input or settings, a missing or unwritable file; anything else is a bug
EXIT_USER_ERROR = 2  # as argparse exits on a bad flag


def say(text: str) -> None:
    """A command's output (a table, a URL): on stdout, so that it can be piped, while logs go to stderr."""
    sys.stdout.write(text.rstrip("\n") + "\n")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def run_cli(main: Callable[[], Any]) -> None:
    """Run a command's ``main``; a user error ends the program with its message and exit status 2."""
    configure_logging()
    try:
        result = main()
    except USER_ERRORS as err:
        sys.stderr.write(f"error: {err}\n")
        raise SystemExit(EXIT_USER_ERROR) from None
    if isinstance(result, int) and not isinstance(result, bool):
        raise SystemExit(result)
