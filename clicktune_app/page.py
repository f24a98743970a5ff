"""What the tabs share: the queue slots of model calls, the page's CSS, and a candidate list's inputs and examples."""

from __future__ import annotations

import gradio as gr

from recsys.data.candidates import CANDIDATE_SUFFIXES
from recsys.data.contract import ITEM
from recsys.serving.served import ServedLog
from recsys.serving.settings import Limits

MODEL_QUEUE = {"concurrency_id": "model", "concurrency_limit": 1}  # every event that runs a model shares one slot
# An evaluation (tens of seconds) runs in its own slot with its own tokenizers, so that it never holds up ranking.
EVALUATION_QUEUE = {"concurrency_id": "evaluate", "concurrency_limit": 1}
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


def list_inputs(limits: Limits, prefix: str) -> tuple[gr.File, gr.Textbox, gr.Dropdown]:
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


def list_examples(served: ServedLog, inputs: list[gr.components.Component], label: str | None = None) -> None:
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
