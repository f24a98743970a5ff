"""What a front end serves: one model per click log, each with its held-out files, examples and evaluations.

With ``MODEL_DIR`` unset, the app serves the model that ``make demo`` trained for each bundled log
(``recsys.defaults.BUNDLED_LOGS``) whose folder holds one, in that order; with none trained, the
zero-shot base model on the first log. With ``MODEL_DIR`` set, it serves that one model, on the
bundled log it was trained on (else the first), with ``EVAL_FILE`` and ``TRAIN_FILE`` where set.

    python -m recsys.serving.served     # evaluate each served model on its held-out files, for the Model tab's verdicts

``make demo`` runs it once per trained model, so that the app opens with its verdicts; the app runs
what is still missing in the background after it starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.cli import run_cli
from recsys.defaults import BUNDLED_LOGS, BundledLog, Env
from recsys.errors import UserError
from recsys.evaluation.results import Evaluation
from recsys.model.artifact import is_model_folder
from recsys.serving.evaluations import Evaluations
from recsys.serving.service import ServedModels, load_served_models
from recsys.serving.settings import AppConfig

if TYPE_CHECKING:
    from recsys.model.relevance_model import Progress

logger = logging.getLogger(__name__)

EXAMPLES_FILE = "examples.json"


@dataclass
class ServedLog:
    """A click log the app serves a model for: the model, its evaluations and the log's examples."""

    log: BundledLog  # names, files and the words for its items
    models: ServedModels
    evaluations: Evaluations
    examples: dict[str, Any] = field(default_factory=dict)  # examples.json: "rank" lists and "classify" rows
    key: str = ""  # what its element ids and API names carry: "" for the first log, else the log's key

    @property
    def held_out(self) -> list[str]:
        """The offered click logs that training never saw, by name: the first held-out file of the log first."""
        held_out = {path.resolve() for path in self.log.held_out_files}
        return [name for name, path in self.evaluations.paths.items() if path.resolve() in held_out]

    def held_out_evaluations(self, progress: Progress | None = None) -> list[Evaluation]:
        """The served model's evaluation on each held-out file: cached, or run now (once per model version)."""
        return [self.evaluations.run(name, progress) for name in self.held_out]


def read_examples(log: BundledLog) -> dict[str, Any]:
    """The log's examples.json, with each file's path resolved; {} where the log's examples are not here."""
    path = log.examples_dir / EXAMPLES_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def log_of(models: ServedModels) -> BundledLog:
    """The bundled log a model was trained on (its training file's folder), else the first bundled log."""
    trained_on = models.metadata.training.get("train_file")
    for log in BUNDLED_LOGS:
        if trained_on and Path(trained_on).resolve().parent == log.data.resolve():
            return log
    return BUNDLED_LOGS[0]


def retrain_from(models: ServedModels, log: BundledLog) -> str:
    """Where retraining on the feedback starts, named as the operator knows it (never by this machine's path): the
    bundled log's model folder, $MODEL_DIR for another fine-tuned model, else the base model."""
    if not models.metadata.fine_tuned:
        return models.base_model_name
    if models.model_dir is not None and Path(models.model_dir).resolve() == log.model_dir.resolve():
        return log.model_folder
    return f"${Env.MODEL_DIR}"


def serve_log(
    log: BundledLog,
    models: ServedModels,
    data_dir: str | Path,
    eval_file: str | None = None,
    train_file: str | None = None,
    key: str = "",
) -> ServedLog:
    """``models`` on ``log``, its evaluations kept in ``data_dir``: ``eval_file`` and ``train_file`` where given
    ("": none), else the log's own first held-out file and training file."""
    eval_file = str(log.held_out_files[0]) if eval_file is None else eval_file
    train_file = str(log.train_file) if train_file is None else train_file
    bundled = (*log.held_out_files, log.valid_file)
    evaluations = Evaluations(models, data_dir, eval_file or None, train_file or None, bundled)
    return ServedLog(log, models, evaluations, read_examples(log), key)


def load_served_logs(config: AppConfig) -> list[ServedLog]:
    """The logs the app serves, each with its model loaded once (module docstring)."""
    files = (config.data_dir, config.eval_file, config.train_file)
    if config.model_dir is not None:
        models = load_served_models(config.model_dir, config.onnx)
        return [serve_log(log_of(models), models, *files)]
    trained = [log for log in BUNDLED_LOGS if is_model_folder(log.model_dir)] or [BUNDLED_LOGS[0]]
    return [
        serve_log(log, load_served_models(log.model_dir, config.onnx), *files, key="" if n == 0 else log.key)
        for n, log in enumerate(trained)
    ]


def missing_evaluations(logs: list[ServedLog]) -> list[tuple[ServedLog, str]]:
    """The held-out files each served model has no cached evaluation on yet."""
    return [(served, name) for served in logs for name in served.held_out if served.evaluations.cached(name) is None]


def prepare(logs: list[ServedLog]) -> None:
    """Evaluate each served model on its held-out files where no evaluation is cached yet, so that the Model tab
    opens with its verdict (a minute or two per log on two cores, once per model version)."""
    for served, name in missing_evaluations(logs):
        logger.info("evaluating the %s model on %s against the baselines (once per model)", served.log.name, name)
        try:
            served.evaluations.run(name)
        except UserError as err:  # a held-out file the model cannot be evaluated on: say so, and serve
            logger.warning("could not evaluate the %s model on %s: %s", served.log.name, name, err)


def prepare_in_background(logs: list[ServedLog]) -> threading.Thread | None:
    """:func:`prepare` in a thread of its own where anything is missing (the page says so until it is done)."""
    if not missing_evaluations(logs):
        return None
    thread = threading.Thread(target=prepare, args=(logs,), name="held-out-evaluations", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog="python -m recsys.serving.served",
        description="Evaluate each model the app serves on its held-out files against the baselines, and cache the "
        "results in FEEDBACK_DIR, so that the app's Model tab opens with its verdicts. The app's settings come from "
        "the environment (python app.py --help).",
    ).parse_args(argv)
    prepare(load_served_logs(AppConfig.from_env()))


if __name__ == "__main__":
    run_cli(main)
