"""The one error type whose message is meant for the person who caused it.

A ``UserError`` (a bad file, a bad flag, a limit, a missing token) is shown as it is: one line from
a command line (``recsys.cli``), a ``gr.Error`` in the app. Anything else is a bug and keeps its
traceback. :class:`ContractError` (a file or table that breaks ``recsys.data.contract``) and
``recsys.serving.service.InputError`` are kinds of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UserError(ValueError):
    """Bad input or a missing setting; the message says what to fix."""


@dataclass(eq=False)  # compared by identity, as exceptions are; hashable
class ContractError(UserError):
    """A file or table that breaks the contract: what is wrong, where, and how to fix it.

    ``str()`` reads ``"{source}: {problem}; {fix}"``; ``column``, ``rows`` (1-based data rows) and
    ``missing`` (required columns absent) let a caller add its own advice without parsing that text.
    """

    source: str
    problem: str
    fix: str = ""
    column: str | None = None
    rows: tuple[int, ...] = ()
    missing: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}" + (f"; {self.fix}" if self.fix else "")

    def __reduce__(self) -> tuple:  # pickled (worker processes) and copied with its fields
        return type(self), (self.source, self.problem, self.fix, self.column, self.rows, self.missing)
