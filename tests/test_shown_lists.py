"""The lists the app shows and the marks saved on them (recsys.serving.shown_lists)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import ITEM, ITEM_ID, MARK, RANK
from recsys.errors import ContractError, UserError
from recsys.feedback.ranked_lists import RankedList
from recsys.feedback.store import FeedbackStore
from recsys.serving.service import InputError
from recsys.serving.shown_lists import ranked_list, save_marks


def ranked_table(marks: list[bool]) -> pd.DataFrame:
    """A ranked list as the Rank tab shows it: the mark column first, ranks from 1."""
    n = len(marks)
    return pd.DataFrame(
        {
            MARK: marks,
            RANK: list(range(1, n + 1)),
            ITEM_ID: [f"id{i}" for i in range(n)],
            ITEM: [f"item {i}" for i in range(n)],
            "score": np.linspace(1, 0, n),
        }
    )


def shown(n: int, context: str = "nba playoffs") -> RankedList:
    """The server's record of a list of ``n`` items ranked for ``context`` by model v1, as the Rank handler keeps it."""
    return ranked_list(context, ranked_table([False] * n), "v1")


def test_save_marks_stores_the_list_and_saving_it_again_replaces_its_marks(tmp_path: Path) -> None:
    store, ranked = FeedbackStore(tmp_path), shown(3)
    assert save_marks(store, [True, False, True], ranked) == ranked.list_id
    rows = store.read()
    assert rows[[ITEM, ITEM_ID, "position", "clicked"]].values.tolist() == [
        ["item 0", "id0", 1, 1],
        ["item 1", "id1", 2, 0],
        ["item 2", "id2", 3, 1],
    ]
    assert set(rows["context"]) == {"nba playoffs"} and set(rows["model_version"]) == {"v1"}
    save_marks(store, [False, True, False], ranked)
    assert store.summary() == {"lists": 1, "rows": 3, "clicks": 1}
    assert store.read()["clicked"].tolist() == [0, 1, 0]


def test_save_marks_needs_the_list_this_session_ranked(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    with pytest.raises(InputError, match="Rank a list first"):
        save_marks(store, [True], None)  # a forged call without a ranking
    for marks in ([True] * 4, [True, False], [], None, "true", {"0": True}):  # more, fewer, none, no list of marks
        with pytest.raises(UserError, match="marks do not match the 3 items this list was ranked with: rank again"):
            save_marks(store, marks, shown(3))
    assert store.summary()["rows"] == 0


def test_save_marks_refuses_a_list_without_marks(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    with pytest.raises(ContractError, match="the ranked list: no item is marked; mark the items you would click"):
        save_marks(store, [False, False], shown(2))
    with pytest.raises(ContractError, match=r"column 'mark' must be 0 or 1 .*'maybe'") as err:
        save_marks(store, [True, "maybe", False], shown(3))
    assert err.value.column == MARK
    assert store.summary()["rows"] == 0
