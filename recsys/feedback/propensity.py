"""Examination propensities by position, and the inverse propensity weights that correct clicks for them.

A click on a ranked list needs two things: the user looked at the item, and found it relevant. Under the
position-based model, ``P(click at position k) = p(k) · P(relevant)``, where ``p(k)`` is the chance that a user
examines position ``k`` whatever is shown there. Clicks therefore over-state the items shown near the top. Weighting
each click by ``1 / p(k)`` (inverse propensity scoring, IPS) makes a loss over clicks an unbiased estimate of the
loss over relevant items (Joachims, Swaminathan & Schnabel, 2017, "Unbiased Learning-to-Rank with Biased Feedback").
Propensities here are relative: ``p(1) = 1`` by convention, and ``p(k)`` is how much less often position ``k`` is
examined than the top one.

Where the propensities come from:

- :func:`from_click_model`: simulated data. A position-based click model's examination is the propensity
  (``recsys.feedback.interleave.PositionBasedClicks``: ``1 / k**eta``; :func:`power_law` is the same curve). A cascade's
  examination depends on the clicks above a position, not on the position alone, so it has no curve here.
- ``recsys.feedback.swaps.estimate_from_swaps``: randomised traffic (swap interventions), which that module
  describes with its assumptions.
- :func:`read_propensities`: a file of position → propensity that the estimator wrote (:func:`write_propensities`),
  or any CSV/JSON of that form.

:func:`ips_weights` turns propensities into the weights a training loss uses: ``1 / p(position)`` for a click,
clipped at ``clip`` (10 by default: a click at a position examined a tenth as often as the top, or less, counts ten
times), and 1 for a row that is not a click. Clipping trades a little bias for much less variance on deep clicks.

Plain numpy and pandas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.data.contract import POSITION
from recsys.errors import ContractError, UserError

if TYPE_CHECKING:
    from recsys.feedback.interleave import PositionBasedClicks

PROPENSITY = "propensity"
CLIP = 10.0  # the largest weight a click gets


# -- curves ------------------------------------------------------------------------------------------------


def _positions(positions: Sequence[int] | np.ndarray, source: str = "positions") -> np.ndarray:
    array = np.asarray(positions)
    numeric = np.issubdtype(array.dtype, np.number)
    if array.size and (not numeric or (array < 1).any() or (array % 1 != 0).any()):
        raise UserError(f"{source} must be whole numbers from 1 (the top of the list)")
    return array.astype(np.int64)


def power_law(eta: float, positions: Sequence[int] | np.ndarray) -> np.ndarray:
    """``1 / position**eta`` for each position: the position-based click model's examination, with ``p(1) = 1``."""
    if not (eta >= 0 and math.isfinite(eta)):
        raise UserError(f"a propensity power law's eta must be 0 or more, got {eta}")
    return 1.0 / _positions(positions).astype(np.float64) ** eta


def from_click_model(model: PositionBasedClicks, positions: Sequence[int] | np.ndarray) -> np.ndarray:
    """The propensity of each position under a click model that simulated the data: its examination probability.

    ``from_click_model(PositionBasedClicks(eta=1.0), range(1, 11))`` is ``1, 1/2, ..., 1/10``. A model whose
    examination is not a function of the position alone (the cascade) is refused.
    """
    positions = _positions(positions)
    if not hasattr(model, "examination"):
        raise UserError(
            f"the {getattr(model, 'name', type(model).__name__)} click model's chance of looking at a position "
            "depends on the clicks above it, not on the position alone, so it has no propensity per position; "
            "use the position-based click model"
        )
    if not positions.size:
        return np.zeros(0)
    seen = np.asarray(model.examination(int(positions.max())), dtype=np.float64)
    return seen[positions - 1] / seen[0]  # relative to the top, which a position-based model always examines


def check_curve(propensities: Sequence[float] | np.ndarray, source: str) -> np.ndarray:
    """A propensity curve ``p(1), p(2), ...`` as an array, refused unless every value is a finite number above 0
    and ``p(1)`` is 1."""
    curve = np.asarray(propensities, dtype=np.float64)
    if curve.ndim != 1 or not curve.size:
        raise UserError(f"{source}: no propensities; give one per position from 1")
    bad = np.flatnonzero(~np.isfinite(curve) | (curve <= 0))
    if bad.size:
        at = ", ".join(str(k + 1) for k in bad[:5])
        raise UserError(f"{source}: the propensity at position(s) {at} is not a number above 0")
    if not math.isclose(curve[0], 1.0, rel_tol=1e-6):
        raise UserError(
            f"{source}: propensities are relative to the top position, so p(1) must be 1, not {curve[0]:g}; "
            "divide each by p(1)"
        )
    return curve


def ips_weights(
    positions: Sequence[int] | np.ndarray,
    propensities: Sequence[float] | np.ndarray,
    clip: float = CLIP,
    *,
    clicked: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Each click's inverse propensity weight: ``min(1 / p(position), clip)``, with ``propensities[k - 1] = p(k)``.

    With ``clicked``, rows that are not clicks weigh 1 (only clicks carry position bias to undo). A position
    beyond the curve is refused rather than guessed.
    """
    if not clip > 0:
        raise UserError(f"the weights' clip must be above 0, got {clip}")
    positions = _positions(positions)
    curve = np.asarray(propensities, dtype=np.float64)
    if positions.size and positions.max() > len(curve):
        raise UserError(
            f"position {positions.max()} is deeper than the propensities, which stop at position {len(curve)}; "
            "give propensities for every position shown"
        )
    weights = np.minimum(1.0 / curve[positions - 1], clip)
    if clicked is not None:
        weights = np.where(np.asarray(clicked).astype(bool), weights, 1.0)
    return weights


# -- files -------------------------------------------------------------------------------------------------


def write_propensities(curve: pd.DataFrame, path: str | Path) -> None:
    """A curve (``position``, ``propensity``, any counts) as CSV, or JSON records where ``path`` ends in .json."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        records = json.loads(curve.to_json(orient="records"))
        path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    else:
        curve.to_csv(path, index=False)


def read_propensities(path: str | Path) -> np.ndarray:
    """The curve ``p(1), p(2), ...`` from a CSV (columns ``position`` and ``propensity``; others ignored) or a JSON
    file (such records, or an object of position → propensity). Positions must run 1, 2, ... without a gap."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise UserError(f"{source}: no such propensity file; give a CSV or JSON of position -> propensity")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = [{POSITION: key, PROPENSITY: value} for key, value in data.items()]
            frame = pd.DataFrame(data)
        else:
            frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{source}: not a CSV or JSON file of position -> propensity ({err})") from err
    missing = tuple(c for c in (POSITION, PROPENSITY) if c not in frame.columns)
    if missing:
        raise ContractError(
            source, f"missing column(s) {', '.join(missing)}", "give a position and a propensity per row",
            missing=missing,
        )  # fmt: skip
    positions = pd.to_numeric(frame[POSITION], errors="coerce")
    if positions.isna().any() or list(positions) != list(range(1, len(frame) + 1)):
        raise ContractError(
            source, "positions must run 1, 2, 3, ... in order, without a gap", "give one row per position from 1",
            column=POSITION,
        )  # fmt: skip
    return check_curve(pd.to_numeric(frame[PROPENSITY], errors="coerce").to_numpy(np.float64), source)
