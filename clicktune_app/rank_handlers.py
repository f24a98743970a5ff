"""The Rank tab's handlers: rank an uploaded or pasted list (interleaved with the challenger where asked), or the
served catalog, for a context. Each ranking is one plain method that raises the library's user errors; the API
shows them as ``gr.Error``, the page as a message beside the inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from clicktune_app.display import RANK_HEADERS, outcomes, shown
from clicktune_app.handler_base import HandlerBase, user_errors
from recsys.data.contract import CLICK_PROBABILITY, ITEM, RANK, SCORE
from recsys.errors import UserError
from recsys.feedback.ranked_lists import Interleaving, RankedList
from recsys.scoring.ranking import (
    MATCH,
    MODEL_SCORE,
    POPULARITY,
    PRIOR,
    TEXT_SCORE,
    VIEWS,
    rank_candidates,
)
from recsys.serving.inputs import blend_weights, check_text, check_top_k, inspect_candidate_file, read_candidate_input
from recsys.serving.service import InputError, ServedModels, rank_catalog
from recsys.serving.shown_lists import interleave, new_list_id, ranked_list

WEIGHT_COLUMNS = ["feature", "weight"]
# What an interleaved list leaves out: each model's scores, whose order would tell which model placed an item where.
TEAM_REVEALING = (SCORE, CLICK_PROBABILITY, MODEL_SCORE, MATCH, POPULARITY, TEXT_SCORE, PRIOR, VIEWS)
Ranking = tuple[pd.DataFrame, str, str, RankedList]  # the table, its CSV, the status line, the list as shown
PageRanking = tuple[pd.DataFrame, str | None, str, RankedList | None, str]  # and the message beside the inputs


class RankHandlers(HandlerBase):
    """The Rank tab's handlers."""

    @user_errors
    def inspect_upload(self, file: str | None) -> tuple[dict, pd.DataFrame]:
        """On upload: offer the file's text columns for the item text and its numeric columns for blending."""
        if file is None:
            return gr.update(choices=[ITEM], value=ITEM), pd.DataFrame(columns=WEIGHT_COLUMNS)
        text, value, numeric = inspect_candidate_file(Path(file), self.limits)
        weights = pd.DataFrame({"feature": numeric, "weight": [0.0] * len(numeric)}, columns=WEIGHT_COLUMNS)
        return gr.update(choices=text, value=value), weights

    @user_errors
    def rank(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        weights: pd.DataFrame | None,
        top_k: float | None,
        match_only: bool = False,
        interleaved: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for a progress bar)
    ) -> Ranking:
        """Rank the candidates (:meth:`ranking`), for scripts: a user error is a ``gr.Error``."""
        return self.ranking(context, file, pasted, item_column, weights, top_k, match_only, interleaved, progress)

    def rank_in_page(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        weights: pd.DataFrame | None,
        top_k: float | None,
        match_only: bool = False,
        interleaved: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> PageRanking:
        """:meth:`ranking` for the page: a user error becomes a message beside the inputs (see :meth:`_in_page`)."""
        arguments = (context, file, pasted, item_column, weights, top_k, match_only, interleaved, progress)
        return self._in_page(self.ranking, *arguments)

    def ranking(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        weights: pd.DataFrame | None,
        top_k: float | None,
        match_only: bool = False,
        interleaved: bool = False,
        progress: Callable[..., Any] = lambda *args, **kwargs: None,
    ) -> Ranking:
        """Rank the candidates: the table (with an unticked mark column), its CSV, a status line (with how the
        ranking treats the list's real clicks, where it carries them), and the list as shown, which stays on the
        server for the feedback on it. ``match_only`` ranks by the match to the context alone. ``interleaved``
        ranks with the champion and the challenger and shows their team-draft interleaving, blind (no scores)."""
        models = self.serving()
        if interleaved and models.challenger is None:
            raise InputError(
                "This app serves no challenger to interleave with; its operator sets CHALLENGER_DIR to a second "
                "model folder. Rank without interleaving."
            )
        context = check_text(context, "context", self.limits)
        candidates, source = read_candidate_input(file, pasted, item_column, self.limits)
        blend = blend_weights(weights)
        k = check_top_k(top_k, self.limits)  # an empty box shows every item
        progress(0, desc="scoring")
        report = lambda done, total, what: progress((done, total), desc=what, unit="items")  # noqa: E731
        how = {"weights": blend, "progress": report, "match_only": bool(match_only)}
        whole = rank_candidates(models.scorer, context, candidates, **how)
        blended = ", ".join(f"{c} × {w:g}" for c, w in blend.items())
        described = (
            f"{len(candidates)} items from {source}"
            + (" by their match to the context alone" if match_only else "")
            + (f", blended with {blended}" if blend else "")
        )
        if interleaved:
            progress(0, desc="scoring with the challenger")
            rival = rank_candidates(models.challenger.scorer, context, candidates, **how)
            return self._interleave(models, context, candidates, whole, rival, k, described)
        ranked = whole.head(k) if k is not None else whole
        status = f"Ranked {described}; showing the top {len(ranked)}."
        by = "match alone" if match_only else "this model"
        outcome = outcomes({by: whole}, candidates)
        return self._shown(models, context, ranked, f"{outcome}\n\n{status}" if outcome else status)

    def _interleave(
        self,
        models: ServedModels,
        context: str,
        candidates: pd.DataFrame,
        champion: pd.DataFrame,
        challenger: pd.DataFrame,
        k: int | None,
        described: str,
    ) -> Ranking:
        """The champion's and the challenger's rankings of ``candidates`` interleaved (team draft, seeded by the new
        list's id) and shown blind: the items with their own columns, without either model's scores."""
        list_id = new_list_id()
        drafted = interleave(list_id, champion.index, challenger.index, k)
        ranked = champion.loc[[s.item for s in drafted]].drop(columns=list(TEAM_REVEALING), errors="ignore")
        ranked[RANK] = range(1, len(ranked) + 1)
        teams = Interleaving(models.challenger.version, tuple(s.team for s in drafted))
        status = (
            f"Ranked {described}, with the champion and with the challenger, and interleaved the two rankings; "
            f"showing {len(ranked)}. Blind: nothing on the page says which model put an item where, so the table "
            "shows no scores."
        )
        outcome = outcomes({"champion": champion, "challenger": challenger}, candidates)
        return self._shown(models, context, ranked, f"{outcome}\n\n{status}" if outcome else status, teams, list_id)

    @user_errors
    def rank_catalog(self, context: str, top_k: float | None) -> Ranking:
        """:meth:`catalog_ranking` for scripts: a user error is a ``gr.Error``."""
        return self.catalog_ranking(context, top_k)

    def rank_catalog_in_page(self, context: str, top_k: float | None) -> PageRanking:
        """:meth:`catalog_ranking` for the page, as :meth:`rank_in_page` is :meth:`ranking`'s."""
        return self._in_page(self.catalog_ranking, context, top_k)

    def catalog_ranking(self, context: str, top_k: float | None) -> Ranking:
        """Rank the whole catalog the app serves (CATALOG_DIR) for the context; returns what :meth:`ranking` does."""
        models = self.serving()
        context = check_text(context, "context", self.limits)
        ranked = rank_catalog(models, context, check_top_k(top_k, self.limits), self.limits)
        catalog = models.catalog
        status = f"Ranked the catalog's {len(catalog):,} items ({catalog.info.kind} search)"
        status += f"; showing the top {len(ranked)}."
        return self._shown(models, context, ranked, status)

    def _shown(
        self,
        models: ServedModels,
        context: str,
        ranked: pd.DataFrame,
        status: str,
        interleaving: Interleaving | None = None,
        list_id: str | None = None,
    ) -> Ranking:
        """A ranking as the page shows it: the table (with an unticked mark column), its CSV, the status line, and
        the list as shown (with the model that ranked it, or the teams of an interleaved list), which stays on the
        server for the feedback on it."""
        download = self.downloads.write_csv(ranked, "ranked.csv")
        if interleaving is None:
            status += f" Model: `{models.version}`."
            table = shown(ranked)
        else:
            status += f" Models: champion `{models.version}`, challenger `{interleaving.challenger}`."
            table = shown(ranked.assign(**{SCORE: np.nan, CLICK_PROBABILITY: np.nan}))  # the page's columns, left blank
        status += " Tick the items you would click in the **mark** column, then press **Save feedback**."
        return table, str(download), status, ranked_list(context, ranked, models.version, interleaving, list_id)

    @staticmethod
    def _in_page(ranking: Callable[..., Ranking], *args: Any) -> PageRanking:
        """A ranking for the page: a user error becomes a message beside the inputs, and the previous result is
        cleared rather than left standing as if it answered the new input (scripts' calls still raise)."""
        try:
            return (*ranking(*args), "")
        except UserError as err:
            cleared = pd.DataFrame(columns=RANK_HEADERS)
            return cleared, None, "", None, f"⚠️ **Cannot rank that.** {err}"
