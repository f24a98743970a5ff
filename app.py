"""ClickTune's Gradio app: rank item lists, classify one item, compare base vs fine-tuned, collect feedback.

    python app.py        # or `make demo`, which trains models/clicktune first

Configuration, from the environment (defaults in brackets):

    MODEL_DIR        the model to serve [models/clicktune]; where there is none, the zero-shot base model
    FEEDBACK_DIR     where feedback (SQLite) is kept [feedback-data/]
    MAX_ITEMS        candidates per list [1000]
    MAX_UPLOAD_MB    size of an uploaded file [5]
    MAX_TEXT_CHARS   characters in a context or an item [5000]
    EVAL_FILE        held-out click log of the Model tab [data/bing_news/test_users.csv]
    TRAIN_FILE       training click log, for the popularity baseline [data/bing_news/train.csv]
    HOST, PORT       where to serve [$GRADIO_SERVER_NAME or 127.0.0.1, 7860]

The model is loaded once, at start. Model calls share one queue slot (``MODEL_QUEUE``): the
tokenizer is not thread-safe, and two CPU cores gain nothing from running two at once.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it must not call home

import json
import logging
import math
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from matplotlib.figure import Figure

from recsys.card import build_model_card, describe_threshold, is_hub_id
from recsys.contract import ITEM, ITEM_ID, ContractError, fill_item_ids, numeric_columns, read_clicks
from recsys.evaluate import format_table
from recsys.feedback import DEFAULT_DATA_DIR, FeedbackStore, ShownItem, model_version
from recsys.hub import local_model_dir
from recsys.models import DEFAULT_MODEL, METADATA_FILE, Scorer, load_scorer
from recsys.ranking import (
    CANDIDATE_SUFFIXES,
    MODEL_SCORE,
    PRIOR,
    PROBABILITY,
    RANK,
    SCORE,
    TEXT_SCORE,
    check_size,
    compare_rankings,
    load_candidates,
    rank_candidates,
    read_candidate_file,
)
from recsys.report import EvaluationReport, evaluate_model, reliability_curve, score_distribution

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent
BUNDLED = REPO / "data" / "bing_news"
EXAMPLES = REPO / "data" / "examples"
MARK = "mark"  # the ranked table's first column: ticked items are saved as clicks
MODEL_QUEUE = "model"  # the concurrency group of every event that runs a model
WEIGHT_COLUMNS = ["feature", "weight"]
RANK_HEADERS = [MARK, RANK, ITEM_ID, ITEM, SCORE, PROBABILITY]
DISPLAY_DECIMALS = 4
MAX_EXTRA_COLUMNS = 64  # columns of a candidate file shown beside the ranking (the ranked table's layout)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger input is refused with a message that says so."""

    max_items: int = 1000  # candidates per list (MAX_ITEMS)
    max_upload_mb: float = 5.0  # size of an uploaded file (MAX_UPLOAD_MB)
    max_text_chars: int = 5000  # characters in a context or an item (MAX_TEXT_CHARS)


@dataclass(frozen=True)
class AppConfig:
    model_dir: str = str(REPO / "models" / "clicktune")  # MODEL_DIR
    data_dir: str = str(DEFAULT_DATA_DIR)  # FEEDBACK_DIR
    eval_file: str = str(BUNDLED / "test_users.csv")  # EVAL_FILE
    train_file: str = str(BUNDLED / "train.csv")  # TRAIN_FILE
    host: str = "127.0.0.1"  # HOST
    port: int = 7860  # PORT
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppConfig:
        env = dict(os.environ if env is None else env)
        default = cls()
        try:
            limits = Limits(
                max_items=int(env.get("MAX_ITEMS", default.limits.max_items)),
                max_upload_mb=float(env.get("MAX_UPLOAD_MB", default.limits.max_upload_mb)),
                max_text_chars=int(env.get("MAX_TEXT_CHARS", default.limits.max_text_chars)),
            )
            port = int(env.get("PORT", default.port))
        except ValueError as err:
            raise ValueError(f"MAX_ITEMS, MAX_UPLOAD_MB, MAX_TEXT_CHARS and PORT must be numbers: {err}") from err
        return cls(
            model_dir=env.get("MODEL_DIR", default.model_dir),
            data_dir=env.get("FEEDBACK_DIR", default.data_dir),
            eval_file=env.get("EVAL_FILE", default.eval_file),
            train_file=env.get("TRAIN_FILE", default.train_file),
            # A Hugging Face Space sets GRADIO_SERVER_NAME (0.0.0.0); HOST, where given, wins.
            host=env.get("HOST") or env.get("GRADIO_SERVER_NAME") or default.host,
            port=port,
            limits=limits,
        )


