"""Interleaved comparison of two rankers: team-draft lists, click credit, the sign test and simulated users.

Team-draft interleaving (Radlinski, Kurup & Joachims, 2008) shows one list made of two rankings: in each round
the team with fewer picks (a coin flip when even) adds its highest-ranked item not yet shown. A click credits the
team that contributed the item; the team with more credited clicks wins that list. Over many lists, a two-sided
sign test on wins against losses (ties left out) says whether the challenger beats the champion.

Where both rankings open with the same items, those items are shown first and credited to neither team
(``SHARED``), as team-draft multileaving does (Schuth et al., 2014): without it, two identical rankers would
split clicks on the same items by coin flip and "win" lists from each other. ``shared_prefix=False`` gives the
2008 algorithm as published.

The click models (``CascadeClicks``, ``PositionBasedClicks``) stand in for users when replaying a click log: the
log's ``clicked`` label is an item's relevance. Everything here is plain numpy and seeded by the caller's
``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from recsys.errors import UserError

CHAMPION = "champion"  # the ranker now served
CHALLENGER = "challenger"  # the ranker that would replace it
SHARED = "shared"  # an item of the rankings' common prefix: no team's
TIE = "tie"
NONE = "none"  # no winner at the test's alpha
ALPHA = 0.05  # the sign test's significance level

Team = Literal["champion", "challenger", "shared"]
Outcome = Literal["champion", "challenger", "tie"]
Winner = Literal["champion", "challenger", "none"]


# -- team-draft interleaving -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One item of an interleaved list: the team that contributed it and its place, from 1."""

    item: Hashable
    team: Team
    position: int


def team_draft(
    champion: Sequence[Hashable],
    challenger: Sequence[Hashable],
    rng: np.random.Generator,
    k: int | None = None,
    *,
    shared_prefix: bool = True,
) -> list[Shown]:
    """Interleave two rankings (item keys, best first) into one list of ``k`` items (default: every distinct item).

    When one ranking has no unshown item left, the other goes on picking, so that with ``k=None`` each item of
    the union is shown once.
    """
    for name, ranking in ((CHAMPION, champion), (CHALLENGER, challenger)):
        if len(set(ranking)) != len(ranking):
            raise UserError(f"the {name}'s ranking lists an item twice; give each item once")
    if k is not None and k < 0:
        raise UserError(f"k must be at least 0, not {k}")
    union = dict.fromkeys([*champion, *challenger])
    length = len(union) if k is None else min(k, len(union))
    shown: list[Shown] = []
    seen: set[Hashable] = set()

    def add(item: Hashable, team: Team) -> None:
        shown.append(Shown(item, team, len(shown) + 1))
        seen.add(item)

    if shared_prefix:
        for mine, theirs in zip(champion, challenger, strict=False):
            if mine != theirs or len(shown) == length:
                break
            add(mine, SHARED)
    rankings = {CHAMPION: champion, CHALLENGER: challenger}
    cursors = {CHAMPION: 0, CHALLENGER: 0}
    picks = {CHAMPION: 0, CHALLENGER: 0}

    def next_item(team: str) -> Hashable | None:
        ranking = rankings[team]
        while cursors[team] < len(ranking) and ranking[cursors[team]] in seen:
            cursors[team] += 1
        return ranking[cursors[team]] if cursors[team] < len(ranking) else None

    while len(shown) < length:
        if picks[CHAMPION] != picks[CHALLENGER]:
            team = CHAMPION if picks[CHAMPION] < picks[CHALLENGER] else CHALLENGER
        else:
            team = CHAMPION if rng.random() < 0.5 else CHALLENGER
        item = next_item(team)
        if item is None:  # this team's ranking is spent: the other one fills the list
            team = CHALLENGER if team == CHAMPION else CHAMPION
            item = next_item(team)
        add(item, team)
        picks[team] += 1
    return shown


