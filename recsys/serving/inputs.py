"""What a request may bring, checked before anything is scored: a context or item text, top k, an upload (its size,
its columns, its items) or pasted lines, and a table of feature weights. Each refusal is an
:class:`~recsys.serving.service.InputError` or a :class:`~recsys.errors.ContractError` that says what to change.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Number
from pathlib import Path

import pandas as pd

from recsys.data.candidates import pasted_candidates, read_candidate_table, read_candidates, validate_candidates
from recsys.data.contract import CLICKED, ITEM, numeric_columns
from recsys.data.limits import ROWS, TooLarge
from recsys.errors import ContractError
from recsys.serving.service import OWN_COLUMNS, InputError, check_extra_columns, too_many_columns
from recsys.serving.settings import Limits

DROP_COLUMNS = "Drop the columns you don't need and upload it again."  # how to fix an upload with too many columns


def check_text(text: str | None, what: str, limits: Limits) -> str:
    """A context or an item, stripped; refused where empty or longer than the limit."""
    text = (text or "").strip()
    if not text:
        raise InputError(f"Enter the {what}.")
    if len(text) > limits.max_text_chars:
        raise InputError(
            f"The {what} has {len(text)} characters, more than the limit of {limits.max_text_chars} "
            "(MAX_TEXT_CHARS); shorten it."
        )
    return text


def check_top_k(top_k: float | None, limits: Limits) -> int | None:
    """How many ranked items to show; None (an empty box) shows every item of a list."""
    if top_k is None:
        return None
    if int(top_k) < 1:
        raise InputError("Top k must be 1 or more.")
    if int(top_k) > limits.max_items:
        raise InputError(f"Top k is at most {limits.max_items} (MAX_ITEMS); ask for fewer.")
    return int(top_k)


def check_upload(path: Path, limits: Limits) -> None:
    if not path.is_file():
        raise InputError(f"{path.name}: the upload did not arrive; upload it again.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > limits.max_upload_mb:
        raise InputError(
            f"{path.name} is {size_mb:.2f} MB, more than the limit of {limits.max_upload_mb:g} MB "
            "(MAX_UPLOAD_MB); upload a shorter list."
        )


def read_candidate_input(
    file: str | Path | None, pasted: str | None, item_column: str | None, limits: Limits
) -> tuple[pd.DataFrame, str]:
    """The candidate list from an uploaded file or pasted lines (exactly one), checked, and where it came from.

    A file is read within :func:`upload_limits`: reading stops at the first item or column past them. Its columns
    are then held to what a ranked table keeps (:func:`~recsys.serving.service.check_extra_columns`).
    """
    path, pasted = (Path(file) if file else None), (pasted or "").strip()
    if path is not None and pasted:
        raise InputError("Give the items either as a file or pasted, not both: clear one of them.")
    if path is None and not pasted:
        raise InputError("No items: upload a file (.csv, .tsv, .jsonl, .parquet, .txt) or paste items, one per line.")
    sizes = {"max_items": limits.max_items, "max_text_chars": limits.max_text_chars}
    if path is None:
        source = "the pasted list"
        return validate_candidates(pasted_candidates(pasted, source), source, **sizes), source
    check_upload(path, limits)
    column = (item_column or "").strip() or ITEM
    try:
        candidates = read_candidates(
            path, column, source=path.name, max_text_chars=limits.max_text_chars, **upload_limits(limits)
        )
    except TooLarge as err:
        if err.unit == ROWS:
            raise
        raise _too_wide(err, path.name, limits) from err
    except ContractError as err:
        if err.missing != (column,):
            raise
        raise replace(err, fix=f"{err.fix}, or choose the column that holds the item text") from err
    check_extra_columns(candidates.columns, path.name, limits, DROP_COLUMNS)
    return candidates, path.name


def inspect_candidate_file(path: Path, limits: Limits) -> tuple[list[str], str | None, list[str]]:
    """An uploaded file's columns that may hold the item text, the one to preselect, and its numeric columns.

    The file is read within the same :func:`upload_limits` as for ranking, so that a file too large to rank is
    refused on upload, having cost no more than one that ranks.
    """
    check_upload(path, limits)
    try:
        table = read_candidate_table(path, path.name, **upload_limits(limits))
    except TooLarge as err:
        if err.unit == ROWS:
            raise
        raise _too_wide(err, path.name, limits) from err
    columns = [str(c) for c in table.columns]
    numeric = numeric_columns(table)
    text = [c for c in columns if c not in numeric and c != CLICKED] or columns  # the ground truth is no item text
    return text, ITEM if ITEM in columns else None, numeric


def upload_limits(limits: Limits) -> dict[str, int]:
    """What an uploaded candidate file is read within: ``max_items`` rows, and the columns of a ranked table
    (:data:`~recsys.serving.service.OWN_COLUMNS` and ``max_extra_columns`` more);
    :func:`~recsys.data.candidates.read_candidate_table`'s keywords."""
    return {"max_items": limits.max_items, "max_columns": len(OWN_COLUMNS) + limits.max_extra_columns}


def _too_wide(err: TooLarge, name: str, limits: Limits) -> InputError:
    """A file with more columns than :func:`upload_limits`, refused as after reading: at least so many besides
    the own columns, since the reader does not say which of those the file has."""
    return too_many_columns(name, err.size - len(OWN_COLUMNS), limits, DROP_COLUMNS, exact=False)


def blend_weights(table: pd.DataFrame | None) -> dict[str, float]:
    """Feature weights from a (feature, weight) table; blank rows and zero weights are left out.

    A feature is named once; a cell that holds a list or an object (as a script may send), or a weight that is not
    a number, is refused. What range a weight may take is the ranking's rule
    (:func:`~recsys.scoring.ranking.check_weights`), checked once when the list is ranked.
    """
    weights: dict[str, float] = {}
    if table is None or table.empty:
        return weights
    if table.shape[1] < 2:
        raise InputError("The weights table needs two columns, feature and weight; add the weight column.")
    named: set[str] = set()
    for feature, weight in table.iloc[:, :2].itertuples(index=False):
        if not (_is_scalar(feature) and _is_scalar(weight)):
            raise InputError(
                f"The weights table has a list or an object in the row ({feature!r:.60}, {weight!r:.60}); "
                "give each row a feature name and one number."
            )
        # A blank cell arrives as None, "" or (from Gradio's frame) NaN.
        feature = "" if pd.isna(feature) else str(feature).strip()
        if not feature or pd.isna(weight) or str(weight).strip() == "":
            continue
        if feature in named:
            raise InputError(f"The weights table names {feature!r} more than once; give each feature one weight.")
        named.add(feature)
        try:
            value = float(weight)
        except ValueError:
            raise InputError(f"The weight of {feature!r} is {weight!r}; give a number such as 0.5 or -1") from None
        if value:
            weights[feature] = value
    return weights


def _is_scalar(cell: object) -> bool:
    return cell is None or isinstance(cell, str | Number)
