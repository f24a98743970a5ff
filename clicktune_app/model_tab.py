"""The Model tab: is the served model better than the alternatives? Its verdict per held-out file, metrics against
the baselines with two plots, an evaluation on another click log, the learning curve and the model card."""

from __future__ import annotations

import gradio as gr

from clicktune_app.handlers import Handlers
from clicktune_app.page import EVALUATION_QUEUE
from recsys.evaluation.verdict import AUC_EXPLAINED, NDCG_EXPLAINED
from recsys.serving.served import ServedLog


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
