"""The Classify tab (one item's click probability at the model's threshold) and the Compare tab (a list ranked by
the zero-shot base model beside the served model)."""

from __future__ import annotations

import gradio as gr

from clicktune_app.handlers import Handlers
from clicktune_app.page import MODEL_QUEUE, examples_label, list_examples, list_inputs
from recsys.publish.card import describe_threshold
from recsys.serving.served import ServedLog


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
                file, pasted, item_column = list_inputs(handlers.limits, f"{ids}compare")
        button = gr.Button("Compare", variant="primary", elem_id=f"{ids}compare-button")
        list_examples(served, [context, file, pasted], examples_label(served))
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
