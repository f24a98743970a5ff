"""The one data contract: every input rule for click logs, candidate lists, rows to score and marked lists.

A click log has one row per item shown::

    query    (required, text)  the context: a search query or a short text of the user's interests
    item     (required, text)  the item's text: title, description, tags
    clicked  (required)        0 or 1 (true/false, yes/no accepted)
    group    (optional)        the rows shown together; where absent, rows with the same query
    item_id, position, timestamp (optional)

A candidate list has an ``item`` column (or a column the caller names) and keeps every other
column as it is; it comes from a file (.csv, .tsv, .jsonl, .parquet, or .txt with one item per
line) or from pasted lines. A ``clicked`` column in a candidate list is its ground truth: the real clicks
on it (0/1), by which a ranking is judged (:func:`ground_truth`) and never ranked or blended (:func:`numeric_columns`
leaves it out). Rows to be scored in bulk (``python -m recsys.scoring.bulk``) need ``query`` and
``item`` and keep every other column. A marked list is a ranked list with a ``mark`` column of true/false:
the items a user would click, which the app stores as feedback.

Readers validate once and raise :class:`ContractError`, whose fields carry the source, the
column, the bad rows and the fix, so that callers never parse message text. After that, code
trusts the contract. Nothing is coerced silently: a column name given twice, a row with more
fields than the header, a list, object or true/false where text belongs, and a missing-value
marker (``NaN``, ``null``, ``None``, ...) in a text column are refused, not renamed, shifted or
turned into text; so are a Parquet file's dates, times, durations, decimals and bytes there. A UTF-8
byte-order mark is allowed; other encodings are refused, naming the first byte that is not UTF-8.

Size limits apply while a file is read, before it becomes a table (``recsys.data.tables``): a candidate
file read with ``max_items`` or ``max_columns`` is refused as soon as the reader sees more, so that a
small upload never makes a large table. A JSON line's integers must fit in 64 bits: quote a larger
one as a string.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.file_checks import not_utf8, refuse_binary, require_file
from recsys.data.limits import ROWS, TooLarge, bad_rows, check_rows_read, describe_rows, rows_to_read
from recsys.data.tables import TABULAR_SUFFIXES, read_table, refuse_repeated_columns
from recsys.errors import ContractError

QUERY = "query"
ITEM = "item"
CLICKED = "clicked"
GROUP = "group"
ITEM_ID = "item_id"
POSITION = "position"
TIMESTAMP = "timestamp"
RANK = "rank"  # a ranked list's displayed rank, from 1
MARK = "mark"  # a marked list's true/false: the user would click the item

REQUIRED_CLICK_COLUMNS = (QUERY, ITEM, CLICKED)
CANDIDATE_SUFFIXES = (*TABULAR_SUFFIXES, ".txt")

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")
# Cells that spreadsheets, pandas and JSON writers leave for a missing value: never taken as text.
MISSING_TEXT = frozenset({"nan", "null", "none", "<na>", "n/a", "#n/a"})
MAX_WHOLE_NUMBER = 2**31 - 1  # a position or rank beyond this is a broken file, not a place in a list
# Never features to rank or blend by: the item's text and id, and the real clicks (the ground truth).
NOT_FEATURES = (ITEM, ITEM_ID, CLICKED)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
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


def _refuse_non_text(frame: pd.DataFrame, column: str, source: str) -> None:
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


def _require_text(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    """``column`` as text, every cell non-empty; NaN, null, None and other missing-value markers count as empty."""
    _refuse_non_text(frame, column, source)
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


def parse_labels(values: pd.Series, source: str, column: str = CLICKED) -> pd.Series:
    """0/1 labels from 0/1, true/false or yes/no (any case); numbers such as 1.0 from jsonl and parquet too."""
    text = values.astype(str).str.strip().str.lower().replace({"1.0": "1", "0.0": "0"})
    bad = values.isna() | ~text.isin(TRUE + FALSE)
    if bad.any():
        rows = bad_rows(bad)
        examples = ", ".join(repr(v) for v in values[bad].head(3).tolist())
        raise ContractError(
            source, f"column {column!r} must be 0 or 1 (true/false accepted); bad value(s) {examples} "
            f"at row(s) {describe_rows(rows)}", column=column, rows=rows,
        )  # fmt: skip
    return text.isin(TRUE).astype("int64")


def _whole_numbers(values: pd.Series, column: str, source: str, fix: str = "") -> pd.Series:
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


def validate_clicks(frame: pd.DataFrame, source: str = "click log") -> pd.DataFrame:
    """Check a click-log table and return it in canonical form (text columns, 0/1 labels, a group)."""
    refuse_repeated_columns(list(frame.columns), source)
    _require_columns(frame, REQUIRED_CLICK_COLUMNS, source)
    clicks = frame.copy()
    clicks[QUERY] = _require_text(clicks, QUERY, source)
    clicks[ITEM] = _require_text(clicks, ITEM, source)
    clicks[CLICKED] = parse_labels(clicks[CLICKED], source)
    clicks[GROUP] = _require_text(clicks, GROUP, source) if GROUP in clicks.columns else clicks[QUERY]
    if POSITION in clicks.columns:
        clicks[POSITION] = _whole_numbers(clicks[POSITION], POSITION, source)
    if ITEM_ID in clicks.columns:
        _refuse_non_text(clicks, ITEM_ID, source)
    return clicks.reset_index(drop=True)


def validate_pairs(frame: pd.DataFrame, source: str = "pairs") -> pd.DataFrame:
    """Check rows to be scored: ``query`` and ``item`` text in each, ``item_id`` text where given; other
    columns (a click log's labels, a caller's own) are kept as they are."""
    refuse_repeated_columns(list(frame.columns), source)
    _require_columns(frame, (QUERY, ITEM), source)
    pairs = frame.copy()
    pairs[QUERY] = _require_text(pairs, QUERY, source)
    pairs[ITEM] = _require_text(pairs, ITEM, source)
    if ITEM_ID in pairs.columns:
        _refuse_non_text(pairs, ITEM_ID, source)
    return pairs.reset_index(drop=True)


def read_clicks(path: str | Path) -> pd.DataFrame:
    """Read and validate a click log (.csv, .tsv, .jsonl, .parquet)."""
    return validate_clicks(read_table(path), source=str(path))


def require_ranked_groups(frame: pd.DataFrame, source: str) -> None:
    """Ranking metrics (model selection, evaluation) need a group with both a click and a non-click."""
    if not frame.groupby(GROUP, sort=False)[CLICKED].nunique().gt(1).any():
        raise ContractError(
            source,
            "no group holds both a click and a non-click, so the ranking metrics (AUC, nDCG) cannot be computed",
            "give a click log whose groups show clicked and unclicked items together, such as a held-out "
            "part of the training log",
            column=GROUP,
        )


# -- candidate lists -------------------------------------------------------------------------------------


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
        raise replace(err, problem=err.count("items"), fix="rank a shorter list") from err


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
    _require_columns(frame, (item_column,), source)
    if item_column != ITEM and ITEM in frame.columns:
        raise ContractError(
            source, f"the item text is to come from column {item_column!r}, but the list also has an {ITEM!r} column",
            f"choose the {ITEM!r} column, or rename one of the two (e.g. {ITEM!r} to 'original_item')",
            column=item_column,
        )  # fmt: skip
    candidates = frame.copy()
    candidates[item_column] = _require_text(candidates, item_column, source)
    if ITEM_ID in candidates.columns:
        _refuse_non_text(candidates, ITEM_ID, source)
    if item_column != ITEM:
        candidates = candidates.rename(columns={item_column: ITEM})
    if max_items is not None and len(candidates) > max_items:
        raise ContractError(
            source, f"{len(candidates)} items, more than the limit of {max_items}", "rank a shorter list"
        )
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
    (:func:`read_candidate_table`), ``max_text_chars`` to the items read (:func:`validate_candidates`)."""
    source = source or str(path)
    table = read_candidate_table(path, source, max_items=max_items, max_columns=max_columns)
    return validate_candidates(table, source, item_column, max_items=max_items, max_text_chars=max_text_chars)


