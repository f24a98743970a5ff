"""The one data contract: click logs and candidate lists.

A click log has one row per item shown::

    query    (required, text)  the context: a search query or a short text of the user's interests
    item     (required, text)  the item's text: title, description, tags
    clicked  (required)        0 or 1 (true/false accepted)
    group    (optional)        the rows shown together; where absent, rows with the same query
    item_id, position, timestamp (optional)

A candidate list has an ``item`` column and keeps every other column as it is.
Readers validate once and raise :class:`ContractError`, naming the file, the column,
the first bad rows and the fix. After that, code trusts the contract.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

QUERY = "query"
ITEM = "item"
CLICKED = "clicked"
GROUP = "group"
ITEM_ID = "item_id"
POSITION = "position"
TIMESTAMP = "timestamp"

REQUIRED_CLICK_COLUMNS = (QUERY, ITEM, CLICKED)
OPTIONAL_CLICK_COLUMNS = (GROUP, ITEM_ID, POSITION, TIMESTAMP)
TABULAR_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}
_MAX_ROWS_NAMED = 5


class ContractError(ValueError):
    """A file or table that breaks the click-log or candidate contract."""


def _row_numbers(mask: pd.Series) -> str:
    """The first bad data rows, numbered from 1 as a person counts them (header excluded)."""
    rows = [str(i + 1) for i, bad in enumerate(mask.to_numpy()) if bad]
    more = f" and {len(rows) - _MAX_ROWS_NAMED} more" if len(rows) > _MAX_ROWS_NAMED else ""
    return ", ".join(rows[:_MAX_ROWS_NAMED]) + more


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a .csv, .tsv, .jsonl or .parquet file as strings-and-numbers, never guessing encodings."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABULAR_SUFFIXES:
        raise ContractError(
            f"{path}: unknown extension {suffix or '(none)'!r}; save the file as one of {', '.join(TABULAR_SUFFIXES)}"
        )
    if not path.is_file():
        raise ContractError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ContractError(f"{path}: the file is empty; it needs a header row and at least one data row")
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, encoding="utf-8", dtype=False)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, encoding="utf-8", dtype=str, keep_default_na=False)
    except UnicodeDecodeError as err:
        raise ContractError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); re-save it as UTF-8") from err
    except (ValueError, pd.errors.ParserError, OSError) as err:
        raise ContractError(f"{path}: could not be read as {suffix[1:]}: {err}") from err
    if frame.empty:
        raise ContractError(f"{path}: the file has no data rows; add at least one row under the header")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}. Rename or add the column(s)."
        )


def _require_text(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = frame[column]
    blank = values.isna() | values.astype(str).str.strip().eq("")
    if blank.any():
        raise ContractError(
            f"{source}: column {column!r} is empty at row(s) {_row_numbers(blank)}; "
            f"every row needs non-empty {column} text"
        )
    return values.astype(str)


def _parse_labels(values: pd.Series, source: str) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    # Numbers such as 1.0 come from jsonl and parquet readers; keep them exact, never round.
    text = text.replace({"1.0": "1", "0.0": "0"})
    bad = values.isna() | ~text.isin(_TRUE | _FALSE)
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].head(3).tolist())
        raise ContractError(
            f"{source}: column {CLICKED!r} must be 0 or 1 (true/false accepted); "
            f"bad value(s) {examples} at row(s) {_row_numbers(bad)}"
        )
    return text.isin(_TRUE).astype("int64")


def validate_clicks(frame: pd.DataFrame, source: str = "click log") -> pd.DataFrame:
    """Check a click-log table and return it in canonical form (text columns, 0/1 labels, a group)."""
    _require_columns(frame, REQUIRED_CLICK_COLUMNS, source)
    clicks = frame.copy()
    clicks[QUERY] = _require_text(clicks, QUERY, source)
    clicks[ITEM] = _require_text(clicks, ITEM, source)
    clicks[CLICKED] = _parse_labels(clicks[CLICKED], source)
    if GROUP in clicks.columns:
        clicks[GROUP] = _require_text(clicks, GROUP, source)
    else:
        clicks[GROUP] = clicks[QUERY]
    if POSITION in clicks.columns:
        position = pd.to_numeric(clicks[POSITION], errors="coerce")
        bad = position.isna() | (position < 1) | (position % 1 != 0)
        if bad.any():
            raise ContractError(
                f"{source}: column {POSITION!r} must be a 1-based whole number at row(s) {_row_numbers(bad)}"
            )
        clicks[POSITION] = position.astype("int64")
    return clicks.reset_index(drop=True)


def read_clicks(path: str | Path) -> pd.DataFrame:
    """Read and validate a click log (.csv, .tsv, .jsonl, .parquet)."""
    return validate_clicks(read_table(path), source=str(path))


def validate_candidates(frame: pd.DataFrame, source: str = "candidates", item_column: str = ITEM) -> pd.DataFrame:
    """Check a candidate list; ``item_column`` names the text column, which becomes ``item``."""
    _require_columns(frame, (item_column,), source)
    candidates = frame.copy()
    candidates[item_column] = _require_text(candidates, item_column, source)
    if item_column != ITEM:
        candidates = candidates.rename(columns={item_column: ITEM})
    return candidates.reset_index(drop=True)


def read_candidates(path: str | Path, item_column: str = ITEM) -> pd.DataFrame:
    """Read a candidate list: a tabular file with an item column, or .txt with one item per line."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ContractError(f"{path}: not UTF-8 text; re-save it as UTF-8 with one item per line") from err
        items = [line.strip() for line in lines if line.strip()]
        if not items:
            raise ContractError(f"{path}: no items; write one item per line")
        return pd.DataFrame({ITEM: items})
    return validate_candidates(read_table(path), source=str(path), item_column=item_column)


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
