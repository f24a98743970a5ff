"""The app's event handlers: thin Gradio-side calls into ``recsys.serving.service``, as plain methods so that
tests can call them without a browser. The library's user errors become ``gr.Error``; anything
else is a bug and stays one.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from gradio.components.dataframe import DataframeData
from matplotlib.figure import Figure
from pydantic import ConfigDict, ValidationError

from recsys.data.contract import CLICK_PROBABILITY, CLICKED, ITEM, ITEM_ID, MARK, RANK, SCORE, ground_truth
from recsys.defaults import BUNDLED_LOGS, CURVE_CHART, CURVE_FILE, BundledLog, how_to_train
from recsys.errors import ContractError, UserError
from recsys.evaluation.evaluator import Evaluation, format_table
from recsys.evaluation.metrics import list_outcome
from recsys.evaluation.plots import reliability_curve, score_distribution
from recsys.evaluation.verdict import curve_sentence, judge, label
from recsys.feedback.ranked_lists import Interleaving, RankedList
from recsys.feedback.store import FeedbackStore
from recsys.publish.card import build_model_card, describe_threshold
from recsys.scoring.ranking import (
    CLASH_PREFIX,
    MATCH,
    MODEL_SCORE,
    POPULARITY,
    PRIOR,
    TEXT_SCORE,
    VIEWS,
    compare_rankings,
    rank_candidates,
)
from recsys.serving.downloads import Downloads
from recsys.serving.evaluations import Evaluations
from recsys.serving.inputs import blend_weights, check_text, check_top_k, inspect_candidate_file, read_candidate_input
from recsys.serving.service import InputError, LiveModels, ServedModels, rank_catalog
from recsys.serving.settings import Limits
from recsys.serving.shown_lists import interleave, new_list_id, ranked_list, save_marks

logger = logging.getLogger(__name__)

WEIGHT_COLUMNS = ["feature", "weight"]
# How the page shows a ranking's match and popularity percentiles (as small bars), and a list's real clicks.
MATCH_SHOWN, POPULARITY_SHOWN, REAL_CLICK = "match", "log popularity", "real click"
# The same columns whatever the list (blank where a list has no real clicks, or the model no item priors), so that
# scripts read one table; a candidate file's own columns follow.
RANK_HEADERS = [MARK, RANK, ITEM, REAL_CLICK, MATCH_SHOWN, POPULARITY_SHOWN, SCORE, CLICK_PROBABILITY, ITEM_ID]
DISPLAY_DECIMALS = 4
TOP = 5  # a list's outcome counts the real clicks among the top TOP
# What an interleaved list leaves out: each model's scores, whose order would tell which model placed an item where.
TEAM_REVEALING = (SCORE, CLICK_PROBABILITY, MODEL_SCORE, MATCH, POPULARITY, TEXT_SCORE, PRIOR, VIEWS)
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
Plots = tuple[str, Figure | None, Figure | None]


def user_errors(handler: Callable) -> Callable:
    """Show the library's user errors (bad input, a limit) as a Gradio error; anything else stays a bug."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ContractError as err:
            raise gr.Error(str(err), title="Cannot read that") from err
        except UserError as err:
            raise gr.Error(str(err), title="Cannot do that") from err

    return wrapped


def number_input(box: gr.Number) -> gr.Number:
    """``box``, whose input from the page or a script must be a finite number: anything else gets a clear error
    (Gradio's own preprocessing compares ``"abc"`` with the minimum, a TypeError that a script sees as a
    generic 'upstream exception'). The check wraps the instance's preprocessing: a subclass of a Gradio
    component would make Gradio write a ``.pyi`` file beside this module whenever it is imported."""
    preprocess = box.preprocess

    def checked(payload: Any) -> float | int | None:
        is_number = isinstance(payload, int | float) and not isinstance(payload, bool)
        if payload is not None and not (is_number and np.isfinite(payload)):
            raise gr.Error(f"{box.label} must be a number, not {payload!r:.40}.", title="Cannot read that")
        return preprocess(payload)

    box.preprocess = checked
    return box


