"""ClickTune's Gradio layout: one panel per served click log (``recsys.serving.served``), chosen at the top, and
in it one function per tab, each wiring its components to the handlers of ``app_handlers``; the
rules live in ``recsys.serving.service``. The first log's API endpoints are /rank, /classify, ...; another
log's carry its key (/movielens_rank, ...). Models are loaded at start, and again when a promotion
or a rollback (``python -m recsys.loop``) replaces the served folder's model (``recsys.serving.service.LiveModels``);
where a model was not evaluated on its held-out files before (``python -m recsys.serving.served``, which
``make demo`` runs), that runs in the background, and the Model tab says so until its verdict is ready.
Model calls share one queue slot (``MODEL_QUEUE``): the tokenizer is not thread-safe, and two CPU cores
gain nothing from running two at once; an evaluation has a slot of its own.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it must not call home

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from app_handlers import RANK_HEADERS, WEIGHT_COLUMNS, Handlers, number_input, table_input
from recsys.data.candidates import CANDIDATE_SUFFIXES
from recsys.data.contract import ITEM
from recsys.defaults import EVAL_FILE, TRAIN_FILE
from recsys.evaluation.verdict import AUC_EXPLAINED, NDCG_EXPLAINED
from recsys.feedback.hub_mirror import HubMirror, restore
from recsys.feedback.store import FeedbackStore, Mirror
from recsys.publish.card import describe_threshold
from recsys.serving.served import ServedLog, load_served_logs, log_of, prepare_in_background, serve_log
from recsys.serving.service import ServedModels, load_catalog, load_challenger
from recsys.serving.settings import AppConfig, Limits

MODEL_QUEUE = {"concurrency_id": "model", "concurrency_limit": 1}  # every event that runs a model shares one slot
# An evaluation (tens of seconds) runs in its own slot with its own tokenizers, so that it never holds up ranking.
EVALUATION_QUEUE = {"concurrency_id": "evaluate", "concurrency_limit": 1}
SCORE_LEGEND = (
    "**match**: how well the item matches the context, and **popularity**: how much the item's popularity in the "
    "training log lifts it; each a percentile within the list (▰▰▰▰▰ 100: the most in the list). "
    "**score**: what the list is ranked by (a logit: only its order matters) · **click_probability**: the "
    "calibrated chance of a click · **real click** ✓: the user clicked it (example lists carry the truth)."
)
# mark, rank, item, real click, match, log popularity, score, click_probability, item_id; a file's own columns get
# the default width.
RANK_COLUMN_WIDTHS = ["72px", "72px", "360px", "116px", "104px", "150px", "84px", "176px", "110px"]
PHONE_ITEM_WIDTH = "220px"  # at phone width, what the item column keeps beside mark and rank
TABLES = ("ranked", "compare-base", "compare-tuned", "feedback-table", "comparison-table", "model-metrics")


# Headers stay on one line (Gradio wraps them letter by letter in narrow columns; the tables scroll sideways). At
# phone width the tab bars wrap rather than hide tabs behind a menu, and the item text keeps most of the width.
# Each log's elements carry its prefix, so selectors match the end of an id.
def _width(selector: str, width: str) -> str:
    return f"{selector} {{ width: {width} !important; min-width: {width} !important; max-width: {width} !important; " \
        f"flex: 0 0 {width} !important; }}"  # fmt: skip


def _column(table: str, n: int) -> str:
    """A column of a Gradio table: its header cell and its body cells."""
    return f"[id$='{table}'] th[data-heading='{n}'], [id$='{table}'] [role=gridcell][data-col='{n}']"


CSS = "\n".join(
    [
        ", ".join(f"[id$='{t}'] th, [id$='{t}'] th *" for t in TABLES)
        + " { white-space: nowrap !important; word-break: keep-all !important; }",
        # The Model tab's tables scroll sideways rather than wrapping their cells.
        "[id$='model-metrics'] table { display: block; overflow-x: auto; }",
        "[id$='model-metrics'] td { white-space: nowrap; }",
        "@media (max-width: 640px) {",
        # Narrower tab buttons, so that every tab fits on the bar rather than behind Gradio's overflow menu.
        "  .tab-container button { padding: 4px 7px !important; font-size: 14px !important; }",
        "  " + _width(", ".join(_column("ranked", n) for n in (0, 1)), "44px"),
        "  " + _width(_column("ranked", 2), PHONE_ITEM_WIDTH),
        "  " + _width(f"{_column('compare-base', 1)}, {_column('compare-tuned', 1)}", PHONE_ITEM_WIDTH),
        "}",
    ]
)


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


def _list_examples(served: ServedLog, inputs: list[gr.components.Component], label: str | None = None) -> None:
    """The log's example lists, where this copy has them (an installed package ships no data: none are shown)."""
    rank = served.examples.get("rank", [])
    if not rank:
        return
    folder = served.log.examples_dir
    gr.Examples(
        [[e["context"], str(folder / e["file"]), ""] for e in rank],
        inputs=inputs,
        example_labels=[f"{e['file']}: {e['context'][:70]}…" for e in rank],
        label=label,
    )


