"""The Rank tab: a context and a candidate list (or the served catalog) in, the ranked table out, with a mark column
whose ticks **Save feedback** stores. The page and the API reach the same rankings: the page shows a user error
beside the inputs, the API (/rank, /rank_catalog, /feedback) raises it."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from clicktune_app.display import RANK_HEADERS
from clicktune_app.handlers import Handlers
from clicktune_app.page import MODEL_QUEUE, examples_label, list_examples, list_inputs
from clicktune_app.rank_handlers import WEIGHT_COLUMNS
from clicktune_app.widgets import number_input, table_input
from recsys.data.contract import MARK, RANK
from recsys.serving.served import ServedLog

SCORE_LEGEND = (
    "**match**: how well the item matches the context, and **popularity**: how much the item's popularity in the "
    "training log lifts it; each a percentile within the list (▰▰▰▰▰ 100: the most in the list). "
    "**score**: what the list is ranked by (a logit: only its order matters) · **click_probability**: the "
    "calibrated chance of a click · **real click** ✓: the user clicked it (example lists carry the truth)."
)
# mark, rank, item, real click, match, log popularity, score, click_probability, item_id; a file's own columns get
# the default width.
RANK_COLUMN_WIDTHS = ["72px", "72px", "360px", "116px", "104px", "150px", "84px", "176px", "110px"]
# In the browser: the ranked table's marks, one per item in ranked order (however the view is sorted), which is all
# that /feedback takes; the items, their ids and positions stay on the server with the list as shown.
MARKS_OF_TABLE = f"""(table) => {{
    const headers = (table && table.headers) || [], rows = (table && table.data) || [];
    const mark = headers.indexOf({MARK!r}), rank = headers.indexOf({RANK!r});
    const ranked = rows.map((row) => [Number(row[rank]), row[mark] === true || row[mark] === "true"]);
    ranked.sort((a, b) => a[0] - b[0]);
    return [ranked.map((pair) => pair[1])];
}}"""


def rank_tab(handlers: Handlers, served: ServedLog, ids: str, api: str) -> None:
    """The tab's components, wired to :class:`~clicktune_app.rank_handlers.RankHandlers` and the feedback handler."""
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
                file, pasted, item_column = list_inputs(handlers.limits, f"{ids}rank")
            with gr.Column(scale=2, min_width=280):
                match_only, interleaved, weights, top_k = _ranking_options(handlers, ids)
                rank_button = gr.Button("Rank", variant="primary", elem_id=f"{ids}rank-button")
                catalog_button = _catalog_button(handlers, ids)
                error = gr.Markdown(elem_id=f"{ids}rank-error")
        list_examples(served, [context, file, pasted], examples_label(served))
        status = gr.Markdown(label="Status", elem_id=f"{ids}rank-status")
        ranked = _ranked_table(handlers, ids)
        gr.Markdown(SCORE_LEGEND, elem_id=f"{ids}rank-legend")
        shown_list = gr.State()  # the list as shown, kept on the server for the feedback on it
        with gr.Row():
            save_button = gr.Button("Save feedback", elem_id=f"{ids}save-feedback")
            download = gr.File(label="Ranked list (CSV)", elem_id=f"{ids}rank-download")
        feedback_status = gr.Markdown(label="Feedback status", elem_id=f"{ids}feedback-status")
        marks = gr.JSON(visible=False, elem_id=f"{ids}marks")  # the ranked table's marks, read in the browser
        # Scripts call /rank and /rank_catalog, which raise what the page shows beside the inputs; hidden buttons.
        api_rank = gr.Button(visible=False, elem_id=f"{ids}rank-api")
        api_catalog = gr.Button(visible=False, elem_id=f"{ids}rank-catalog-api")
    file.change(handlers.inspect_upload, file, [item_column, weights], api_visibility="private")
    inputs = [context, file, pasted, item_column, weights, top_k, match_only, interleaved]
    outputs = [ranked, download, status, shown_list]
    rank_button.click(handlers.rank_in_page, inputs, [*outputs, error], api_visibility="private", **MODEL_QUEUE)
    api_rank.click(handlers.rank, inputs, outputs, api_name=f"{api}rank", **MODEL_QUEUE)
    catalog_button.click(
        handlers.rank_catalog_in_page, [context, top_k], [*outputs, error], api_visibility="private", **MODEL_QUEUE
    )
    api_catalog.click(handlers.rank_catalog, [context, top_k], outputs, api_name=f"{api}rank_catalog", **MODEL_QUEUE)
    save_button.click(None, ranked, marks, js=MARKS_OF_TABLE, api_visibility="private").then(
        handlers.feedback, [marks, shown_list], [feedback_status, shown_list], api_name=f"{api}feedback"
    )


def _ranking_options(handlers: Handlers, ids: str) -> tuple[gr.Checkbox, gr.Checkbox, gr.Dataframe, gr.Number]:
    """How to rank: by the match alone, interleaved with the challenger (only where one is served), blended with a
    file's numeric columns, and how many items to show."""
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
            label="Top k", value=10, precision=0, minimum=1, maximum=handlers.limits.max_items,
            elem_id=f"{ids}rank-top-k",
        )
    )  # fmt: skip
    return match_only, interleaved, weights, top_k


def _catalog_button(handlers: Handlers, ids: str) -> gr.Button:
    """Rank the served catalog (CATALOG_DIR): shown only where it is set."""
    catalog = handlers.models.catalog
    return gr.Button(
        f"Rank against the catalog ({len(catalog):,} items)" if catalog is not None else "",
        visible=catalog is not None,
        elem_id=f"{ids}rank-catalog-button",
    )


def _ranked_table(handlers: Handlers, ids: str) -> gr.Dataframe:
    """The ranked items: only the mark column is editable, ticked for the items the user would click."""
    extra = handlers.limits.max_extra_columns  # the ranked table's declared columns beyond RANK_HEADERS
    return gr.Dataframe(
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
