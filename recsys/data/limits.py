"""Rows and columns counted: the limits a reader applies while it reads (:class:`TooLarge`), and the data rows
that a message names, numbered from 1 as a person counts them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import ContractError

_MAX_ROWS_NAMED = 5
ROWS, COLUMNS = "rows", "columns"


@dataclass(eq=False)
class TooLarge(ContractError):
    """A file with more rows or columns than its reader takes (``max_rows``, ``max_columns``), refused as soon as the
    reader sees it; ``size`` is how many the file has (at least, where ``exact`` is false: the reader stopped
    counting), so that a caller can say so in its own words (:meth:`count`)."""

    unit: str = ROWS  # ROWS or COLUMNS
    size: int = 0
    limit: int = 0
    exact: bool = True

    def count(self, unit: str | None = None) -> str:
        """E.g. ``1001 items, more than the limit of 1000``, in ``unit`` (default: rows or columns)."""
        return _over_limit(self.size, unit or self.unit, self.limit, self.exact)

    def __reduce__(self) -> tuple:
        return type(self), (*super().__reduce__()[1], self.unit, self.size, self.limit, self.exact)


def _over_limit(size: int, unit: str, limit: int, exact: bool) -> str:
    return f"{size} {unit}, more than the limit of {limit}" if exact else f"more than the limit of {limit} {unit}"


def too_large(source: str, unit: str, size: int, limit: int, exact: bool = True) -> TooLarge:
    fix = "give a file with fewer rows" if unit == ROWS else "drop the columns you don't need"
    problem = _over_limit(size, unit, limit, exact)
    return TooLarge(source, problem, fix, unit=unit, size=size, limit=limit, exact=exact)


def check_size(source: str, unit: str, size: int, limit: int | None, exact: bool = True) -> None:
    if limit is not None and size > limit:
        raise too_large(source, unit, size, limit, exact)


def rows_to_read(limit: int | None) -> int | None:
    """How many rows a reader reads for a ``limit``: two past it, the first to tell a file over the limit, the
    second whether that one was the last (then the refusal names the file's count); None: every row."""
    return None if limit is None else limit + 2


def check_rows_read(source: str, read: int, limit: int | None, unit: str = ROWS) -> None:
    """Refuse a file of which ``read`` rows (at most :func:`rows_to_read`) were read, where they are over ``limit``."""
    check_size(source, unit, read, limit, exact=limit is None or read <= limit + 1)


def bad_rows(mask: pd.Series | np.ndarray) -> tuple[int, ...]:
    """The data rows where ``mask`` is true, numbered from 1 as a person counts them (header excluded)."""
    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask, dtype=bool)))


def describe_rows(rows: Sequence[int]) -> str:
    more = f" and {len(rows) - _MAX_ROWS_NAMED} more" if len(rows) > _MAX_ROWS_NAMED else ""
    return ", ".join(map(str, rows[:_MAX_ROWS_NAMED])) + more
