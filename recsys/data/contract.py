"""The one data contract: every input rule for click logs, candidate lists, rows to score and marked lists.

A click log has one row per item shown::

    query    (required, text)  the context: a search query or a short text of the user's interests
    item     (required, text)  the item's text: title, description, tags
    clicked  (required)        0 or 1 (true/false, yes/no accepted)
    group    (optional)        the rows shown together; where absent, rows with the same query
    item_id, position, timestamp (optional)

A candidate list has an ``item`` column (or a column the caller names) and keeps every other
column as it is; it comes from a file (.csv, .tsv, .jsonl, .parquet, or .txt with one item per
line) or from pasted lines, read by ``recsys.data.candidates``. A ``clicked`` column in a candidate list is its
ground truth: the real clicks on it (0/1), by which a ranking is judged (:func:`ground_truth`) and never ranked or
blended (:func:`numeric_columns` leaves it out). Rows to be scored in bulk (``python -m recsys.scoring.bulk``) need
``query`` and ``item`` and keep every other column. A marked list is a ranked list with a ``mark`` column of true/false:
the items a user would click, which the app stores as feedback.

Readers validate once and raise :class:`ContractError`, whose fields carry the source, the
column, the bad rows and the fix, so that callers never parse message text. After that, code
trusts the contract. Nothing is coerced silently: a column name given twice, a row with more
fields than the header, a list, object or true/false where text belongs, and a missing-value
marker (``NaN``, ``null``, ``None``, ...) in a text column are refused, not renamed, shifted or
turned into text; so are a Parquet file's dates, times, durations, decimals and bytes there. A UTF-8
byte-order mark is allowed; other encodings are refused, naming the first byte that is not UTF-8. What a cell
may hold is ``recsys.data.cells``' rule.

Size limits apply while a file is read, before it becomes a table (``recsys.data.tables``): a candidate
file read with ``max_items`` or ``max_columns`` is refused as soon as the reader sees more, so that a
small upload never makes a large table. A JSON line's integers must fit in 64 bits: quote a larger
one as a string.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.cells import refuse_non_text, require_columns, require_text, whole_numbers
from recsys.data.limits import bad_rows, describe_rows
from recsys.data.tables import read_table, refuse_repeated_columns
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
# What scoring adds: the final score that ranks, and the calibrated click probability. The probability has two
# public names: "probability" in a bulk-scored file and in Scorer.rank's records (beside "score"), and
# "click_probability" in a ranked table (recsys.scoring.ranking); the outputs keep both.
SCORE = "score"
PROBABILITY = "probability"
CLICK_PROBABILITY = "click_probability"
CORPUS_ID = "corpus_id"  # a ranked record's row in the items given, as sentence-transformers' CrossEncoder.rank says

REQUIRED_CLICK_COLUMNS = (QUERY, ITEM, CLICKED)

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")
# Never features to rank or blend by: the item's text and id, and the real clicks (the ground truth).
NOT_FEATURES = (ITEM, ITEM_ID, CLICKED)


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


def validate_clicks(frame: pd.DataFrame, source: str = "click log") -> pd.DataFrame:
    """Check a click-log table and return it in canonical form (text columns, 0/1 labels, a group)."""
    refuse_repeated_columns(list(frame.columns), source)
    require_columns(frame, REQUIRED_CLICK_COLUMNS, source)
    clicks = frame.copy()
    clicks[QUERY] = require_text(clicks, QUERY, source)
    clicks[ITEM] = require_text(clicks, ITEM, source)
    clicks[CLICKED] = parse_labels(clicks[CLICKED], source)
    clicks[GROUP] = require_text(clicks, GROUP, source) if GROUP in clicks.columns else clicks[QUERY]
    if POSITION in clicks.columns:
        clicks[POSITION] = whole_numbers(clicks[POSITION], POSITION, source)
    if ITEM_ID in clicks.columns:
        refuse_non_text(clicks, ITEM_ID, source)
    return clicks.reset_index(drop=True)


def validate_pairs(frame: pd.DataFrame, source: str = "pairs") -> pd.DataFrame:
    """Check rows to be scored: ``query`` and ``item`` text in each, ``item_id`` text where given; other
    columns (a click log's labels, a caller's own) are kept as they are."""
    refuse_repeated_columns(list(frame.columns), source)
    require_columns(frame, (QUERY, ITEM), source)
    pairs = frame.copy()
    pairs[QUERY] = require_text(pairs, QUERY, source)
    pairs[ITEM] = require_text(pairs, ITEM, source)
    if ITEM_ID in pairs.columns:
        refuse_non_text(pairs, ITEM_ID, source)
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


# -- marked lists: feedback on a ranked list -------------------------------------------------------------


def validate_marks(table: pd.DataFrame, source: str = "the ranked list") -> pd.DataFrame:
    """A ranked list with a ``mark`` column as shown items: ``item``, ``item_id``, ``position`` (its rank), ``clicked``.

    At least one item must be marked; the unmarked ones are the non-clicks that training needs beside it.
    """
    if table is None or table.empty:
        raise ContractError(source, "no ranked items", "rank a list first; then mark the items you would click")
    require_columns(table, (ITEM, RANK, MARK), source)
    marks = table[MARK].where(
        ~table[MARK].isna() & table[MARK].astype(str).str.strip().ne(""), False
    )  # blank: unticked
    clicked = parse_labels(marks.astype(str), source, MARK)
    if not clicked.any():
        raise ContractError(source, "no item is marked", f"mark the items you would click in the {MARK!r} column")
    position = whole_numbers(table[RANK], RANK, source, "rank the list again")
    items = require_text(table, ITEM, source)
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
