"""The Model tab's handlers: whether the served model beats the alternatives (a verdict per held-out file), its
metrics against the baselines with two plots, its learning curve and its model card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gradio as gr
from matplotlib.figure import Figure

from clicktune_app.handler_base import HandlerBase, user_errors
from recsys.defaults import CURVE_CHART, CURVE_FILE
from recsys.evaluation.evaluator import format_table
from recsys.evaluation.plots import reliability_curve, score_distribution
from recsys.evaluation.results import Evaluation
from recsys.evaluation.verdict import curve_sentence, judge, label
from recsys.publish.card import build_model_card, describe_threshold

logger = logging.getLogger(__name__)

Plots = tuple[str, Figure | None, Figure | None]


def without_evaluation(card: str) -> str:
    """A model card for the Model tab: its own evaluation section (what the folder was published with) gives way
    to the tab's, which the page shows above it, so that the two never disagree."""
    start = card.find("\n## Evaluation")
    if start < 0:
        return card
    end = card.find("\n## ", start + 1)
    above = "\n## Evaluation\n\nThe verdict and the table against the baselines are at the top of this tab.\n"
    return card[:start] + above + (card[end:] if end >= 0 else "")


class ModelHandlers(HandlerBase):
    """The Model tab's handlers."""

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
