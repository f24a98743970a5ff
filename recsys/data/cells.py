"""What a column's cells must hold: text that is there (no missing-value marker, no list, object, true/false, date
or bytes) and whole numbers from 1; and the columns a table must have. Each refusal is a ``ContractError`` naming
the column and the bad rows. Which columns a click log or a candidate list has is ``recsys.data.contract``'s.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.data.limits import bad_rows, describe_rows
from recsys.errors import ContractError

# Cells that spreadsheets, pandas and JSON writers leave for a missing value: never taken as text.
MISSING_TEXT = frozenset({"nan", "null", "none", "<na>", "n/a", "#n/a"})
MAX_WHOLE_NUMBER = 2**31 - 1  # a position or rank beyond this is a broken file, not a place in a list


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = tuple(c for c in columns if c not in frame.columns)
    if missing:
        raise ContractError(
            source,
            f"missing required column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}",
            "rename or add the column(s)",
            missing=missing,
        )


def _is_plain(value: object) -> bool:
    """A cell that reads as text: a string, a number, or missing; not a list, an object, true/false, bytes, a date,
    a time, a duration or a decimal (a Parquet file's own types, which str() would write in a format of its own)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return value is None or value is pd.NA or isinstance(value, (str, int, float, np.integer, np.floating))


def _kind(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true/false"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, (datetime.date, datetime.time, np.datetime64)):  # a pandas Timestamp is a datetime
        return "a date or time"
    if isinstance(value, (datetime.timedelta, np.timedelta64)):
        return "a duration"
    if isinstance(value, decimal.Decimal):
        return "a decimal number"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__} value"


def _plain(values: pd.Series) -> pd.Series:
    """Which cells are plain (:func:`_is_plain`), looking at each cell only where the dtype leaves it open."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(False, index=values.index)
    if values.dtype.kind in "mM":  # datetime64 and timedelta64, with or without a time zone: only missing cells
        return pd.Series(values.isna(), index=values.index)
    if values.dtype == object or isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(object).map(_is_plain).astype(bool)
    return pd.Series(True, index=values.index)


def refuse_non_text(frame: pd.DataFrame, column: str, source: str) -> None:
    """Refuse cells of ``column`` that hold a list, a JSON object, true/false or bytes: str() would make
    text such as ``['a' 'b']`` of them. Strings, numbers and missing cells pass."""
    values = frame[column]
    plain = _plain(values)
    if plain.all():
        return
    rows = bad_rows(~plain)
    kinds = ", ".join(dict.fromkeys(_kind(v) for v in values[~plain.to_numpy()].head(20)))
    raise ContractError(
        source, f"column {column!r} must hold text, but holds {kinds} at row(s) {describe_rows(rows)}",
        "make each cell one plain string: join a list into one text, write a date, time or decimal as text, and "
        "quote true/false where it is the text",
        column=column, rows=rows,
    )  # fmt: skip


def _infinite(values: pd.Series) -> np.ndarray:
    """Cells holding an infinite number (JSON's ``Infinity``): no text, as NaN is none."""
    if values.dtype != object and not pd.api.types.is_float_dtype(values):
        return np.zeros(len(values), dtype=bool)
    return values.map(lambda v: isinstance(v, (float, np.floating)) and bool(np.isinf(v))).to_numpy(dtype=bool)


def require_text(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """``column`` as text, every cell non-empty; NaN, null, None and other missing-value markers count as empty."""
    refuse_non_text(frame, column, source)
    values = frame[column]
    text = values.astype(str).str.strip()
    marker = text.str.lower().isin(MISSING_TEXT) & values.notna()
    blank = values.isna() | text.eq("") | marker | _infinite(values)
    if blank.any():
        rows = bad_rows(blank)
        markers = sorted(set(text[marker.to_numpy()]))
        plural = "missing values" if len(markers) > 1 else "a missing value"
        read_as = f" ({', '.join(map(repr, markers))} read as {plural})" if markers else ""
        raise ContractError(
            source, f"column {column!r} is empty at row(s) {describe_rows(rows)}{read_as}",
            f"every row needs non-empty {column} text: fill it in or drop the row", column=column, rows=rows,
        )  # fmt: skip
    return values.astype(str)


def whole_numbers(values: pd.Series, column: str, source: str, fix: str = "") -> pd.Series:
    numbers = pd.to_numeric(values.where(_plain(values)), errors="coerce")
    finite = np.isfinite(numbers.astype(np.float64))
    bad = numbers.isna() | ~finite | (numbers < 1) | (numbers > MAX_WHOLE_NUMBER) | (numbers % 1 != 0)
    if bad.any():
        rows = bad_rows(bad)
        raise ContractError(
            source, f"column {column!r} must be a 1-based whole number at row(s) {describe_rows(rows)}",
            fix or f"give whole numbers from 1 to {MAX_WHOLE_NUMBER}",
            column=column, rows=rows,
        )  # fmt: skip
    return numbers.astype("int64")
