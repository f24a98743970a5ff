"""Evaluations of the served model on the click logs a front end offers, cached on disk per model version, so that
a log evaluated once is read back, not run again.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.data.contract import read_clicks, validate_clicks
from recsys.data.tables import read_table
from recsys.defaults import HELD_OUT_FILES, VALID_FILE
from recsys.evaluation.evaluator import evaluate
from recsys.evaluation.results import Evaluation
from recsys.scoring.scorer import Scorer
from recsys.serving.service import InputError, ServedModels

if TYPE_CHECKING:
    from recsys.model.relevance_model import Progress

logger = logging.getLogger(__name__)

# Cached evaluations, in the feedback folder so that they outlive a restart; v3: Evaluation's JSON with text_alone.
EVALUATIONS_FOLDER = "evaluations/v3"


class Evaluations:
    """Evaluations of the served model on the click logs a front end offers, cached on disk per model version.

    The logs are offered by name only (no server path reaches a client). An evaluation that was run
    before for this model version is read back, not run again; one that runs uses its own copies of
    the tokenizers, so that it can run beside ranking without sharing a tokenizer across threads.
    """

    def __init__(
        self,
        models: ServedModels,
        data_dir: str | Path,
        eval_file: str | None,
        train_file: str | None,
        bundled: Sequence[Path] = (*HELD_OUT_FILES, VALID_FILE),
    ):
        self.models, self.train_file = models, train_file
        self.folder = Path(data_dir) / EVALUATIONS_FOLDER
        # The configured click log first, then the bundled held-out and validation splits, where present.
        offered = [Path(f) for f in ([eval_file, *bundled] if eval_file else [])]
        self.paths: dict[str, Path] = {}
        for path in offered:
            if path.is_file() and path.resolve() not in {p.resolve() for p in self.paths.values()}:
                name = path.name if path.name not in self.paths else f"{path.parent.name}/{path.name}"
                self.paths[name] = path

    @property
    def files(self) -> list[str]:
        """The names of the offered click logs, the default first."""
        return list(self.paths)

    def _cache(self, name: str, models: ServedModels | None = None) -> Path:
        key = f"{(models or self.models).version}-{name}"
        return self.folder / ("".join(c if c.isalnum() or c in "-_.@" else "_" for c in key) + ".json")

    def cached(self, name: str | None = None, models: ServedModels | None = None) -> Evaluation | None:
        """The saved evaluation on ``name`` (default: the first log), where one was run for this model version (of
        ``models``, default the served ones)."""
        if not self.files:
            return None
        path = self._cache(name or self.files[0], models)
        try:
            return Evaluation.load(path)
        except (ValueError, KeyError, TypeError) as err:  # damaged, or written by another version: evaluate again
            logger.warning("ignoring the cached evaluation %s: %s", path.name, err)
            return None

    def run(self, name: str | None, progress: Progress | None = None) -> Evaluation:
        """The evaluation on one of :attr:`files` (the first by default) against the baselines: cached, or run now."""
        if not self.files:
            raise InputError("No click log to evaluate on: set EVAL_FILE.")
        name = name or self.files[0]
        if name not in self.paths:
            raise InputError(f"Pick one of the app's click logs: {', '.join(self.files)}")
        models = self.models  # one model throughout, should a reload (LiveModels) replace it meanwhile
        cached = self.cached(name, models)
        if cached is not None:
            return cached
        path = self.paths[name]
        frame = validate_clicks(read_table(path, name), source=name)
        train = read_clicks(self.train_file) if self.train_file else None
        scorer = own_tokenizer(models.scorer)
        base = own_tokenizer(models.base) if models.base else scorer
        evaluation = evaluate(scorer, frame, train, zero_shot=base, data_file=name, progress=progress)
        evaluation.save(self._cache(name, models), per_row=True)
        return evaluation


def own_tokenizer(scorer: Scorer) -> Scorer:
    """The same model with a copy of its tokenizer: Hugging Face's fast tokenizers must not be shared by threads."""
    return Scorer(scorer.model, copy.deepcopy(scorer.tokenizer), scorer.metadata, scorer.priors)
