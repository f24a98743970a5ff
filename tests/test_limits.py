"""The size and row limits of what a reader takes (recsys.data.limits)."""

from __future__ import annotations

import pickle

from recsys.data.limits import TooLarge


def test_the_limit_refusal_keeps_its_fields_through_pickle() -> None:
    error = TooLarge("items.csv", "p", "f", unit="columns", size=600_000, limit=67, exact=False)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.unit, copy.size, copy.limit, copy.exact, str(copy)) == ("columns", 600_000, 67, False, str(error))