def load_models(model_dir: str | Path) -> tuple[Scorer, Scorer | None, str | None, str]:
    """The served model, its zero-shot base (fine-tuned models only), the folder it came from, and a note on it.

    ``model_dir`` may also be a Hub id (``OWNER/NAME`` that is no folder here), downloaded once at start.
    """
    if not Path(model_dir).exists() and is_hub_id(str(model_dir)):
        try:
            model_dir = local_model_dir(str(model_dir))
        except Exception as err:  # offline, unknown repo, no access: say which and how to fix it
            raise RuntimeError(
                f"MODEL_DIR={model_dir} is no folder here and could not be fetched from the Hub ({err}); "
                "set MODEL_DIR to a model folder, or to a Hub id reachable from this machine"
            ) from err
    model_dir = Path(model_dir)
    if not ((model_dir / METADATA_FILE).is_file() or (model_dir / "config.json").is_file()):
        note = (
            f"No trained model at `{model_dir}`: this app serves the **zero-shot** base model `{DEFAULT_MODEL}`. "
            "Run `make demo` (or set `MODEL_DIR`) to serve a fine-tuned one."
        )
        return load_scorer(None), None, None, note
    scorer = load_scorer(str(model_dir))
    if not scorer.metadata.fine_tuned:
        return scorer, None, str(model_dir), f"`{model_dir}` was not fine-tuned: this app serves it **zero-shot**."
    return scorer, load_scorer(scorer.metadata.base_model), str(model_dir), ""


def _error(err: Exception) -> gr.Error:
    return gr.Error(str(err), title="Cannot do that")


