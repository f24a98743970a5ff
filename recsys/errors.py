"""The one error type whose message is meant for the person who caused it.

A ``UserError`` (a bad file, a bad flag, a limit, a missing token) is shown as it is: one line from
a command line (``recsys.cli``), a ``gr.Error`` in the app. Anything else is a bug and keeps its
traceback. ``recsys.contract.ContractError`` and ``recsys.service.InputError`` are kinds of it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or a missing setting; the message says what to fix."""