def examples_label(served: ServedLog) -> str:
    """Where the examples come from, as the examples file records it."""
    source, seed = served.examples.get("source", "held-out users"), served.examples.get("seed")
    drawn = f", drawn at random (seed {seed})" if seed is not None else ""
    return f"Examples: {served.log.name} users of {source}{drawn}, with their real clicks in the 'clicked' column"


def rank_tab(handlers: Handlers, served: ServedLog, ids: str, api: str) -> None:
    limits = handlers.limits
    extra = limits.max_extra_columns  # the ranked table's declared columns beyond RANK_HEADERS
    with gr.Tab("Rank", id="rank", elem_id=f"{ids}tab-rank"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=280):
                context = gr.Textbox(
                    label="Context",
                    lines=6,
                    placeholder="A query, or a user's recent titles joined by ' | '",
                    elem_id=f"{ids}rank-context",
                )
            with gr.Column(scale=3, min_width=280):
                file, pasted, item_column = _list_inputs(limits, f"{ids}rank")
            with gr.Column(scale=2, min_width=280):
                match_only = gr.Checkbox(
                    label="Rank by the match to the context alone (leave popularity out)",
                    value=False,
                    elem_id=f"{ids}rank-match-only",
                )
                interleaved = gr.Checkbox(
                    label="Interleave champion and challenger",
                    info="One list from both models' rankings, blind: your marks say which model you prefer.",
                    value=False,
                    visible=handlers.models.challenger is not None,  # CHALLENGER_DIR: only where one is served
                    elem_id=f"{ids}rank-interleave",
                )
                with gr.Accordion("Blend numeric columns", open=False):
                    gr.Markdown("final = z(model score) + Σ weight × z(feature), z-scored within the list.")
                    weights = table_input(
                        gr.Dataframe(
                            headers=WEIGHT_COLUMNS,
                            datatype=["str", "number"],
                            value=pd.DataFrame(columns=WEIGHT_COLUMNS),
                            interactive=True,
                            static_columns=[0],
                            label="Weights (0 leaves a column out)",
                            elem_id=f"{ids}rank-weights",
                        )
                    )
                top_k = number_input(
                    gr.Number(
                        label="Top k", value=10, precision=0, minimum=1, maximum=limits.max_items,
                        elem_id=f"{ids}rank-top-k",
                    )
                )  # fmt: skip
                rank_button = gr.Button("Rank", variant="primary", elem_id=f"{ids}rank-button")
                catalog = handlers.models.catalog  # CATALOG_DIR: its button shows only where it is set
                catalog_button = gr.Button(
                    f"Rank against the catalog ({len(catalog):,} items)" if catalog is not None else "",
                    visible=catalog is not None,
                    elem_id=f"{ids}rank-catalog-button",
                )
                error = gr.Markdown(elem_id=f"{ids}rank-error")
        _list_examples(served, [context, file, pasted], examples_label(served))
        status = gr.Markdown(label="Status", elem_id=f"{ids}rank-status")
        ranked = table_input(
            gr.Dataframe(
                label="Ranked items (tick 'mark' for the items you would click)",
                headers=RANK_HEADERS,
                # Per column; the list runs long because a candidate file brings its own columns.
                datatype=["bool", "number", "str", "str", "str", "str", "number", "number", "str", *["str"] * extra],
                column_widths=RANK_COLUMN_WIDTHS,
                max_height=1200,  # the default top 10 whole, a longer list scrolls
                pinned_columns=2,  # mark and rank stay in view while the file's own columns scroll by
                static_columns=list(range(1, len(RANK_HEADERS) + extra)),
                interactive=True,
                wrap=True,
                elem_id=f"{ids}ranked",
            )
        )
        gr.Markdown(SCORE_LEGEND, elem_id=f"{ids}rank-legend")
        ranked_list = gr.State()
        with gr.Row():
            save_button = gr.Button("Save feedback", elem_id=f"{ids}save-feedback")
            download = gr.File(label="Ranked list (CSV)", elem_id=f"{ids}rank-download")
        feedback_status = gr.Markdown(label="Feedback status", elem_id=f"{ids}feedback-status")
        # Scripts call /rank and /rank_catalog, which raise what the page shows beside the inputs; hidden buttons.
        api_rank = gr.Button(visible=False, elem_id=f"{ids}rank-api")
        api_catalog = gr.Button(visible=False, elem_id=f"{ids}rank-catalog-api")
    inputs = [context, file, pasted, item_column, weights, top_k, match_only, interleaved]
    file.change(handlers.inspect_upload, file, [item_column, weights], api_visibility="private")
    rank_button.click(
        handlers.rank_in_page,
        inputs,
        [ranked, download, status, ranked_list, error],
        api_visibility="private",
        **MODEL_QUEUE,
    )
    api_rank.click(handlers.rank, inputs, [ranked, download, status, ranked_list], api_name=f"{api}rank", **MODEL_QUEUE)
    catalog_button.click(
        handlers.rank_catalog_in_page,
        [context, top_k],
        [ranked, download, status, ranked_list, error],
        api_visibility="private",
        **MODEL_QUEUE,
    )
    api_catalog.click(
        handlers.rank_catalog, [context, top_k], [ranked, download, status, ranked_list],
        api_name=f"{api}rank_catalog", **MODEL_QUEUE,
    )  # fmt: skip
    save_button.click(
        handlers.feedback, [context, ranked, ranked_list], [feedback_status, ranked_list], api_name=f"{api}feedback"
    )