# -- marked lists: feedback on a ranked list -------------------------------------------------------------


def validate_marks(table: pd.DataFrame, source: str = "the ranked list") -> pd.DataFrame:
    """A ranked list with a ``mark`` column as shown items: ``item``, ``item_id``, ``position`` (its rank), ``clicked``.

    At least one item must be marked; the unmarked ones are the non-clicks that training needs beside it.
    """
    if table is None or table.empty:
        raise ContractError(source, "no ranked items", "rank a list first; then mark the items you would click")
    _require_columns(table, (ITEM, RANK, MARK), source)
    marks = table[MARK].where(
        ~table[MARK].isna() & table[MARK].astype(str).str.strip().ne(""), False
    )  # blank: unticked
    clicked = parse_labels(marks.astype(str), source, MARK)
    if not clicked.any():
        raise ContractError(source, "no item is marked", f"mark the items you would click in the {MARK!r} column")
    position = _whole_numbers(table[RANK], RANK, source, "rank the list again")
    items = _require_text(table, ITEM, source)
    shown = pd.DataFrame({ITEM: items, POSITION: position, CLICKED: clicked})
    return shown.assign(**{ITEM_ID: fill_item_ids(table).to_numpy()}).reset_index(drop=True)


# -- item ids and feature columns ------------------------------------------------------------------------


def ground_truth(candidates: pd.DataFrame, source: str = "candidates") -> np.ndarray | None:
    """A candidate list's real clicks, its ``clicked`` column, as 0/1 (true/false, yes/no accepted); None without one.

    Every row needs a label: a list clicked in part cannot say how a ranking treats its clicks.
    """
    if CLICKED not in candidates.columns:
        return None
    try:
        return parse_labels(candidates[CLICKED], source).to_numpy()
    except ContractError as err:
        raise replace(
            err, fix="give each row's real click as 0 or 1, or rename the column if it is not the list's clicks"
        ) from err


def numeric_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = NOT_FEATURES) -> list[str]:
    """Columns not in ``exclude`` whose every value is a finite number (written as text or not): by default the
    columns that may be blended into a ranking, which never include the list's ground truth, ``clicked``."""
    found = []
    for column in frame.columns:
        if column in exclude:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if len(values) and values.notna().all() and np.isfinite(values.to_numpy(dtype=np.float64)).all():
            found.append(column)
    return found


def item_ids(items: pd.Series) -> pd.Series:
    """Stable ids for items without one: a short hash of the text, as the bundled data's ``item_id``."""
    return items.map(lambda text: hashlib.sha1(str(text).encode()).hexdigest()[:10])


def fill_item_ids(table: pd.DataFrame) -> pd.Series:
    """The table's ``item_id`` as text; rows without one (no column, or a gap) get the hash of their item."""
    hashed = item_ids(table[ITEM])
    if ITEM_ID not in table.columns:
        return hashed
    given = table[ITEM_ID]
    missing = given.isna() | given.astype(str).str.strip().eq("")
    return given.astype(str).where(~missing, hashed)
