"""The Classify tab's and the Compare tab's handlers: one item's click probability at the model's threshold, and a list
ranked by the zero-shot base model beside the served model."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from clicktune_app.display import DISPLAY_DECIMALS, POPULARITY_SHOWN, arrow, outcomes, shown
from clicktune_app.handler_base import HandlerBase, user_errors
from recsys.data.contract import CLICKED, ITEM, RANK, SCORE
from recsys.defaults import how_to_train
from recsys.scoring.ranking import MATCH, POPULARITY, compare_rankings, rank_candidates
from recsys.serving.inputs import check_text, read_candidate_input
from recsys.serving.service import InputError


class ClassifyCompareHandlers(HandlerBase):
    """The Classify and Compare tabs' handlers."""

    @user_errors
    def classify(self, context: str, item: str) -> tuple[float, str]:
        """Click probability of one item, and 'clicked' or 'not clicked' at the model's threshold."""
        models = self.serving()
        context, item = check_text(context, "context", self.limits), check_text(item, "item", self.limits)
        probability = float(models.scorer.predict_proba([(context, item)])[0])
        label = "clicked" if probability >= models.metadata.threshold else "not clicked"
        return round(probability, DISPLAY_DECIMALS), label

    @user_errors
    def compare(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
        """The list ranked by the zero-shot base model and by the served model, each item's rank change beside,
        the real clicks ticked, and a line on how each model ranks them where the list carries them."""
        models = self.serving()
        if models.base is None:
            raise InputError(
                "Compare needs a fine-tuned model and its base; this app serves a zero-shot model. " + how_to_train()
            )
        context = check_text(context, "context", self.limits)
        candidates, _ = read_candidate_input(file, pasted, item_column, self.limits)
        progress(0.1, desc="zero-shot base model")
        base = rank_candidates(models.base, context, candidates)
        progress(0.55, desc="fine-tuned model")
        tuned = compare_rankings(base, rank_candidates(models.scorer, context, candidates))
        truth = [CLICKED] if CLICKED in candidates.columns else []
        base_view = shown(base[[RANK, ITEM, *truth, MATCH, SCORE]], mark=False).drop(columns=POPULARITY_SHOWN)
        changes = tuned["rank_change"].map(arrow).rename("change")
        parts = [c for c in (MATCH, POPULARITY) if c in tuned.columns]
        tuned_view = shown(pd.concat([tuned[[RANK, ITEM, *truth, *parts, SCORE]], changes], axis=1), mark=False)
        outcome = outcomes({"zero-shot": base, "fine-tuned": tuned}, candidates)
        return base_view, tuned_view, outcome