def classify_tab(handlers: Handlers, served: ServedLog, ids: str, api: str) -> None:
    metadata = handlers.models.metadata
    with gr.Tab("Classify", id="classify", elem_id=f"{ids}tab-classify"):
        gr.Markdown(
            "Click probability of one item, and **clicked** where it reaches the model's decision threshold: "
            + describe_threshold(metadata)
        )
        with gr.Row():
            with gr.Column(min_width=280):
                context = gr.Textbox(label="Context", lines=3, elem_id=f"{ids}classify-context")
                item = gr.Textbox(label="Item", lines=2, elem_id=f"{ids}classify-item")
                button = gr.Button("Classify", variant="primary", elem_id=f"{ids}classify-button")
            with gr.Column(min_width=280):
                probability = gr.Number(label="Click probability", elem_id=f"{ids}classify-probability")
                label = gr.Textbox(label=f"At threshold {metadata.threshold:.3f}", elem_id=f"{ids}classify-label")
        rows = served.examples.get("classify", [])
        if rows:
            gr.Examples(
                [[e["context"], e["item"]] for e in rows],
                inputs=[context, item],
                example_labels=[f"{'clicked' if e['clicked'] else 'not clicked'}: {e['item'][:80]}" for e in rows],
                label="Examples: held-out rows, with what the user did",
            )
    button.click(handlers.classify, [context, item], [probability, label], api_name=f"{api}classify", **MODEL_QUEUE)


