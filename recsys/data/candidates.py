"""Candidate lists: the items to rank, from a file (.csv, .tsv, .jsonl, .parquet, or .txt with one item per line)
or from pasted lines, with the limits the app sets. The item column (``item``, or one the caller names) holds text;
every other column is kept as it is.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from recsys.data.cells import refuse_non_text, require_columns, require_text
from recsys.data.contract import ITEM, ITEM_ID
from recsys.data.file_checks import not_utf8, refuse_binary, require_file
from recsys.data.limits import ROWS, TooLarge, bad_rows, check_rows_read, rows_to_read, too_large
from recsys.data.tables import TABULAR_SUFFIXES, read_table, refuse_repeated_columns
from recsys.errors import ContractError

CANDIDATE_SUFFIXES = (*TABULAR_SUFFIXES, ".txt")


def read_candidate_table(
    path: str | Path, source: str | None = None, *, max_items: int | None = None, max_columns: int | None = None
) -> pd.DataFrame:
    """The table in a candidate file before its item column is checked; a .txt file gives an ``item`` column.

    A file with more than ``max_items`` items or ``max_columns`` columns is refused while it is read
    (:class:`~recsys.data.limits.TooLarge`, with the count in items): reading stops there.
    """
    path = Path(path)
    source = source or str(path)
    suffix = path.suffix.lower()
    if suffix not in CANDIDATE_SUFFIXES:
        raise ContractError(
            source, f"unknown file type {suffix or '(none)'!r}", f"give one of {', '.join(CANDIDATE_SUFFIXES)}"
        )
    try:
        if suffix != ".txt":
            return read_table(path, source, max_rows=max_items, max_columns=max_columns)
        return pasted_candidates("\n".join(_text_lines(path, source, max_items)), source)
    except TooLarge as err:
        if err.unit != ROWS:
            raise
        raise _in_items(err) from err


def _in_items(err: TooLarge) -> TooLarge:
    """A list with more rows than ``max_items``, in the one message of a list too long to rank."""
    return replace(err, problem=err.count("items"), fix="rank a shorter list")


def _text_lines(path: Path, source: str, max_items: int | None) -> list[str]:
    """The lines of a .txt file that are not blank, read up to :func:`~recsys.data.limits.rows_to_read` of them."""
    require_file(path, source)
    refuse_binary(path, source)
    lines, stop = [], rows_to_read(max_items)
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line in handle:
                lines += [piece for piece in line.splitlines() if piece.strip()]  # as str.splitlines splits a text
                if stop is not None and len(lines) >= stop:
                    break
    except UnicodeDecodeError as err:
        raise not_utf8(path, source, "re-save it as UTF-8 with one item per line") from err
    check_rows_read(source, len(lines), max_items)
    return lines


def pasted_candidates(text: str, source: str = "the pasted list") -> pd.DataFrame:
    """One item per non-blank line, stripped."""
    items = [line.strip() for line in text.splitlines() if line.strip()]
    if not items:
        raise ContractError(source, "no items", "write one item per line")
    return pd.DataFrame({ITEM: items})


def validate_candidates(
    frame: pd.DataFrame,
    source: str = "candidates",
    item_column: str = ITEM,
    max_items: int | None = None,
    max_text_chars: int | None = None,
) -> pd.DataFrame:
    """Check a candidate list; ``item_column`` names the text column, which becomes ``item``.

    With limits, a list longer than ``max_items`` or an item longer than ``max_text_chars`` is refused.
    """
    refuse_repeated_columns(list(frame.columns), source)
    require_columns(frame, (item_column,), source)
    if item_column != ITEM and ITEM in frame.columns:
        raise ContractError(
            source, f"the item text is to come from column {item_column!r}, but the list also has an {ITEM!r} column",
            f"choose the {ITEM!r} column, or rename one of the two (e.g. {ITEM!r} to 'original_item')",
            column=item_column,
        )  # fmt: skip
    candidates = frame.copy()
    candidates[item_column] = require_text(candidates, item_column, source)
    if ITEM_ID in candidates.columns:
        refuse_non_text(candidates, ITEM_ID, source)
    if item_column != ITEM:
        candidates = candidates.rename(columns={item_column: ITEM})
    if max_items is not None and len(candidates) > max_items:
        raise _in_items(too_large(source, ROWS, len(candidates), max_items))
    if max_text_chars is not None:
        too_long = candidates[ITEM].str.len() > max_text_chars
        if too_long.any():
            rows = bad_rows(too_long)
            raise ContractError(
                source, f"item {rows[0]} is longer than {max_text_chars} characters", "shorten it",
                column=ITEM, rows=rows,
            )  # fmt: skip
    return candidates.reset_index(drop=True)


def read_candidates(
    path: str | Path,
    item_column: str = ITEM,
    source: str | None = None,
    *,
    max_items: int | None = None,
    max_text_chars: int | None = None,
    max_columns: int | None = None,
) -> pd.DataFrame:
    """Read and check a candidate file; ``max_items`` and ``max_columns`` apply while it is read
    (:func:`read_candidate_table`, once), ``max_text_chars`` to the items read (:func:`validate_candidates`)."""
    source = source or str(path)
    table = read_candidate_table(path, source, max_items=max_items, max_columns=max_columns)
    return validate_candidates(table, source, item_column, max_text_chars=max_text_chars)
