"""The lists a session was shown, kept server-side until their marks are saved: a ranked list (interleaved with the
challenger's where one is served, with each item's team) and the marks stored on it as feedback.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from recsys.data.contract import ITEM, ITEM_ID
from recsys.feedback.interleave import Shown, team_draft
from recsys.feedback.ranked_lists import Interleaving, RankedList
from recsys.feedback.store import FeedbackStore
from recsys.serving.service import InputError


def new_list_id() -> str:
    return uuid.uuid4().hex


def ranked_list(
    context: str,
    ranked: pd.DataFrame,
    version: str = "",
    interleaving: Interleaving | None = None,
    list_id: str | None = None,
) -> RankedList:
    """What this session was shown (ranked by ``version``; interleaved, with each item's team), to keep server-side
    until it saves its marks."""
    items, ids = tuple(ranked[ITEM].astype(str)), tuple(ranked[ITEM_ID].astype(str))
    return RankedList(list_id or new_list_id(), context, items, ids, version, interleaving)


def interleave(
    list_id: str, champion: Sequence[Hashable], challenger: Sequence[Hashable], k: int | None
) -> list[Shown]:
    """Team-draft interleaving of two rankings (item keys, best first) into ``k`` items (None: every item once),
    its coin flips seeded by the list's id (hexadecimal), so that a list can be drawn again exactly."""
    return team_draft(list(champion), list(challenger), np.random.default_rng(int(list_id, 16)), k)


def save_marks(store: FeedbackStore, marks: Sequence[object] | None, ranked: RankedList | None) -> str:
    """Store ``marks`` (one per item, in ranked order) on the list this session ranked (``ranked``), with the context
    it was ranked for and the model that ranked it; returns the list's id.

    Saving a list again replaces its marks; marks that are not one per item of that list are refused. An interleaved
    list is stored with each item's team and the outcome its marks give, in the same transaction.
    """
    if ranked is None:
        raise InputError("Rank a list first; then tick the items you would click and save.")
    marked, interleaving = ranked.marked(marks), ranked.interleaving
    return store.record(ranked.context, marked, ranked.version, list_id=ranked.list_id, interleaving=interleaving)
