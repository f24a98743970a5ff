"""ClickTune's Gradio layout: one panel per served click log (``recsys.serving.served``), chosen at the top, and in
it one module per tab (``rank_tab``, ``classify_compare_tabs``, ``model_tab``, ``feedback_tab``), each wiring its
components to the handlers (``clicktune_app.handlers``); the rules live in ``recsys.serving``. The first log's API
endpoints are /rank, /classify, ...; another log's carry its key (/movielens_rank, ...). Models are loaded at start,
and again when a promotion or a rollback (``python -m recsys.loop``) replaces the served folder's model
(``recsys.serving.service.LiveModels``); where a model was not evaluated on its held-out files before (``python -m
recsys.serving.served``, which ``make demo`` runs), that runs in the background, and the Model tab says so until its
verdict is ready. Model calls share one queue slot (``clicktune_app.page.MODEL_QUEUE``): the tokenizer is not
thread-safe, and two CPU cores gain nothing from running two at once; an evaluation has a slot of its own.
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

from clicktune_app.classify_compare_tabs import classify_tab, compare_tab
from clicktune_app.feedback_tab import feedback_tab
from clicktune_app.handlers import Handlers
from clicktune_app.model_tab import model_tab
from clicktune_app.page import CSS
from clicktune_app.rank_tab import rank_tab
from recsys.defaults import EVAL_FILE, TRAIN_FILE
from recsys.feedback.hub_mirror import HubMirror, restore
from recsys.feedback.store import FeedbackStore, Mirror
from recsys.serving.served import ServedLog, load_served_logs, log_of, prepare_in_background, serve_log
from recsys.serving.service import ServedModels, load_catalog, load_challenger
from recsys.serving.settings import AppConfig, Limits


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