def credit(shown: Sequence[Shown], clicked_positions: Iterable[int]) -> Outcome:
    """The list's outcome from its clicked positions (from 1): the team with more credited clicks, else a tie."""
    counts = {CHAMPION: 0, CHALLENGER: 0, SHARED: 0}
    for position in clicked_positions:
        if not 1 <= position <= len(shown):
            raise UserError(f"clicked position {position} is not in the list of {len(shown)} items (1 to {len(shown)})")
        counts[shown[position - 1].team] += 1
    if counts[CHALLENGER] == counts[CHAMPION]:
        return TIE
    return CHALLENGER if counts[CHALLENGER] > counts[CHAMPION] else CHAMPION


# -- the sign test ---------------------------------------------------------------------------------------


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of ``wins`` against ``losses`` under even odds; 1 with nothing decided."""
    decided = wins + losses
    tail, term = 0, 1  # sum of C(decided, i) for i up to the rarer count; C(decided, i), exact integers
    for i in range(min(wins, losses) + 1):
        tail += term
        term = term * (decided - i) // (i + 1)
    return min(1.0, 2 * tail / 2**decided)


def winner_of(wins: int, losses: int, alpha: float = ALPHA) -> Winner:
    if sign_test(wins, losses) > alpha:
        return NONE
    return CHALLENGER if wins > losses else CHAMPION


@dataclass(frozen=True)
class Comparison:
    """Interleaved lists counted for the challenger: won, lost and tied, with the sign test's verdict."""

    wins: int
    losses: int
    ties: int
    alpha: float = ALPHA

    @classmethod
    def of(cls, outcomes: Iterable[Outcome], alpha: float = ALPHA) -> Comparison:
        outcomes = list(outcomes)
        return cls(outcomes.count(CHALLENGER), outcomes.count(CHAMPION), outcomes.count(TIE), alpha)

    @property
    def lists(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def p_value(self) -> float:
        return sign_test(self.wins, self.losses)

    @property
    def winner(self) -> Winner:
        return winner_of(self.wins, self.losses, self.alpha)

    def sentence(self) -> str:
        """E.g. "the challenger won 41 of 60 decided lists (19 lost, 5 ties), p = 0.006: the challenger is better
        at alpha 0.05"."""
        p = "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"
        ties = f"{self.ties} tie" + ("" if self.ties == 1 else "s")
        decided = self.wins + self.losses
        counts = f"the challenger won {self.wins} of {decided} decided lists ({self.losses} lost, {ties})"
        verdict = "no winner" if self.winner == NONE else f"the {self.winner} is better"
        return f"{counts}, {p}: {verdict} at alpha {self.alpha:g}"


def critical_counts(max_decided: int, alpha: float = ALPHA) -> list[int]:
    """For each number of decided lists ``d`` from 0 to ``max_decided``, the largest count of the rarer outcome at
    which the sign test rejects at ``alpha`` (-1 where none does).

    The same exact test as :func:`sign_test`, for every ``d`` in one pass: the count only grows with ``d``, and the
    binomial tail steps from ``d`` to ``d + 1`` in a few integer operations, where summing it afresh for each
    session of a long replay would take minutes.
    """
    level = Fraction(alpha)
    m, tail, term = 0, 1, 1  # the next count to try; sum of C(d, i) for i <= m; C(d, m); at d = 0
    counts = []
    for d in range(max_decided + 1):
        if d > 0:  # from d - 1 to d at the same m: Pascal's rule
            tail, term = 2 * tail - term, term * d // (d - m)
        while m < d and 2 * tail * level.denominator <= level.numerator * 2**d:
            m += 1
            term = term * (d - m + 1) // m
            tail += term
        counts.append(m - 1)
    return counts


def sessions_to_decision(outcomes: Sequence[Outcome], alpha: float = ALPHA) -> int | None:
    """The first number of lists after which the sign test named the final winner and kept naming it; None where
    the final verdict is no winner."""
    final = Comparison.of(outcomes, alpha).winner
    if final == NONE:
        return None
    counts = critical_counts(len(outcomes), alpha)
    wins = losses = 0
    decided_since = None
    for n, outcome in enumerate(outcomes, start=1):
        wins += outcome == CHALLENGER
        losses += outcome == CHAMPION
        leader = CHALLENGER if wins > losses else CHAMPION
        holds = min(wins, losses) <= counts[wins + losses] and leader == final
        decided_since = (decided_since or n) if holds else None
    return decided_since


# -- simulated users -------------------------------------------------------------------------------------


class ClickModel(Protocol):
    name: ClassVar[str]

    def simulate(self, relevance: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def describe(self) -> str: ...

    def parameters(self) -> dict[str, Any]: ...


def _check_probabilities(model: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(model, name)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"the {model.name} click model's {name} must be a probability (0 to 1), not {value}")


def _click_chances(model: Any, relevance: np.ndarray) -> np.ndarray:
    relevant = np.asarray(relevance).astype(bool)
    return np.where(relevant, model.p_click_relevant, model.p_click_irrelevant)


@dataclass(frozen=True)
class CascadeClicks:
    """A user who reads top-down, may click each item, and may stop after a click (a cascade with several clicks)."""

    p_click_relevant: float = 0.9
    p_click_irrelevant: float = 0.05
    p_stop: float = 0.5  # after a click
    name: ClassVar[str] = "cascade"

    def __post_init__(self) -> None:
        _check_probabilities(self, ("p_click_relevant", "p_click_irrelevant", "p_stop"))

    def simulate(self, relevance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clicks (bool) per position of a list whose items have this relevance (true: relevant)."""
        clicks = rng.random(len(relevance)) < _click_chances(self, relevance)
        stops = clicks & (rng.random(len(relevance)) < self.p_stop)
        if stops.any():
            clicks[int(np.argmax(stops)) + 1 :] = False  # the user left after that click
        return clicks

    def describe(self) -> str:
        return (
            f"cascade: the user reads top-down, clicks a relevant item with probability {self.p_click_relevant:g} "
            f"and an irrelevant one with {self.p_click_irrelevant:g}, and leaves after a click with probability "
            f"{self.p_stop:g}"
        )

    def parameters(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}


@dataclass(frozen=True)
class PositionBasedClicks:
    """A user who looks at rank r with probability 1 / r**eta and clicks what they see as its relevance says."""

    p_click_relevant: float = 0.9
    p_click_irrelevant: float = 0.05
    eta: float = 1.0  # how fast attention falls with rank; 0: every rank is seen
    name: ClassVar[str] = "position"

    def __post_init__(self) -> None:
        _check_probabilities(self, ("p_click_relevant", "p_click_irrelevant"))
        if not self.eta >= 0:
            raise UserError(f"the position click model's eta must be 0 or more, not {self.eta}")

    def examination(self, length: int) -> np.ndarray:
        """The probability that the user looks at each rank of a list this long."""
        return 1.0 / np.arange(1, length + 1, dtype=float) ** self.eta

    def simulate(self, relevance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clicks (bool) per position of a list whose items have this relevance (true: relevant)."""
        seen = rng.random(len(relevance)) < self.examination(len(relevance))
        return seen & (rng.random(len(relevance)) < _click_chances(self, relevance))

    def describe(self) -> str:
        return (
            f"position-based: the user looks at rank r with probability 1/r^{self.eta:g}, and clicks a relevant item "
            f"seen with probability {self.p_click_relevant:g} and an irrelevant one with {self.p_click_irrelevant:g}"
        )

    def parameters(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}


CLICK_MODELS: dict[str, type[CascadeClicks] | type[PositionBasedClicks]] = {
    CascadeClicks.name: CascadeClicks,
    PositionBasedClicks.name: PositionBasedClicks,
}