def compare_tab(handlers: Handlers, served: ServedLog, ids: str, api: str) -> None:
    base = handlers.models.base
    with gr.Tab("Compare", id="compare", elem_id=f"{ids}tab-compare"):
        if base is None:
            gr.Markdown("⚠️ This app serves a zero-shot model, so there is no base model to compare it with.")
        else:
            gr.Markdown(
                f"The same list ranked by the zero-shot base model (`{handlers.models.base_model_name}`) and by "
                "the fine-tuned model; **change** is how many places fine-tuning moved each item (▲ up, ▼ down)."
            )
        with gr.Row():
            context = gr.Textbox(label="Context", lines=6, elem_id=f"{ids}compare-context", scale=2, min_width=280)
            with gr.Column(scale=2, min_width=280):
                file, pasted, item_column = _list_inputs(handlers.limits, f"{ids}compare")
        button = gr.Button("Compare", variant="primary", elem_id=f"{ids}compare-button")
        _list_examples(served, [context, file, pasted], examples_label(served))
        outcome = gr.Markdown(elem_id=f"{ids}compare-outcome")
        with gr.Row():
            base_table = gr.Dataframe(
                label="Zero-shot base model",
                wrap=True,
                column_widths=["72px", "300px", "116px", "104px", "84px"],  # rank, item, real click, match, score
                elem_id=f"{ids}compare-base",
                min_width=300,
            )
            tuned_table = gr.Dataframe(
                label="Fine-tuned model (change: places moved by fine-tuning)",
                wrap=True,
                column_widths=["72px", "300px", "116px", "88px", "104px", "150px", "84px"],
                elem_id=f"{ids}compare-tuned",
                min_width=300,
            )
    file.change(lambda path: handlers.inspect_upload(path)[0], file, item_column, api_visibility="private")
    button.click(
        handlers.compare,
        [context, file, pasted, item_column],
        [base_table, tuned_table, outcome],
        api_name=f"{api}compare",
        **MODEL_QUEUE,
    )


def model_tab(handlers: Handlers, served: ServedLog, demo: gr.Blocks, ids: str, api: str) -> None:
    files = handlers.evaluations.files  # names: no server path reaches the page
    with gr.Tab("Model", id="model", elem_id=f"{ids}tab-model"):
        verdict = gr.Markdown(elem_id=f"{ids}model-verdict")
        gr.Markdown(f"{AUC_EXPLAINED}  \n{NDCG_EXPLAINED}", elem_id=f"{ids}model-metrics-explained")
        metrics = gr.Markdown(label="Metrics", elem_id=f"{ids}model-metrics")
        with gr.Row():
            distribution = gr.Plot(label="Score distribution", format="png", min_width=300)
            reliability = gr.Plot(label="Reliability", format="png", min_width=300)
        with gr.Row(visible=bool(files)):  # no click log here to evaluate on: the verdict says how to give one
            choice = gr.Dropdown(
                files,
                value=files[0] if files else None,
                label="Evaluate on another click log",
                scale=3,
                min_width=200,
                elem_id=f"{ids}model-eval-file",
            )
            button = gr.Button("Evaluate", scale=1, min_width=100, elem_id=f"{ids}model-evaluate")
        if files:
            gr.Examples(
                [[name] for name in files],
                inputs=choice,
                example_labels=[f"{name}: {handlers.describe_file(name)}" for name in files],
                label=f"{served.log.name} splits",
            )
        curve = handlers.learning_curve()
        if curve is not None:
            sentence, chart = curve
            with gr.Accordion("How many clicks fine-tuning takes", open=False):
                gr.Markdown(
                    f"{sentence} Held-out group AUC against the training clicks of nested shares of the training "
                    "users; bands: ± one standard deviation over the seeds. "
                    "How it is measured: docs/results.md, drawn by `make curve`.",
                    elem_id=f"{ids}model-curve",
                )
                gr.Image(
                    str(chart),
                    show_label=False,
                    interactive=False,
                    buttons=[],
                    alt_text="Held-out group AUC against training clicks, on both bundled logs",
                    elem_id=f"{ids}model-curve-chart",
                )
        with gr.Accordion("Calibration, threshold and training details", open=False):
            gr.Markdown(handlers.model_card(), elem_id=f"{ids}model-card")
    outputs = [metrics, distribution, reliability]
    button.click(handlers.evaluate, choice, outputs, api_name=f"{api}evaluate", **EVALUATION_QUEUE)
    demo.load(handlers.overview, None, [verdict, *outputs], api_visibility="private")