class _TableData(DataframeData):
    """Gradio's table payload, whose validation failure is a clear error rather than a pydantic traceback."""

    model_config = ConfigDict(title=DataframeData.__name__)  # the API's schema is Gradio's own

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> _TableData:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError:
            raise gr.Error(
                f"A table must be {{'headers': [...], 'data': [[...], ...]}}, not {obj!r:.60}.",
                title="Cannot read that",
            ) from None


def table_input(table: gr.Dataframe) -> gr.Dataframe:
    """``table``, whose payload from the page or a script must be a table: anything else gets a clear error, and
    a missing table (``null``) reaches its handler as None, which the handler refuses in words (Gradio's own
    preprocessing fails on both with a traceback). Wrapped per instance, as :func:`number_input` is."""
    preprocess = table.preprocess
    table.data_model = _TableData
    table.preprocess = lambda payload: None if payload is None else preprocess(payload)
    return table


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Scores rounded for reading (as float64: a rounded float32 prints with its binary tail); the download keeps
    every digit."""
    scores = [c for c in (SCORE, CLICK_PROBABILITY, MODEL_SCORE, TEXT_SCORE, PRIOR) if c in table.columns]
    return table.astype(dict.fromkeys(scores, "float64")).round(dict.fromkeys(scores, DISPLAY_DECIMALS))


def bar(percentile: Any) -> str:
    """A percentile (0–100) as five small blocks and its number, e.g. ``▰▰▰▰▱ 83``; blank where there is none."""
    if pd.isna(percentile):
        return ""
    filled = round(int(percentile) / 20)
    return "▰" * filled + "▱" * (5 - filled) + f" {int(percentile)}"


def shown(ranked: pd.DataFrame, mark: bool = True) -> pd.DataFrame:
    """A ranking as the page shows it: (an unticked mark column,) rank and the item first, a list's real clicks
    ticked beside the item, match and popularity as small bars, the scores rounded, then the list's own columns."""
    table = _display(ranked).reset_index(drop=True)
    # A list's own column named as one the page adds keeps its values under the ranking's clash prefix.
    taken = [c for c in (MATCH_SHOWN, POPULARITY_SHOWN, REAL_CLICK) if c in table.columns]
    table = table.rename(columns={c: CLASH_PREFIX + c for c in taken})
    for name, column in ((MATCH_SHOWN, MATCH), (POPULARITY_SHOWN, POPULARITY)):
        table[name] = table[column].map(bar) if column in table.columns else ""
    table = table.drop(columns=[MATCH, POPULARITY], errors="ignore")
    clicked = ground_truth(table, "the ranked list") if CLICKED in table.columns else np.zeros(len(table), int)
    table = table.drop(columns=CLICKED, errors="ignore").assign(**{REAL_CLICK: ["✓" if c else "" for c in clicked]})
    order = [RANK, ITEM, REAL_CLICK, "change", MATCH_SHOWN, POPULARITY_SHOWN, SCORE, CLICK_PROBABILITY, ITEM_ID]
    front = [c for c in order if c in table.columns]
    table = table[front + [c for c in table.columns if c not in front]]
    if mark:
        table.insert(0, MARK, False)
    return table


def outcomes(ranked: dict[str, pd.DataFrame], candidates: pd.DataFrame) -> str:
    """For a list that carries its real clicks, per model: how many of them it ranks in the top 5, and the list's
    AUC; "" for a list without them. ``ranked``: each model's full ranking of ``candidates``."""
    clicked = ground_truth(candidates, "the candidate list")
    if clicked is None:
        return ""
    lines = []
    for name, ranking in ranked.items():
        scores = ranking[SCORE].reindex(candidates.index)  # what the list was ranked by, in the list's order
        lines.append(f"**{name}**: {list_outcome(scores.to_numpy(), clicked, TOP).describe()}")
    return "Real clicks of this list: " + " · ".join(lines) + "."


