"""Position bias estimated from randomised traffic: swap interventions, and the propensity curve they give.

For a random share of lists, two positions of the ranking are exchanged before it is shown: ``k`` and ``k + 1``
(``design="adjacent"``, as RandPair with neighbours) or ``1`` and ``k`` (``design="top"``, Joachims et al.'s swap
with the top). Because the lists to swap are drawn at random, the items the ranker put at ``k`` are, on average,
equally relevant in swapped and unswapped lists; only the position they are shown at differs. So the ratio of their
click rates at the two positions estimates the ratio of the propensities, ``p(k + 1) / p(k)`` (or ``p(k) / p(1)``).
Both halves of each swap are used (the items ranked at ``k`` shown lower, and the items ranked at ``k + 1`` shown
higher), in one Mantel–Haenszel risk ratio over strata of (ranked position, item key), so that each item is compared
with itself where the key recurs (``item=None`` pools the items of a ranked position, relying on the randomisation
alone). Adjacent ratios are multiplied into the curve from ``p(1) = 1``: their errors add up with depth.
:func:`fit_power_law` summarises the ratios as one ``eta`` (weighted least squares of the log ratios), which also
covers positions deeper than the swaps reached.

Assumptions: the position-based model holds (examination depends on the position alone, and clicking on what is
seen, not on the position); lists are chosen for a swap at random, independently of their users and items; one
pair is swapped per list; and unswapped lists are shown exactly as ranked.

:func:`assign_swaps` draws the interventions for a ranked log (random draws come from the caller's
``numpy.random.Generator``); the curve is written and read as
``recsys.feedback.propensity`` writes and reads any curve.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data.contract import CLICKED, GROUP, POSITION, parse_labels
from recsys.errors import ContractError, UserError
from recsys.feedback.propensity import PROPENSITY

logger = logging.getLogger(__name__)

SWAP = "swap"  # a list's swap intervention: 0 where shown as ranked; else the pair it exchanged (see DESIGNS)
REFERENCE = "reference"  # the position each ratio compares with: k - 1 (adjacent swaps) or 1 (swaps with the top)
RATIO = "ratio"  # p(position) / p(reference)
DESIGNS = ("adjacent", "top")  # adjacent: the marker k exchanged k and k + 1; top: it exchanged 1 and k
Design = Literal["adjacent", "top"]


def assign_swaps(
    log: pd.DataFrame,
    share: float,
    rng: np.random.Generator,
    design: Design = "adjacent",
    *,
    depth: int | None = None,
    group: str = GROUP,
) -> pd.DataFrame:
    """A ranked log (``position`` is the ranker's, 1 to n in each list) as shown with swap interventions: a
    seeded ``share`` of the lists of two items or more, each with one pair exchanged, drawn uniformly among its
    pairs within the top ``depth`` positions (adjacent: ``k`` and ``k + 1``, ``k < depth``; top: ``1`` and ``k``,
    ``k <= depth``; None: the whole list). Adds :data:`SWAP`: the pair's ``k`` on each row of a swapped list, else 0.
    """
    if design not in DESIGNS:
        raise UserError(f"the swap design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if not 0 <= share <= 1:
        raise UserError(f"the share of lists to swap must be between 0 and 1, got {share}")
    if depth is not None and depth < 2:
        raise UserError(f"swaps need a depth of 2 positions or more, got {depth}")
    lengths = log.groupby(group, sort=False)[POSITION].size()
    reach = lengths if depth is None else lengths.clip(upper=depth)
    names = reach.index[reach >= 2].to_numpy()
    chosen = rng.permutation(names)[: round(share * len(names))]
    low = 1 if design == "adjacent" else 2  # the smallest marker; the largest is reach - 1 (adjacent) or reach
    top = {name: int(reach[name]) - (design == "adjacent") for name in chosen}
    pairs = pd.Series({name: int(rng.integers(low, top[name] + 1)) for name in chosen}, dtype="int64")
    shown = log.copy()
    shown[SWAP] = shown[group].map(pairs).fillna(0).astype(np.int64)
    shown[POSITION] = _exchanged(shown[POSITION], shown[SWAP], design)
    return shown


def _exchanged(position: pd.Series, marker: pd.Series, design: str) -> pd.Series:
    """Each row's position after its list's swap, or before it: the exchange is its own inverse."""
    first, second = (marker, marker + 1) if design == "adjacent" else (1, marker)
    swapped = marker > 0
    moved = np.where(position == first, second, np.where(position == second, first, position))
    return pd.Series(np.where(swapped, moved, position), index=position.index).astype(np.int64)


def _check_swap_log(log: pd.DataFrame, item: str | None, group: str, design: str, source: str) -> pd.DataFrame:
    if design not in DESIGNS:
        raise UserError(f"the swap design must be one of {', '.join(DESIGNS)}, got {design!r}")
    needed = [group, POSITION, CLICKED, SWAP, *([item] if item else [])]
    missing = tuple(c for c in needed if c not in log.columns)
    if missing:
        raise ContractError(
            source, f"missing column(s) {', '.join(missing)} for estimating propensities from swaps",
            f"give each row its list ({group}), the {POSITION} it was shown at, {CLICKED}, and its list's {SWAP} "
            "(0: shown as ranked; k: the pair exchanged)", missing=missing,
        )  # fmt: skip
    frame = log[needed].copy()
    frame[CLICKED] = parse_labels(frame[CLICKED], source)
    for column in (POSITION, SWAP):
        values = pd.to_numeric(frame[column], errors="coerce")
        least = 1 if column == POSITION else 0
        bad = values.isna() | (values < least) | (values % 1 != 0)
        if bad.any():
            rows = tuple(int(r) + 1 for r in np.flatnonzero(bad.to_numpy())[:10])
            raise ContractError(
                source, f"column {column!r} must hold whole numbers from {least}", "fix those rows",
                column=column, rows=rows,
            )  # fmt: skip
        frame[column] = values.astype(np.int64)
    lists = frame.groupby(group, sort=False)
    if (lists[SWAP].nunique() > 1).any():
        raise ContractError(source, f"a list's rows disagree on its {SWAP}", "give every row of a list the same one")
    if frame.duplicated([group, POSITION]).any():
        raise ContractError(
            source, "a list shows two rows at one position", f"give each row of a list its own {POSITION}"
        )
    marker, deepest = lists[SWAP].first(), lists[POSITION].max()
    paired = marker + 1 if design == "adjacent" else marker
    broken = marker[(marker > 0) & ((paired > deepest) | (paired < 2))]
    if len(broken):
        raise ContractError(
            source, f"{len(broken)} list(s) (e.g. {broken.index[0]!r}) mark a swap of positions they do not show",
            f"{SWAP} k exchanges positions k and k + 1 (adjacent) or 1 and k (top, k from 2)", column=SWAP,
        )  # fmt: skip
    return frame


def _risk_ratio(rows: pd.DataFrame, deeper: int, strata: list[str]) -> dict[str, float]:
    """Mantel–Haenszel risk ratio of a click shown at ``deeper`` against shown at the other position, over strata,
    with the Greenland–Robins standard error of its log; and the counts behind it."""
    exposed = rows[POSITION] == deeper
    keys = [rows[s] for s in strata]
    at = rows[exposed].groupby([k[exposed] for k in keys])[CLICKED].agg(["sum", "size"])
    away = rows[~exposed].groupby([k[~exposed] for k in keys])[CLICKED].agg(["sum", "size"])
    table = at.join(away, how="inner", lsuffix="_at", rsuffix="_away")  # a stratum seen at one position says nothing
    a, n1 = table["sum_at"].to_numpy(float), table["size_at"].to_numpy(float)
    b, n0 = table["sum_away"].to_numpy(float), table["size_away"].to_numpy(float)
    counts = {
        "clicks_at_position": int(a.sum()), "views_at_position": int(n1.sum()),
        "clicks_at_reference": int(b.sum()), "views_at_reference": int(n0.sum()), "strata": len(table),
    }  # fmt: skip
    n = n1 + n0
    numerator, denominator = (a * n0 / n).sum(), (b * n1 / n).sum()
    if numerator == 0 or denominator == 0:
        return counts | {RATIO: math.nan, "log_ratio_se": math.nan}
    variance = ((n1 * n0 * (a + b) - a * b * n) / n**2).sum() / (numerator * denominator)
    return counts | {RATIO: numerator / denominator, "log_ratio_se": math.sqrt(max(variance, 0.0))}


def estimate_from_swaps(
    log: pd.DataFrame,
    *,
    item: str | None,
    design: Design = "adjacent",
    group: str = GROUP,
    max_position: int | None = None,
    source: str = "the swap log",
) -> pd.DataFrame:
    """The propensity curve estimated from swap interventions, with its counts (module docstring).

    ``log`` has a row per item shown: its list (``group``), the ``position`` it was shown at, ``clicked``, the
    item key ``item`` (None: no key, items of a ranked position pooled) and :data:`SWAP`, the same on every row of a
    list: 0 for lists shown as ranked; ``k`` where positions ``k`` and ``k + 1`` (``design="adjacent"``) or 1 and
    ``k`` (``"top"``) were exchanged.

    One row per position from 1: ``propensity``; the ``ratio`` p(position) / p(``reference``) it rests on and
    its log's standard error; ``swapped_lists``; the clicks and views of the compared rows shown at the position
    and at the reference; and ``strata``, the (ranked position, item) pairs seen at both. The curve stops before
    the first position whose ratio has no clicks to rest on (logged), or at ``max_position``.
    """
    frame = _check_swap_log(log, item, group, design, source)
    frame["ranked"] = _exchanged(frame[POSITION], frame[SWAP], design)  # where the ranker put it
    marker = frame[SWAP]
    controls = frame[marker == 0]
    swapped_lists = frame.groupby(group, sort=False)[SWAP].first().value_counts()
    deepest = int(marker.max()) if len(marker) else 0
    deepest = deepest + 1 if design == "adjacent" else deepest
    if max_position is not None:
        deepest = min(deepest, max_position)
    strata = ["ranked", *([item] if item else [])]
    counts = ("clicks_at_position", "views_at_position", "clicks_at_reference", "views_at_reference", "strata")
    top = {POSITION: 1, PROPENSITY: 1.0, REFERENCE: None, RATIO: 1.0, "log_ratio_se": 0.0, "swapped_lists": 0}
    rows = [top | dict.fromkeys(counts, 0)]  # p(1) = 1 by convention, not estimated
    for position in range(2, deepest + 1):
        k = position - 1 if design == "adjacent" else position  # the marker of the swap that moves this position
        reference = position - 1 if design == "adjacent" else 1
        pair = (reference, position)
        compared = pd.concat(
            [controls[controls["ranked"].isin(pair)], frame[(marker == k) & frame["ranked"].isin(pair)]]
        )
        estimate = _risk_ratio(compared, position, strata)
        if not math.isfinite(estimate[RATIO]):
            logger.warning(
                "%s: no clicks to compare positions %d and %d (%d swapped lists): the curve stops at position %d",
                source, reference, position, swapped_lists.get(k, 0), position - 1,
            )  # fmt: skip
            break
        earlier = rows[-1][PROPENSITY] if design == "adjacent" else 1.0
        rows.append(
            {POSITION: position, PROPENSITY: earlier * estimate[RATIO], REFERENCE: reference,
             "swapped_lists": int(swapped_lists.get(k, 0)), **estimate}
        )  # fmt: skip
    columns = [POSITION, PROPENSITY, REFERENCE, RATIO, "log_ratio_se", "swapped_lists", *counts]
    return pd.DataFrame(rows)[columns].astype({REFERENCE: "Int64"})


def fit_power_law(estimate: pd.DataFrame) -> float:
    """The ``eta`` of ``p(k) = 1 / k**eta`` that fits an estimate's ratios best: weighted least squares of
    ``log ratio = -eta · (log position - log reference)``, each ratio weighted by the inverse of its log's variance."""
    ratios = estimate.dropna(subset=[REFERENCE, RATIO, "log_ratio_se"])
    ratios = ratios[ratios["log_ratio_se"] > 0]
    if ratios.empty:
        raise UserError("no estimated ratio to fit a power law to; swap more lists")
    x = np.log(ratios[POSITION].to_numpy(float)) - np.log(ratios[REFERENCE].to_numpy(float))
    y = -np.log(ratios[RATIO].to_numpy(float))
    w = 1.0 / ratios["log_ratio_se"].to_numpy(float) ** 2
    return max(0.0, float((w * x * y).sum() / (w * x * x).sum()))
