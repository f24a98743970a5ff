"""What every ClickTune command line shares: logging set up once, output on stdout, user errors as one line.

A command's ``main(argv)`` returns its result to a caller (tests, scripts) and raises on bad input;
:func:`run_cli` runs it as a program, where a bad file or a bad flag ends in one clean line on
stderr and exit status 2 instead of a traceback. User errors are a :class:`UserError`, a file
the operating system refused (missing, a folder, not writable: an ``OSError``) and a network
failure of the Hub client. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable
from typing import Any

from recsys.errors import UserError

USER_ERRORS = (UserError, OSError)  # bad input or settings, a missing or unwritable file; anything else is a bug
EXIT_USER_ERROR = 2  # as argparse exits on a bad flag
EXIT_INTERRUPTED = 130  # as a shell reports a program stopped by Ctrl-C (128 + SIGINT)

# What to do about a file the operating system refused, by the kind of refusal.
_FILE_FIXES = {
    IsADirectoryError: "give a file's path, not a folder's",
    NotADirectoryError: "part of the path is a file where a folder is needed; choose another path",
    FileExistsError: "something is in the way at that path (a file where a folder is needed?); choose another path",
    PermissionError: "choose a location you may write to, or change its permissions",
    FileNotFoundError: "check the path",
}


def say(text: str) -> None:
    """A command's output (a table, a URL): on stdout, so that it can be piped, while logs go to stderr."""
    sys.stdout.write(text.rstrip("\n") + "\n")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def network_errors() -> tuple[type[Exception], ...]:
    """The Hub client's transport errors (no connection, a DNS failure, a timeout): the machine's state, not a bug.

    huggingface_hub raises its HTTP client's errors unwrapped; that client's base error class is a base
    of ``HfHubHTTPError``, so this follows whichever client the installed version uses.
    """
    try:
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return ()
    return tuple(base for base in HfHubHTTPError.__mro__[1:] if base not in (OSError, Exception, BaseException, object))


def describe(error: BaseException) -> str:
    """A user error as one line: an ``OSError`` as its path, its reason and the fix; any text on one line."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        # A failed rename names its source and its destination: the destination is the path the user gave.
        path = error.filename if error.filename2 is None else error.filename2
        fix = next((fix for kind, fix in _FILE_FIXES.items() if isinstance(error, kind)), "")
        if error.errno == errno.ENOSPC:
            fix = "free some disk space"
        text = f"{path}: {error.strerror}" + (f"; {fix}" if fix else "")
    elif isinstance(error, network_errors()):
        text = f"cannot reach the network ({error or type(error).__name__}); check the connection and try again"
    else:
        text = str(error) or type(error).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())  # transformers' span lines


def run_cli(main: Callable[[], Any]) -> None:
    """Run a command's ``main``; a user error ends the program with its message and exit status 2."""
    configure_logging()
    try:
        result = main()
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as err:
        if not isinstance(err, USER_ERRORS + network_errors()):
            raise
        sys.stderr.write(f"error: {describe(err)}\n")
        raise SystemExit(EXIT_USER_ERROR) from None
    if isinstance(result, int) and not isinstance(result, bool):
        raise SystemExit(result)