def without_evaluation(card: str) -> str:
    """A model card for the Model tab: its own evaluation section (what the folder was published with) gives way
    to the tab's, which the page shows above it, so that the two never disagree."""
    start = card.find("\n## Evaluation")
    if start < 0:
        return card
    end = card.find("\n## ", start + 1)
    above = "\n## Evaluation\n\nThe verdict and the table against the baselines are at the top of this tab.\n"
    return card[:start] + above + (card[end:] if end >= 0 else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _short(context: str) -> str:
    return context if len(context) <= 60 else context[:60] + "…"


def _arrow(change: Any) -> str:
    if pd.isna(change):
        return ""
    change = int(change)
    return f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="


class Handlers:
    """The app's event handlers, as plain methods so that tests can call them without a browser."""

    def __init__(
        self,
        models: ServedModels,
        store: FeedbackStore,
        evaluations: Evaluations,
        limits: Limits,
        *,
        feedback_browsing: bool = False,
        log: BundledLog = BUNDLED_LOGS[0],
        on_reload: Callable[[ServedModels], None] | None = None,
    ) -> None:
        self.store, self.evaluations, self.limits = store, evaluations, limits
        # The served folder's model, reloaded when a promotion or rollback replaces it; on_reload hears of it too.
        self.live = LiveModels(models, on_reload=self._reloaded)
        self.on_reload = on_reload
        self.feedback_browsing = feedback_browsing  # visitors may read and download the stored feedback
        self.log = log  # the click log the model serves: its held-out files and the words for its items
        self.downloads = Downloads()

    @property
    def models(self) -> ServedModels:
        """The models loaded now; a request takes them once, from :meth:`serving`."""
        return self.live.models

    @models.setter
    def models(self, models: ServedModels) -> None:
        self.live.models = models

    def serving(self) -> ServedModels:
        """The models to serve one request with, reloaded first where the served folder holds a new model."""
        return self.live.current()

    def _reloaded(self, models: ServedModels) -> None:
        self.evaluations.models = models  # evaluations are cached per model version
        if self.on_reload is not None:
            self.on_reload(models)

    @user_errors
    def inspect_upload(self, file: str | None) -> tuple[dict, pd.DataFrame]:
        """On upload: offer the file's text columns for the item text and its numeric columns for blending."""
        if file is None or Path(file).suffix.lower() == ".txt":
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
    ) -> tuple[pd.DataFrame, str, str, RankedList]:
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
    ) -> tuple[pd.DataFrame, str, str, RankedList]:
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
    def rank_catalog(self, context: str, top_k: float | None) -> tuple[pd.DataFrame, str, str, RankedList]:
        """Rank the whole catalog the app serves (CATALOG_DIR) for the context; returns what :meth:`rank` does."""
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
    ) -> tuple[pd.DataFrame, str, str, RankedList]:
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
    ) -> tuple[pd.DataFrame, str | None, str, RankedList | None, str]:
        """:meth:`rank` for the page: a user error becomes a message beside the inputs (see :meth:`_in_page`)."""
        arguments = (context, file, pasted, item_column, weights, top_k, match_only, interleaved, progress)
        return self._in_page(Handlers.rank, *arguments)

    def rank_catalog_in_page(
        self, context: str, top_k: float | None
    ) -> tuple[pd.DataFrame, str | None, str, RankedList | None, str]:
        """:meth:`rank_catalog` for the page, as :meth:`rank_in_page` is :meth:`rank`'s."""
        return self._in_page(Handlers.rank_catalog, context, top_k)

    def _in_page(self, handler: Callable, *args: Any) -> tuple[pd.DataFrame, str | None, str, RankedList | None, str]:
        """A ranking handler for the page: a user error becomes a message beside the inputs, and the previous
        result is cleared rather than left standing as if it answered the new input (scripts' calls still raise)."""
        try:
            return (*handler.__wrapped__(self, *args), "")
        except UserError as err:
            cleared = pd.DataFrame(columns=RANK_HEADERS)
            return cleared, None, "", None, f"⚠️ **Cannot rank that.** {err}"

    @user_errors
    def feedback(
        self, context: str, table: pd.DataFrame | None, ranked: RankedList | None
    ) -> tuple[str, RankedList | None]:
        """Save the marks on the list this session ranked (``ranked``, kept on the server); again: replace them.

        The list is stored with the model that ranked it, whatever the app serves now; an interleaved list with each
        item's team and the outcome its marks give."""
        context = check_text(context, "context", self.limits)
        version = ranked.version if ranked is not None and ranked.version else self.models.version
        list_id = save_marks(self.store, version, context, table, ranked)
        saved, totals = self.store.summary(list_id), self.store.summary()
        interleaving = ranked.interleaving
        by = f"model `{version}`" if interleaving is None else "an interleaved list of the champion and the challenger"
        status = (
            f"Saved {saved['clicks']} of {saved['rows']} items as clicked ({by}). "
            f"The store holds {_count(totals['clicks'], 'click')} on {_count(totals['lists'], 'list')}."
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
                f"{pair}, on {_count(result.lists, 'interleaved list')} with marks: **{result.wins}** won by the "
                f"challenger, **{result.losses}** by the champion, **{_count(result.ties, 'tie')}**. "
                f"{sentence[0].upper()}{sentence[1:]}."
            )
        if not self.feedback_browsing:
            return text + " Browsing the lists is off on this server.", empty
        rows = self.store.interleaved_lists(champion, challenger)
        return text, rows.assign(context=rows["context"].map(_short))[COMPARISON_COLUMNS]

    def feedback_overview(self) -> tuple[str, pd.DataFrame]:
        """The counts of stored feedback; the latest rows too where the operator allows browsing."""
        totals = self.store.summary()
        text = (
            f"**{_count(totals['clicks'], 'click')}** on **{_count(totals['lists'], 'list')}** "
            f"({_count(totals['rows'], 'item')} shown)."
        )
        columns = ["created_at", "position", "item", "clicked", "context", "model_version"]
        if not self.feedback_browsing:
            return text + " Browsing stored feedback is off on this server.", pd.DataFrame(columns=columns)
        stored = self.store.read()
        recent = stored.sort_values(["created_at", "list_id", "position"], ascending=[False, True, True]).head(200)
        recent = recent.assign(context=recent["context"].map(_short))
        return text, recent[columns].reset_index(drop=True)

    @user_errors
    def export_feedback(self) -> str:
        """The stored feedback as a click log for people to download; only where the operator allows browsing."""
        if not self.feedback_browsing:
            raise InputError("Exporting feedback is off on this server; its operator can export it with the CLI.")
        return str(self.downloads.write_csv(self.store.click_log(), "feedback-clicks.csv"))

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
        changes = tuned["rank_change"].map(_arrow).rename("change")
        parts = [c for c in (MATCH, POPULARITY) if c in tuned.columns]
        tuned_view = shown(pd.concat([tuned[[RANK, ITEM, *truth, *parts, SCORE]], changes], axis=1), mark=False)
        outcome = outcomes({"zero-shot": base, "fine-tuned": tuned}, candidates)
        return base_view, tuned_view, outcome

    def model_card(self) -> str:
        if self.models.model_dir is None:
            return (
                "No model folder was given, so there is no model card.\n\n"
                f"**Decision threshold:** {describe_threshold(self.models.metadata)}"
            )
        card = build_model_card(self.models.model_dir).text  # names files and folders, never this machine's paths
        return without_evaluation(card)

    def learning_curve(self, curve_file: Path = CURVE_FILE, chart: Path = CURVE_CHART) -> tuple[str, Path] | None:
        """What the learning curve (``make curve``) says of this log, in a sentence, and its chart; None where the
        curve was not measured on this log (another log, or no curve here)."""
        if not (curve_file.is_file() and chart.is_file()):
            return None
        try:
            points = [p for p in json.loads(curve_file.read_text())["points"] if p["log"] == self.log.key]
            return (curve_sentence(points, self.log.name), chart) if points else None
        except (OSError, ValueError, LookupError, TypeError, AttributeError) as error:  # a file cut short or edited
            logger.warning(
                "the learning curve is left off the Model tab: %s is not bench.curve's output (%s: %s); "
                "run `make curve` again or delete it",
                curve_file,
                type(error).__name__,
                error,
            )
            return None

    def describe_file(self, name: str) -> str:
        """What one of the offered click logs is to this model: held out, the one training selected on, or given."""
        path = self.evaluations.paths[name].resolve()
        if path in {f.resolve() for f in self.log.held_out_files}:
            return "held-out users, never trained or selected on"
        if path == self.log.valid_file.resolve():
            return "the users training selected the model on"
        return "a click log given to the app"

    def verdict(self, evaluation: Evaluation) -> str:
        """The evaluation in plain words (``recsys.evaluation.verdict``), in this log's words."""
        log = self.log
        name = "ClickTune" if self.models.metadata.fine_tuned else "the zero-shot base model"
        fine_tuned = self.models.metadata.fine_tuned
        text = judge(
            evaluation, log_name=log.name, lists=log.lists, pair=log.preference, model_name=name, fine_tuned=fine_tuned
        )
        where = f"`{evaluation.data_file}`, {self.describe_file(evaluation.data_file)}"
        return f"**{label(evaluation, fine_tuned)}** on {where}. {text}"

    def overview(self) -> tuple[str, str, Figure | None, Figure | None]:
        """What the Model tab opens with: a verdict per held-out file evaluated so far, and the first one's table and
        plots."""
        held_out = {f.resolve() for f in self.log.held_out_files}
        paths = self.evaluations.paths
        names = [name for name, path in paths.items() if path.resolve() in held_out] or self.evaluations.files
        evaluations = [e for e in (self.evaluations.cached(n) for n in names) if e is not None]
        if not self.evaluations.files:
            hint = "No held-out click log to evaluate on: its operator sets EVAL_FILE to one (users never trained on)."
            return f"## Is it better?\n\n{hint}", "", None, None
        if not evaluations:
            hint = (
                "The model is being evaluated on its held-out users (a minute or two, once per model): reload the "
                "page soon, or press **Evaluate** below."
            )
            return f"## Is it better?\n\n{hint}", "", None, None
        verdicts = "\n\n".join(self.verdict(e) for e in evaluations)
        return f"## Is it better?\n\n{verdicts}", *self._show(evaluations[0], with_verdict=False)

    def cached_evaluation(self) -> Plots:
        evaluation = self.evaluations.cached()
        if evaluation is None:
            return "Press **Evaluate** to score a click log with the model and the baselines.", None, None
        return self._show(evaluation)

    @user_errors
    def evaluate(self, eval_file: str | None, progress: gr.Progress = gr.Progress()) -> Plots:  # noqa: B008
        """Metrics against the baselines on one of the app's click logs, with the two plots: cached, or run now."""
        return self._show(self.evaluations.run(eval_file, lambda done, total, what: progress((done, total), desc=what)))

    def _show(self, evaluation: Evaluation, with_verdict: bool = True) -> Plots:
        """The evaluation's table and plots, under its verdict unless the page shows that above already."""
        name = "this model" + ("" if self.models.metadata.fine_tuned else " (zero-shot)")
        verdict = f"{self.verdict(evaluation)}\n\n" if with_verdict else ""
        text = f"### `{evaluation.data_file}` against the baselines\n\n{verdict}" + format_table(evaluation, name)
        plots = score_distribution(evaluation.scores, evaluation.labels)
        return text, plots, reliability_curve(evaluation.labels, evaluation.probabilities)
