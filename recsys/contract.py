"""The one data contract: every input rule for click logs, candidate lists and marked lists.

A click log has one row per item shown::

    query    (required, text)  the context: a search query or a short text of the user's interests
    item     (required, text)  the item's text: title, description, tags
    clicked  (required)        0 or 1 (true/false, yes/no accepted)
    group    (optional)        the rows shown together; where absent, rows with the same query
    item_id, position, timestamp (optional)

A candidate list has an ``item`` column (or a column the caller names) and keeps every other
column as it is; it comes from a file (.csv, .tsv, .jsonl, .parquet, or .txt with one item per
line) or from pasted lines. A marked list is a ranked list with a ``mark`` column of true/false:
the items a user would click, which the app stores as feedback.

Readers validate once and raise :class:`ContractError`, whose fields carry the source, the
column, the bad rows and the fix, so that callers never parse message text. After that, code
trusts the contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import UserError

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
TABULAR_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
CANDIDATE_SUFFIXES = (*TABULAR_SUFFIXES, ".txt")
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")  # read as UTF-8 text; a NUL byte means a binary file

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")
_MAX_ROWS_NAMED = 5
_SNIFF_BYTES = 8192


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


def bad_rows(mask: pd.Series | np.ndarray) -> tuple[int, ...]:
    """The data rows where ``mask`` is true, numbered from 1 as a person counts them (header excluded)."""
    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask, dtype=bool)))


def describe_rows(rows: Sequence[int]) -> str:
    more = f" and {len(rows) - _MAX_ROWS_NAMED} more" if len(rows) > _MAX_ROWS_NAMED else ""
    return ", ".join(map(str, rows[:_MAX_ROWS_NAMED])) + more


def _refuse_binary(path: Path, source: str) -> None:
    if path.suffix.lower() in TEXT_SUFFIXES:
        with path.open("rb") as handle:
            if b"\x00" in handle.read(_SNIFF_BYTES):
                raise ContractError(source, "this looks like a binary file", "give UTF-8 text (CSV, TSV, JSONL, TXT)")


def read_table(path: str | Path, source: str | None = None) -> pd.DataFrame:
    """Read a .csv, .tsv, .jsonl or .parquet file as strings-and-numbers, never guessing encodings.

    ``source`` names the file in errors (default: its path; the app passes an upload's own name).
    """
    path = Path(path)
    source = source or str(path)
    suffix = path.suffix.lower()
    if suffix not in TABULAR_SUFFIXES:
        raise ContractError(
            source,
            f"unknown extension {suffix or '(none)'!r}",
            f"save the file as one of {', '.join(TABULAR_SUFFIXES)}",
        )
    if not path.is_file():
        raise ContractError(source, "no such file")
    if path.stat().st_size == 0:
        raise ContractError(source, "the file is empty", "it needs a header row and at least one data row")
    _refuse_binary(path, source)
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, encoding="utf-8", dtype=False)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, encoding="utf-8", dtype=str, keep_default_na=False)
    except UnicodeDecodeError as err:
        raise ContractError(
            source, f"not UTF-8 text ({err.reason} at byte {err.start})", "re-save it as UTF-8"
        ) from err
    except (ValueError, pd.errors.ParserError, OSError) as err:
        raise ContractError(source, f"could not be read as {suffix[1:]}: {err}") from err
    if frame.empty:
        raise ContractError(source, "the file has no data rows", "add at least one row under the header")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = tuple(c for c in columns if c not in frame.columns)
    if missing:
        raise ContractError(
            source,
            f"missing required column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}",
            "rename or add the column(s)",
            missing=missing,
        )


def _require_text(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = frame[column]
    blank = values.isna() | values.astype(str).str.strip().eq("")
    if blank.any():
        rows = bad_rows(blank)
        raise ContractError(
            source, f"column {column!r} is empty at row(s) {describe_rows(rows)}",
            f"every row needs non-empty {column} text", column=column, rows=rows,
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
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers < 1) | (numbers % 1 != 0) | ~np.isfinite(numbers.astype(np.float64))
    if bad.any():
        rows = bad_rows(bad)
        raise ContractError(
            source, f"column {column!r} must be a 1-based whole number at row(s) {describe_rows(rows)}", fix,
            column=column, rows=rows,
        )  # fmt: skip
    return numbers.astype("int64")


def validate_clicks(frame: pd.DataFrame, source: str = "click log") -> pd.DataFrame:
    """Check a click-log table and return it in canonical form (text columns, 0/1 labels, a group)."""
    _require_columns(frame, REQUIRED_CLICK_COLUMNS, source)
    clicks = frame.copy()
    clicks[QUERY] = _require_text(clicks, QUERY, source)
    clicks[ITEM] = _require_text(clicks, ITEM, source)
    clicks[CLICKED] = parse_labels(clicks[CLICKED], source)
    clicks[GROUP] = _require_text(clicks, GROUP, source) if GROUP in clicks.columns else clicks[QUERY]
    if POSITION in clicks.columns:
        clicks[POSITION] = _whole_numbers(clicks[POSITION], POSITION, source)
    return clicks.reset_index(drop=True)


def read_clicks(path: str | Path) -> pd.DataFrame:
    """Read and validate a click log (.csv, .tsv, .jsonl, .parquet)."""
    return validate_clicks(read_table(path), source=str(path))


# -- candidate lists -------------------------------------------------------------------------------------


def read_candidate_table(path: str | Path, source: str | None = None) -> pd.DataFrame:
    """The table in a candidate file before its item column is checked; a .txt file gives an ``item`` column."""
    path = Path(path)
    source = source or str(path)
    suffix = path.suffix.lower()
    if suffix not in CANDIDATE_SUFFIXES:
        raise ContractError(
            source, f"unknown file type {suffix or '(none)'!r}", f"give one of {', '.join(CANDIDATE_SUFFIXES)}"
        )
    if suffix != ".txt":
        return read_table(path, source)
    if not path.is_file():
        raise ContractError(source, "no such file")
    _refuse_binary(path, source)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ContractError(source, "not UTF-8 text", "re-save it as UTF-8 with one item per line") from err
    return pasted_candidates("\n".join(lines), source)


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
    _require_columns(frame, (item_column,), source)
    candidates = frame.copy()
    candidates[item_column] = _require_text(candidates, item_column, source)
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
    path: str | Path, item_column: str = ITEM, source: str | None = None, **limits: int | None
) -> pd.DataFrame:
    """Read and check a candidate file; ``limits``: :func:`validate_candidates`' ``max_items``, ``max_text_chars``."""
    source = source or str(path)
    return validate_candidates(read_candidate_table(path, source), source, item_column, **limits)


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


def numeric_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = (ITEM, ITEM_ID)) -> list[str]:
    """Columns not in ``exclude`` whose every value is a finite number (written as text or not)."""
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
