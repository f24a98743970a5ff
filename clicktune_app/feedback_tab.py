"""The Feedback tab: counts of the stored marks and how to retrain on them; with a challenger, its comparison with the
champion on the interleaved lists."""

from __future__ import annotations

import gradio as gr

from clicktune_app.handlers import Handlers
from recsys.feedback.store import retrain_commands
from recsys.serving.served import retrain_from


def feedback_tab(handlers: Handlers, demo: gr.Blocks, ids: str, api: str) -> None:
    """Counts of the stored marks, and how to retrain on them; with a challenger, its comparison with the champion on
    the interleaved lists. The rows and their export only where the operator allows browsing (FEEDBACK_BROWSING): on
    a public Space, contexts are visitors' data."""
    commands = retrain_commands(retrain_from(handlers.models, handlers.log))
    with gr.Tab("Feedback", id="feedback", elem_id=f"{ids}tab-feedback") as tab:
        gr.Markdown(
            "Marks saved from the Rank tab. On the server, export them as a click log and fine-tune on them:\n\n"
            f"```\n{commands}\n```\n\n"
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
