"""A list as the server ranked and showed it to one session (:class:`RankedList`), and, for a list that interleaves two
models, which model contributed each item (:class:`Interleaving`). Feedback refers to such a list: its marks are
checked against what was shown before ``recsys.feedback.store`` stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from recsys.data.contract import CLICKED, ITEM, ITEM_ID, MARK, POSITION, RANK, validate_marks
from recsys.errors import UserError
from recsys.feedback.interleave import CHALLENGER, CHAMPION, SHARED, Shown, credit


@dataclass(frozen=True)
class Interleaving:
    """Which model contributed each item of an interleaved list, and the challenger's version (the list's
    ``model_version`` is the champion's)."""

    challenger: str
    teams: tuple[str, ...]  # per item in displayed order: CHAMPION, CHALLENGER or SHARED

    def shown(self, marked: pd.DataFrame) -> list[Shown]:
        """The list's items with their teams, by position: ``marked`` must hold positions 1 to n of these n teams."""
        unknown = sorted(set(self.teams) - {CHAMPION, CHALLENGER, SHARED})
        if unknown:
            raise ValueError(f"unknown team(s) {unknown}: an item's team is {CHAMPION}, {CHALLENGER} or {SHARED}")
        ordered = marked.sort_values(POSITION, kind="stable")
        if ordered[POSITION].tolist() != list(range(1, len(self.teams) + 1)):
            raise ValueError(f"an interleaved list of {len(self.teams)} teams needs its items at positions 1 to that")
        return [Shown(item, self.teams[p - 1], p) for item, p in ordered[[ITEM, POSITION]].itertuples(index=False)]

    def outcome(self, marked: pd.DataFrame) -> str:
        """Whom the marks credit (``recsys.feedback.interleave.credit``): CHAMPION, CHALLENGER or TIE."""
        return credit(self.shown(marked), marked.loc[marked[CLICKED] == 1, POSITION].astype(int).tolist())


@dataclass(frozen=True)
class RankedList:
    """A list as the server ranked and showed it to one session: what feedback on it may refer to.

    Kept server-side (the app's per-session state), so that a client can only tick or untick the
    items it was shown: the items, their ids and positions come from here, never from the request.
    """

    list_id: str
    context: str
    items: tuple[str, ...]
    item_ids: tuple[str, ...]
    version: str = ""  # the model that ranked it; of an interleaved list, the champion
    interleaving: Interleaving | None = None  # where two models' rankings were interleaved into it

    def marked(self, marks: Sequence[object] | None) -> pd.DataFrame:
        """The shown items with ``marks``: one per item, in ranked order (true: the user would click it), read as the
        contract reads a ranked list's ``mark`` column (:func:`~recsys.data.contract.validate_marks`).

        Refused where the marks are not one per item of this list: the items, their ids and positions come from
        here, never from the request.
        """
        if not isinstance(marks, list | tuple) or len(marks) != len(self.items):
            raise UserError(
                f"The marks do not match the {len(self.items)} items this list was ranked with: rank again, then send "
                "one mark (true or false) per item, in ranked order"
            )
        table = {MARK: list(marks), RANK: range(1, len(self.items) + 1), ITEM: self.items, ITEM_ID: self.item_ids}
        return validate_marks(pd.DataFrame(table))