def _retrain_from(handlers: Handlers) -> str:
    """Where retraining on the feedback starts, named as the operator knows it (never by this machine's path): the
    bundled log's model folder, $MODEL_DIR for another fine-tuned model, else the base model."""
    models, log = handlers.models, handlers.log
    if not models.metadata.fine_tuned:
        return models.base_model_name
    if models.model_dir is not None and Path(models.model_dir).resolve() == log.model_dir.resolve():
        return log.model_folder
    return "$MODEL_DIR"


def feedback_tab(handlers: Handlers, demo: gr.Blocks, ids: str, api: str) -> None:
    """Counts of the stored marks, and how to retrain on them; with a challenger, its comparison with the champion on
    the interleaved lists. The rows and their export only where the operator allows browsing (FEEDBACK_BROWSING): on
    a public Space, contexts are visitors' data."""
    retrain_from = _retrain_from(handlers)
    with gr.Tab("Feedback", id="feedback", elem_id=f"{ids}tab-feedback") as tab:
        gr.Markdown(
            "Marks saved from the Rank tab. On the server, export them as a click log and fine-tune on them:\n\n"
            "```\npython -m recsys.feedback.store export --out clicks.csv --data-dir $FEEDBACK_DIR\n"
            f"python -m finetune.train --train-file clicks.csv --model-name-or-path {retrain_from} "
            "--output-dir models/clicktune-next\n```\n\n"
            "To compare a new model with this one on users' marks, promote it only when it wins, and roll back: "
            "`python -m recsys.loop` (the feedback loop, in the repository's docs/loop.md)."
        )
        overview = gr.Markdown(elem_id=f"{ids}feedback-overview")
        refresh = gr.Button("Refresh", elem_id=f"{ids}feedback-refresh")
        recent = gr.Dataframe(
            label="Recent feedback",
            column_widths=["230px", "90px", "auto", "80px", "300px", "170px"],
            visible=handlers.feedback_browsing,
            elem_id=f"{ids}feedback-table",
        )
        if handlers.feedback_browsing:
            with gr.Row():
                export = gr.Button("Export click log (CSV)", elem_id=f"{ids}feedback-export")
                export_file = gr.File(label="Click log", height=100, scale=2, elem_id=f"{ids}feedback-file")
            export.click(handlers.export_feedback, None, export_file, api_name=f"{api}export_feedback")
        if handlers.models.challenger is not None:
            with gr.Accordion("Champion against challenger: interleaved lists", open=True):
                comparison = gr.Markdown(elem_id=f"{ids}comparison-overview")
                compared = gr.Dataframe(
                    label="Interleaved lists with marks (clicks credited to each model)",
                    visible=handlers.feedback_browsing,
                    elem_id=f"{ids}comparison-table",
                )
            for event in (refresh.click, tab.select, demo.load):
                event(handlers.comparison, None, [comparison, compared], api_visibility="private")
    for event in (refresh.click, tab.select, demo.load):
        event(handlers.feedback_overview, None, [overview, recent], api_visibility="private")


def log_panel(handlers: Handlers, served: ServedLog, demo: gr.Blocks) -> None:
    """One served log: its model, the note where it is zero-shot, and its five tabs."""
    models, ids, api = served.models, served.key and f"{served.key}-", served.key and f"{served.key}_"
    metadata = models.metadata
    kind = "fine-tuned" if metadata.fine_tuned else "zero-shot"
    gr.Markdown(
        f"Model: `{models.version}`, {kind} {metadata.architecture}-encoder from `{models.base_model_name}`, "
        f"for {served.log.name}. **Model** says whether it beats the alternatives.",
        elem_id=f"{ids}model-line",
    )
    if models.note:
        gr.Markdown(f"⚠️ {models.note}", elem_id=f"{ids}model-note")
    with gr.Tabs(elem_id=f"{ids}tabs"):
        rank_tab(handlers, served, ids, api)
        classify_tab(handlers, served, ids, api)
        compare_tab(handlers, served, ids, api)
        model_tab(handlers, served, demo, ids, api)
        feedback_tab(handlers, demo, ids, api)