def _file_path(file: str | None) -> Path | None:
    return Path(file) if file else None


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Scores rounded for reading; the download keeps every digit."""
    return table.round(dict.fromkeys((SCORE, PROBABILITY, MODEL_SCORE, TEXT_SCORE, PRIOR), DISPLAY_DECIMALS))


def _weights(table: pd.DataFrame | None) -> dict[str, float]:
    """Feature weights from the blend table; blank rows and zero weights are left out."""
    weights: dict[str, float] = {}
    if table is None or table.empty:
        return weights
    for feature, weight in zip(table.iloc[:, 0], table.iloc[:, 1], strict=True):
        feature = "" if feature is None else str(feature).strip()
        if not feature or weight is None or str(weight).strip() == "":
            continue
        try:
            value = float(weight)
        except ValueError:
            raise gr.Error(f"The weight of {feature!r} is {weight!r}; give a number such as 0.5 or -1") from None
        if not math.isfinite(value):
            raise gr.Error(f"The weight of {feature!r} must be a finite number")
        if value:
            weights[feature] = value
    return weights


class Handlers:
    """The app's event handlers, as plain methods so that tests can call them without a browser."""

    def __init__(
        self,
        scorer: Scorer,
        base_scorer: Scorer | None,
        store: FeedbackStore,
        version: str,
        limits: Limits,
        model_dir: str | None,
        eval_files: list[str],
        train_file: str | None,
    ) -> None:
        self.scorer, self.base_scorer, self.store = scorer, base_scorer, store
        self.version, self.limits, self.model_dir = version, limits, model_dir
        self.eval_files, self.train_file = eval_files, train_file  # the first is evaluated by default
        # Ranked lists and exports to download; removed when the app exits.
        self._downloads = tempfile.TemporaryDirectory(prefix="clicktune-downloads-")
        self.downloads = Path(self._downloads.name)

    # -- input ---------------------------------------------------------------------------------------------

    def _text(self, text: str | None, what: str) -> str:
        text = (text or "").strip()
        if not text:
            raise gr.Error(f"Enter the {what}.")
        if len(text) > self.limits.max_text_chars:
            raise gr.Error(
                f"The {what} has {len(text)} characters, more than the limit of {self.limits.max_text_chars} "
                "(MAX_TEXT_CHARS); shorten it."
            )
        return text

    def _candidates(self, file: str | None, pasted: str | None, item_column: str | None) -> tuple[pd.DataFrame, str]:
        """The candidate list from an uploaded file or pasted lines, and where it came from."""
        path, pasted = _file_path(file), (pasted or "").strip()
        if path is not None and pasted:
            raise gr.Error("Give the items either as a file or pasted, not both: clear one of them.")
        if path is None and not pasted:
            raise gr.Error("No items: upload a file (.csv, .tsv, .jsonl, .txt) or paste items, one per line.")
        if path is None:
            candidates = pd.DataFrame({ITEM: [line.strip() for line in pasted.splitlines() if line.strip()]})
            source = "the pasted list"
            try:
                check_size(candidates, self.limits.max_items, source)
            except ContractError as err:
                raise _error(err) from err
        else:
            self._check_upload(path)
            column = (item_column or "").strip() or ITEM
            try:
                candidates = load_candidates(path, item_column=column, max_items=self.limits.max_items)
            except ContractError as err:
                message = str(err).replace(str(path), path.name)
                if "missing required column" in message and path.suffix.lower() != ".txt":
                    message += " Or pick the column that holds the item text under 'Item text column'."
                raise gr.Error(message, title="Cannot read the file") from err
            source = path.name
            extra = [c for c in candidates.columns if c not in (ITEM, ITEM_ID)]
            if len(extra) > MAX_EXTRA_COLUMNS:
                raise gr.Error(
                    f"{source} has {len(extra)} columns besides item and item_id; the ranked table keeps at most "
                    f"{MAX_EXTRA_COLUMNS}. Drop the columns you don't need and upload it again."
                )
        too_long = candidates[ITEM].str.len() > self.limits.max_text_chars
        if too_long.any():
            raise gr.Error(
                f"{source}: item {int(too_long.to_numpy().argmax()) + 1} is longer than "
                f"{self.limits.max_text_chars} characters (MAX_TEXT_CHARS); shorten it."
            )
        return candidates, source

    def _check_upload(self, path: Path) -> None:
        if not path.is_file():
            raise gr.Error(f"{path.name}: the upload did not arrive; upload it again.")
        size_mb = path.stat().st_size / 2**20
        if size_mb > self.limits.max_upload_mb:
            raise gr.Error(
                f"{path.name} is {size_mb:.2f} MB, more than the limit of {self.limits.max_upload_mb:g} MB "
                "(MAX_UPLOAD_MB); upload a shorter list."
            )

    def inspect_upload(self, file: str | None) -> tuple[dict, pd.DataFrame]:
        """On upload: offer the file's text columns for the item text and its numeric columns for blending."""
        path = _file_path(file)
        empty = pd.DataFrame(columns=WEIGHT_COLUMNS)
        if path is None or path.suffix.lower() == ".txt":
            return gr.update(choices=[ITEM], value=ITEM), empty
        self._check_upload(path)
        try:
            table = read_candidate_file(path)
        except ContractError as err:
            raise gr.Error(str(err).replace(str(path), path.name), title="Cannot read the file") from err
        columns = [str(c) for c in table.columns]
        numeric = numeric_columns(table)
        text = [c for c in columns if c not in numeric] or columns
        value = ITEM if ITEM in columns else None
        weights = pd.DataFrame({"feature": numeric, "weight": [0.0] * len(numeric)}, columns=WEIGHT_COLUMNS)
        return gr.update(choices=text, value=value), weights

    # -- rank ----------------------------------------------------------------------------------------------

    def rank(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        weights: pd.DataFrame | None,
        top_k: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's way to ask for a progress bar)
    ) -> tuple[pd.DataFrame, str, str, dict]:
        """Rank the candidates; returns the table (with an unticked mark column), the CSV, a status line, the list."""
        context = self._text(context, "context")
        candidates, source = self._candidates(file, pasted, item_column)
        blend = _weights(weights)
        k = None if top_k is None else int(top_k)  # an empty box shows every item
        if k is not None and k < 1:
            raise gr.Error("Top k must be 1 or more.")
        progress(0, desc="scoring")
        try:
            ranked = rank_candidates(
                self.scorer,
                context,
                candidates,
                weights=blend,
                top_k=k,
                progress=lambda done, total: progress((done, total), desc="scoring", unit="items"),
            )
        except ContractError as err:
            raise _error(err) from err
        download = self._write_download(ranked)
        blended = ", ".join(f"{c} × {w:g}" for c, w in blend.items())
        status = (
            f"Ranked {len(candidates)} items from {source}"
            + (f", blended with {blended}" if blend else "")
            + f"; showing the top {len(ranked)}. Model: `{self.version}`. "
            + "Tick the items you would click in the **mark** column, then press **Save feedback**."
        )
        table = _display(ranked).reset_index(drop=True)
        table.insert(0, MARK, False)
        return table, str(download), status, {"list_id": uuid.uuid4().hex, "context": context}

    def _write_download(self, ranked: pd.DataFrame) -> Path:
        folder = self.downloads / uuid.uuid4().hex
        folder.mkdir()
        path = folder / "ranked.csv"
        ranked.to_csv(path, index=False)
        self._prune_downloads()
        return path

    def _prune_downloads(self, max_age_s: float = 3600) -> None:
        cutoff = time.time() - max_age_s
        for folder in self.downloads.iterdir():
            if folder.stat().st_mtime < cutoff:
                for file in folder.iterdir():
                    file.unlink()
                folder.rmdir()

    # -- feedback ------------------------------------------------------------------------------------------

    def feedback(self, context: str, table: pd.DataFrame | None, ranked_list: dict | None) -> tuple[str, dict]:
        """Save the marks of a ranked table; saving the same list again replaces its marks."""
        context = self._text(context, "context")
        if table is None or table.empty or ITEM not in table.columns or RANK not in table.columns:
            raise gr.Error("Rank a list first; then tick the items you would click and save.")
        if MARK not in table.columns:
            raise gr.Error(f"The table needs a {MARK!r} column of true/false; tick the items you would click.")
        marks = table[MARK].map(lambda v: str(v).strip().lower() in ("true", "1", "yes"))
        if not marks.any():
            raise gr.Error(f"No item is marked: tick the items you would click in the {MARK!r} column, then save.")
        ranks = pd.to_numeric(table[RANK], errors="coerce")
        if ranks.isna().any() or (ranks < 1).any() or (ranks % 1 != 0).any():
            raise gr.Error(f"The {RANK!r} column must hold the displayed ranks 1, 2, …; rank the list again.")
        if table[ITEM].isna().any() or table[ITEM].astype(str).str.strip().eq("").any():
            raise gr.Error(f"Every row needs its {ITEM!r} text; rank the list again.")
        if ranked_list and ranked_list.get("context") != context:
            raise gr.Error("The context changed since this list was ranked: rank again before saving feedback.")
        ids = fill_item_ids(table)
        shown = [
            ShownItem(item=str(item), item_id=str(item_id), position=int(rank), clicked=bool(mark))
            for item, item_id, rank, mark in zip(table[ITEM], ids, ranks, marks, strict=True)
        ]
        list_id = self.store.record(context, shown, self.version, list_id=(ranked_list or {}).get("list_id"))
        totals = self.store.summary()
        status = (
            f"Saved {int(marks.sum())} of {len(shown)} items as clicked (model `{self.version}`). "
            f"The store holds {_count(totals['clicks'], 'click')} on {_count(totals['lists'], 'list')}."
        )
        return status, {"list_id": list_id, "context": context}

    def feedback_overview(self) -> tuple[str, pd.DataFrame]:
        totals = self.store.summary()
        stored = self.store.read()
        recent = stored.sort_values(["created_at", "list_id", "position"], ascending=[False, True, True]).head(200)
        text = (
            f"**{_count(totals['clicks'], 'click')}** on **{_count(totals['lists'], 'list')}** "
            f"({_count(totals['rows'], 'item')} shown) in `{self.store.path}`."
        )
        recent = recent.assign(context=recent["context"].map(lambda c: c if len(c) <= 60 else c[:60] + "…"))
        columns = ["created_at", "position", "item", "clicked", "context", "model_version"]
        return text, recent[columns].reset_index(drop=True)

    def export_feedback(self) -> str:
        path = self.downloads / uuid.uuid4().hex / "feedback-clicks.csv"
        path.parent.mkdir()
        try:
            self.store.export(path)
        except ValueError as err:
            raise _error(err) from err
        return str(path)

    # -- classify and compare ------------------------------------------------------------------------------

    def classify(self, context: str, item: str) -> tuple[float, str]:
        """Click probability of one item, and 'clicked' or 'not clicked' at the model's threshold."""
        context, item = self._text(context, "context"), self._text(item, "item")
        probability = float(self.scorer.predict_proba([(context, item)])[0])
        label = "clicked" if probability >= self.scorer.metadata.threshold else "not clicked"
        return round(probability, DISPLAY_DECIMALS), label

    def compare(
        self,
        context: str,
        file: str | None,
        pasted: str,
        item_column: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The list ranked by the zero-shot base model and by the served model, each item's rank change beside."""
        if self.base_scorer is None:
            raise gr.Error(
                "Compare needs a fine-tuned model and its base; this app serves a zero-shot model. "
                "Run `make demo` or set MODEL_DIR to a fine-tuned model."
            )
        context = self._text(context, "context")
        candidates, _ = self._candidates(file, pasted, item_column)
        progress(0.1, desc="zero-shot base model")
        base = rank_candidates(self.base_scorer, context, candidates)
        progress(0.55, desc="fine-tuned model")
        tuned = compare_rankings(base, rank_candidates(self.scorer, context, candidates))
        columns = [RANK, ITEM, SCORE, PROBABILITY]
        base_view = _display(base[columns]).reset_index(drop=True)
        tuned_view = _display(tuned[[RANK, "rank_change", "base_rank", ITEM, SCORE, PROBABILITY]])
        tuned_view = tuned_view.rename(columns={"rank_change": "change"})
        tuned_view = tuned_view.assign(change=tuned_view["change"].map(_arrow)).reset_index(drop=True)
        return base_view, tuned_view

    # -- model ---------------------------------------------------------------------------------------------

    def model_card(self) -> str:
        if self.model_dir is None:
            return (
                "No model folder was given, so there is no model card.\n\n"
                f"**Decision threshold:** {describe_threshold(self.scorer.metadata)}"
            )
        return build_model_card(self.model_dir).text

    def _report_path(self, eval_file: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{self.version}-{Path(eval_file).stem}")
        return self.store.data_dir / "evaluations" / f"{safe}.json"

    def cached_evaluation(self) -> tuple[str, Figure | None, Figure | None]:
        report = EvaluationReport.load(self._report_path(self.eval_files[0])) if self.eval_files else None
        if report is None:
            return "Press **Evaluate** to score a click log with the model and the baselines.", None, None
        return self._show_report(report)

    def evaluate(
        self,
        eval_file: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str, Figure | None, Figure | None]:
        """Metrics against the baselines on one of the app's click logs, with the two plots; kept for the next start."""
        if not self.eval_files:
            raise gr.Error("No click log to evaluate on: set EVAL_FILE.")
        eval_file = eval_file or self.eval_files[0]
        if eval_file not in self.eval_files:
            raise gr.Error(f"Pick one of the app's click logs: {', '.join(Path(f).name for f in self.eval_files)}")
        try:
            frame = read_clicks(eval_file)
            train = read_clicks(self.train_file) if self.train_file else None
        except ContractError as err:
            raise _error(err) from err
        report = evaluate_model(
            self.scorer,
            frame,
            train,
            self.base_scorer,
            eval_file=eval_file,
            progress=lambda fraction, desc: progress(fraction, desc=desc),
        )
        report.save(self._report_path(eval_file))
        return self._show_report(report)

    def _show_report(self, report: EvaluationReport) -> tuple[str, Figure | None, Figure | None]:
        name = "this model" + (" (zero-shot)" if not self.scorer.metadata.fine_tuned else "")
        text = f"On `{Path(report.eval_file).name}`:\n\n" + format_table(report.metrics, name)
        return (
            text,
            score_distribution(report.scores, report.labels),
            reliability_curve(report.labels, report.probabilities),
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _arrow(change: Any) -> str:
    if pd.isna(change):
        return ""
    change = int(change)
    return f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="


def _examples() -> dict:
    path = EXAMPLES / "examples.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"rank": [], "classify": []}


def _list_inputs(limits: Limits, prefix: str) -> tuple[gr.File, gr.Textbox, gr.Dropdown]:
    """A candidate list: a file or pasted lines, and which column holds the item text."""
    file = gr.File(
        label=f"Candidates file ({', '.join(CANDIDATE_SUFFIXES)}; up to {limits.max_items} items, "
        f"{limits.max_upload_mb:g} MB)",
        file_types=list(CANDIDATE_SUFFIXES),
        type="filepath",
        elem_id=f"{prefix}-file",
    )
    pasted = gr.Textbox(label="…or paste items, one per line", lines=5, elem_id=f"{prefix}-pasted")
    item_column = gr.Dropdown(
        label="Item text column", choices=[ITEM], value=ITEM, allow_custom_value=True, elem_id=f"{prefix}-column"
    )
    return file, pasted, item_column


def build_demo(
    scorer: Scorer,
    base_scorer: Scorer | None = None,
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    model_dir: str | Path | None = None,
    limits: Limits | None = None,
    note: str = "",
    eval_file: str | Path | None = BUNDLED / "test_users.csv",
    train_file: str | Path | None = BUNDLED / "train.csv",
) -> gr.Blocks:
    """The app over ``scorer``; Compare sets the zero-shot ``base_scorer`` beside it; feedback goes to ``data_dir``."""
    limits = limits or Limits()
    version = model_version(model_dir, scorer.metadata) if model_dir else f"{scorer.metadata.base_model} (zero-shot)"
    # The configured click log first, then the bundled splits: all that the Model tab may read.
    candidates = (
        [eval_file, *(BUNDLED / f"{n}.csv" for n in ("test_users", "test_later", "valid"))] if eval_file else []
    )
    eval_files = list(dict.fromkeys(str(f) for f in candidates if Path(f).is_file()))
    handlers = Handlers(
        scorer,
        base_scorer,
        FeedbackStore(data_dir),
        version,
        limits,
        str(model_dir) if model_dir else None,
        eval_files,
        str(train_file) if train_file else None,
    )
    examples = _examples()
    metadata = scorer.metadata
    kind = "fine-tuned" if metadata.fine_tuned else "zero-shot"

    with gr.Blocks(title="ClickTune", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# ClickTune\nRank items for a context (a query, or a user's recent reading) by how likely the user "
            f"is to click them.  \nModel: `{version}`, {kind} {metadata.architecture}-encoder from "
            f"`{metadata.base_model}`."
        )
        if note:
            gr.Markdown(f"⚠️ {note}", elem_id="model-note")

        with gr.Tab("Rank", id="rank", elem_id="tab-rank"):
            with gr.Row():
                with gr.Column(scale=2):
                    context = gr.Textbox(
                        label="Context",
                        lines=3,
                        placeholder="A query, or a user's recent titles joined by ' | '",
                        elem_id="rank-context",
                    )
                    file, pasted, item_column = _list_inputs(limits, "rank")
                    with gr.Accordion("Blend numeric columns", open=True):
                        gr.Markdown("final = z(model score) + Σ weight × z(feature), z-scored within the list.")
                        weights = gr.Dataframe(
                            headers=WEIGHT_COLUMNS,
                            datatype=["str", "number"],
                            value=pd.DataFrame(columns=WEIGHT_COLUMNS),
                            interactive=True,
                            static_columns=[0],
                            label="Weights (0 leaves a column out)",
                            elem_id="rank-weights",
                        )
                    top_k = gr.Number(
                        label="Top k", value=10, precision=0, minimum=1, maximum=limits.max_items, elem_id="rank-top-k"
                    )
                    rank_button = gr.Button("Rank", variant="primary", elem_id="rank-button")
                with gr.Column(scale=4):
                    rank_status = gr.Markdown(label="Status", elem_id="rank-status")
                    ranked = gr.Dataframe(
                        label="Ranked items (tick 'mark' for the items you would click)",
                        headers=RANK_HEADERS,
                        # Per column; the list runs long because a candidate file brings its own columns.
                        datatype=["bool", "number", "str", "str", "number", "number", *["str"] * MAX_EXTRA_COLUMNS],
                        column_widths=["64px", "56px", "110px", "340px", "80px", "100px"],
                        max_height=720,
                        static_columns=list(range(1, len(RANK_HEADERS) + MAX_EXTRA_COLUMNS)),
                        interactive=True,
                        wrap=True,
                        elem_id="ranked",
                    )
                    ranked_list = gr.State()
                    with gr.Row():
                        save_button = gr.Button("Save feedback", elem_id="save-feedback")
                        download = gr.File(label="Ranked list (CSV)", elem_id="rank-download")
                    feedback_status = gr.Markdown(label="Feedback status", elem_id="feedback-status")
            gr.Examples(
                [[e["context"], str(EXAMPLES / e["file"]), ""] for e in examples["rank"]],
                inputs=[context, file, pasted],
                example_labels=[f"{e['file']}: {e['context'][:70]}…" for e in examples["rank"]],
                label="Examples: held-out Bing News users (the context is half of a user's clicks)",
            )

        with gr.Tab("Classify", id="classify", elem_id="tab-classify"):
            gr.Markdown(
                "Click probability of one item, and **clicked** where it reaches the model's decision threshold: "
                + describe_threshold(metadata)
            )
            with gr.Row():
                with gr.Column():
                    classify_context = gr.Textbox(label="Context", lines=3, elem_id="classify-context")
                    classify_item = gr.Textbox(label="Item", lines=2, elem_id="classify-item")
                    classify_button = gr.Button("Classify", variant="primary", elem_id="classify-button")
                with gr.Column():
                    probability = gr.Number(label="Click probability", elem_id="classify-probability")
                    label = gr.Textbox(label=f"At threshold {metadata.threshold:.3f}", elem_id="classify-label")
            gr.Examples(
                [[e["context"], e["item"]] for e in examples["classify"]],
                inputs=[classify_context, classify_item],
                example_labels=[
                    f"{'clicked' if e['clicked'] else 'not clicked'}: {e['item'][:80]}" for e in examples["classify"]
                ],
                label="Examples: held-out rows, with what the user did",
            )

        with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
            if base_scorer is None:
                gr.Markdown("⚠️ This app serves a zero-shot model, so there is no base model to compare it with.")
            else:
                gr.Markdown(
                    f"The same list ranked by the zero-shot base model (`{base_scorer.metadata.base_model}`) and by "
                    "the fine-tuned model; **change** is how many places fine-tuning moved each item (▲ up, ▼ down)."
                )
            with gr.Row():
                compare_context = gr.Textbox(label="Context", lines=6, elem_id="compare-context", scale=2)
                with gr.Column(scale=2):
                    compare_file, compare_pasted, compare_column = _list_inputs(limits, "compare")
            compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            with gr.Row():
                base_table = gr.Dataframe(
                    label="Zero-shot base model",
                    wrap=True,
                    column_widths=["56px", "auto", "80px", "100px"],
                    elem_id="compare-base",
                )
                tuned_table = gr.Dataframe(
                    label="Fine-tuned model (change: places moved by fine-tuning)",
                    wrap=True,
                    column_widths=["56px", "72px", "64px", "auto", "80px", "100px"],
                    elem_id="compare-tuned",
                )
            gr.Examples(
                [[e["context"], str(EXAMPLES / e["file"]), ""] for e in examples["rank"]],
                inputs=[compare_context, compare_file, compare_pasted],
                example_labels=[f"{e['file']}: {e['context'][:70]}…" for e in examples["rank"]],
            )

        with gr.Tab("Model", id="model", elem_id="tab-model"):
            gr.Markdown(handlers.model_card(), elem_id="model-card")
            gr.Markdown("## Evaluation against the baselines, with plots")
            with gr.Row():
                eval_choice = gr.Dropdown(
                    [(Path(f).name, f) for f in eval_files],
                    value=eval_files[0] if eval_files else None,
                    label="Click log (EVAL_FILE, or a bundled split)",
                    scale=3,
                    elem_id="model-eval-file",
                )
                evaluate_button = gr.Button("Evaluate", scale=1, elem_id="model-evaluate")
            gr.Examples(
                [[f] for f in eval_files if Path(f).parent == BUNDLED],
                inputs=eval_choice,
                example_labels=[
                    f"{Path(f).name}: " + ("held-out users" if Path(f).stem == "test" else "users training selected on")
                    for f in eval_files
                    if Path(f).parent == BUNDLED
                ],
                label="Bundled Bing News splits",
            )
            metrics = gr.Markdown(label="Metrics", elem_id="model-metrics")
            with gr.Row():
                distribution_plot = gr.Plot(label="Score distribution", format="png")
                reliability_plot = gr.Plot(label="Reliability", format="png")

        # Retraining starts from the served model where it was fine-tuned, else from its base.
        retrain_from = model_dir if metadata.fine_tuned and model_dir else metadata.base_model
        with gr.Tab("Feedback", id="feedback", elem_id="tab-feedback") as feedback_tab:
            gr.Markdown(
                "Marks saved from the Rank tab. Export them as a click log and fine-tune on them:\n\n"
                "```\npython -m recsys.feedback export --out clicks.csv --data-dir "
                f"{handlers.store.data_dir}\n"
                f"python -m finetune.train --train-file clicks.csv --model-name-or-path {retrain_from} "
                "--output-dir models/clicktune-next\n```"
            )
            overview = gr.Markdown(elem_id="feedback-overview")
            with gr.Row():
                with gr.Column(scale=1):
                    refresh_button = gr.Button("Refresh", elem_id="feedback-refresh")
                    export_button = gr.Button("Export click log (CSV)", elem_id="feedback-export")
                export_file = gr.File(label="Click log", height=100, scale=2, elem_id="feedback-file")
            recent = gr.Dataframe(
                label="Recent feedback",
                column_widths=["230px", "90px", "auto", "80px", "300px", "170px"],
                elem_id="feedback-table",
            )

        # Model events share one queue slot; the rest run beside them.
        model_queue = {"concurrency_id": MODEL_QUEUE, "concurrency_limit": 1}
        file.change(handlers.inspect_upload, file, [item_column, weights], api_visibility="private")
        compare_file.change(
            lambda path: handlers.inspect_upload(path)[0], compare_file, compare_column, api_visibility="private"
        )
        rank_button.click(
            handlers.rank,
            [context, file, pasted, item_column, weights, top_k],
            [ranked, download, rank_status, ranked_list],
            api_name="rank",
            **model_queue,
        )
        save_button.click(
            handlers.feedback, [context, ranked, ranked_list], [feedback_status, ranked_list], api_name="feedback"
        )
        classify_button.click(
            handlers.classify,
            [classify_context, classify_item],
            [probability, label],
            api_name="classify",
            **model_queue,
        )
        compare_button.click(
            handlers.compare,
            [compare_context, compare_file, compare_pasted, compare_column],
            [base_table, tuned_table],
            api_name="compare",
            **model_queue,
        )
        evaluate_button.click(
            handlers.evaluate,
            eval_choice,
            [metrics, distribution_plot, reliability_plot],
            api_name="evaluate",
            **model_queue,
        )
        demo.load(
            handlers.cached_evaluation, None, [metrics, distribution_plot, reliability_plot], api_visibility="private"
        )
        for event in (refresh_button.click, feedback_tab.select, demo.load):
            event(handlers.feedback_overview, None, [overview, recent], api_visibility="private")
        export_button.click(handlers.export_feedback, None, export_file, api_name="export_feedback")

    return demo.queue(default_concurrency_limit=4, max_size=64)


def launch_options(config: AppConfig) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch``: where to serve, the upload limit, and no server-side rendering."""
    return {
        "server_name": config.host,
        "server_port": config.port,
        "max_file_size": int(config.limits.max_upload_mb * 2**20),  # bytes; Gradio refuses larger uploads
        "ssr_mode": False,  # no Node.js here; the page is rendered in the browser
        "show_error": True,
    }


def create_app(config: AppConfig) -> gr.Blocks:
    """The app over ``config``: loads the model (once) and builds the demo."""
    scorer, base, model_dir, note = load_models(config.model_dir)
    return build_demo(
        scorer,
        base,
        config.data_dir,
        model_dir=model_dir,
        limits=config.limits,
        note=note,
        eval_file=config.eval_file,
        train_file=config.train_file,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio polls its own server at start
    app_config = AppConfig.from_env()
    create_app(app_config).launch(**launch_options(app_config))
