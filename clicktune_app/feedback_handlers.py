"""The handlers of the marks users save (the Rank tab's **Save feedback**) and of the Feedback tab: the stored
counts, the latest rows and their export where the operator allows browsing, and the champion against the challenger
on the interleaved lists."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from clicktune_app.display import count, short
from clicktune_app.handler_base import HandlerBase, user_errors
from recsys.feedback.ranked_lists import RankedList
from recsys.serving.service import InputError
from recsys.serving.shown_lists import save_marks

# The Comparison panel's rows (FEEDBACK_BROWSING only): one per interleaved list, with the marks each model earned.
COMPARISON_COLUMNS = [
    "created_at",
    "context",
    "items",
    "champion_clicks",
    "challenger_clicks",
    "shared_clicks",
    "outcome",
]
RECENT_COLUMNS = ["created_at", "position", "item", "clicked", "context", "model_version"]


class FeedbackHandlers(HandlerBase):
    """The handlers of saved marks and of the Feedback tab."""

    @user_errors
    def feedback(self, marks: Sequence[object] | None, ranked: RankedList | None) -> tuple[str, RankedList | None]:
        """Save ``marks`` (one per item, in ranked order) on the list this session ranked (``ranked``, kept on the
        server); again: replace them.

        The list is stored with its context and the model that ranked it, whatever the app serves now; an interleaved
        list with each item's team and the outcome its marks give."""
        list_id = save_marks(self.store, marks, ranked)
        saved, totals = self.store.summary(list_id), self.store.summary()
        interleaving = ranked.interleaving
        by = (
            f"model `{ranked.version}`"
            if interleaving is None
            else "an interleaved list of the champion and the challenger"
        )
        status = (
            f"Saved {saved['clicks']} of {saved['rows']} items as clicked ({by}). "
            f"The store holds {count(totals['clicks'], 'click')} on {count(totals['lists'], 'list')}."
        )
        return status, ranked

    def comparison(self) -> tuple[str, pd.DataFrame]:
        """The served champion against the challenger on the interleaved lists users marked (this pair of versions
        only): wins, losses and ties, and the sign test in words; each list too where the operator allows browsing."""
        models = self.models
        empty = pd.DataFrame(columns=COMPARISON_COLUMNS)
        if models.challenger is None:
            return "This app serves no challenger (CHALLENGER_DIR), so there is nothing to compare.", empty
        champion, challenger = models.version, models.challenger.version
        result = self.store.comparison(champion, challenger)
        pair = f"Champion `{champion}` against challenger `{challenger}`"
        if not result.lists:
            text = (
                f"{pair}: no interleaved list has marks yet. Turn on **Interleave champion and challenger** in the "
                "Rank tab, rank a list, tick what you would click and save."
            )
        else:
            sentence = result.sentence()
            text = (
                f"{pair}, on {count(result.lists, 'interleaved list')} with marks: **{result.wins}** won by the "
                f"challenger, **{result.losses}** by the champion, **{count(result.ties, 'tie')}**. "
                f"{sentence[0].upper()}{sentence[1:]}."
            )
        if not self.feedback_browsing:
            return text + " Browsing the lists is off on this server.", empty
        rows = self.store.interleaved_lists(champion, challenger)
        return text, rows.assign(context=rows["context"].map(short))[COMPARISON_COLUMNS]

    def feedback_overview(self) -> tuple[str, pd.DataFrame]:
        """The counts of stored feedback; the latest rows too where the operator allows browsing."""
        totals = self.store.summary()
        text = (
            f"**{count(totals['clicks'], 'click')}** on **{count(totals['lists'], 'list')}** "
            f"({count(totals['rows'], 'item')} shown)."
        )
        if not self.feedback_browsing:
            return text + " Browsing stored feedback is off on this server.", pd.DataFrame(columns=RECENT_COLUMNS)
        stored = self.store.read()
        recent = stored.sort_values(["created_at", "list_id", "position"], ascending=[False, True, True]).head(200)
        recent = recent.assign(context=recent["context"].map(short))
        return text, recent[RECENT_COLUMNS].reset_index(drop=True)

    @user_errors
    def export_feedback(self) -> str:
        """The stored feedback as a click log for people to download; only where the operator allows browsing."""
        if not self.feedback_browsing:
            raise InputError("Exporting feedback is off on this server; its operator can export it with the CLI.")
        return str(self.downloads.write_csv(self.store.click_log(), "feedback-clicks.csv"))