def build_demo(
    models: ServedModels | Sequence[ServedLog],
    data_dir: str | Path,
    *,
    limits: Limits | None = None,
    eval_file: str | Path | None = EVAL_FILE,
    train_file: str | Path | None = TRAIN_FILE,
    feedback_browsing: bool = False,
    feedback_mirror: Mirror | None = None,
) -> gr.Blocks:
    """The app over the served logs, or over one model on the log it was trained on (with ``eval_file`` and
    ``train_file``); feedback and cached evaluations go to ``data_dir``; visitors may browse and export the stored
    feedback only with ``feedback_browsing``."""
    limits = limits or Limits()
    if isinstance(models, ServedModels):
        files = (str(eval_file) if eval_file else "", str(train_file) if train_file else "")
        models = [serve_log(log_of(models), models, data_dir, *files)]
    store = FeedbackStore(data_dir, mirror=feedback_mirror)
    with gr.Blocks(title="ClickTune", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# ClickTune\nRank items for a context (a query, or a user's recent reading) by how likely the user "
            "is to click them, with a text-relevance model fine-tuned on a click log."
        )
        for served in models:
            handlers = Handlers(
                served.models,
                store,
                served.evaluations,
                limits,
                feedback_browsing=feedback_browsing,
                log=served.log,
                on_reload=functools.partial(_reloaded, served),
            )
            if len(models) == 1:
                log_panel(handlers, served, demo)
                continue
            with gr.Tab(f"{served.log.name}", id=served.log.key, elem_id=f"log-{served.log.key}"):
                log_panel(handlers, served, demo)
    return demo.queue(default_concurrency_limit=4, max_size=64)


def _reloaded(served: ServedLog, models: ServedModels) -> None:
    """After a promotion or a rollback: the log serves the new model, evaluated on its held-out files in the
    background where that was not done before (the Model tab says so meanwhile)."""
    served.models = models
    prepare_in_background([served])


def launch_options(config: AppConfig) -> dict[str, Any]:
    """Keyword arguments of ``demo.launch``: where to serve, the upload limit, and no server-side rendering."""
    return {
        "server_name": config.host,
        "server_port": config.port,
        "max_file_size": int(config.limits.max_upload_mb * 2**20),  # bytes; Gradio refuses larger uploads
        "ssr_mode": False,  # no Node.js here; the page is rendered in the browser
        "css": CSS,
        "show_error": False,  # only gr.Error messages, meant for users, reach the page; a bug's text stays in the log
    }


def create_app(config: AppConfig) -> gr.Blocks:
    """The app over ``config``: loads each served log's model (once), and the challenger for the first log where
    ``CHALLENGER_DIR`` is set, evaluates it on its held-out files where that was not done before, restores and mirrors
    feedback where a Hub dataset is set, and builds the demo."""
    mirror = None
    if config.feedback_repo:
        restore(FeedbackStore(config.data_dir), config.feedback_repo)
        mirror = HubMirror(config.data_dir, config.feedback_repo, config.feedback_push_minutes)
    logs = load_served_logs(config)
    if config.catalog_dir:  # for the first log's model, which it was built for
        first = logs[0]
        first.models = replace(first.models, catalog=load_catalog(config.catalog_dir, first.models, config.limits))
    if config.challenger_dir:  # interleaved with the first log's model in its Rank tab
        logs[0].models = replace(logs[0].models, challenger=load_challenger(config.challenger_dir, config.onnx))
    prepare_in_background(logs)  # the held-out verdicts `make demo` did not compute before
    return build_demo(
        logs,
        config.data_dir,
        limits=config.limits,
        feedback_browsing=config.feedback_browsing,
        feedback_mirror=mirror,
    )
