"""Loading a model to score with: a saved folder (checked, then read once) or a base model, and its encoder.

:func:`load_scorer` is what the app, the evaluator, publishing and the commands load a model with; it serves a
bi-encoder folder's checked ONNX export where ``onnx`` allows one (``recsys.scoring.onnx_runtime``), else PyTorch.
:func:`check_model_name` refuses a mistyped folder before it goes to the Hub; :func:`zero_shot_of` is a fine-tuned
model's base, reading texts as long.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recsys.errors import UserError
from recsys.model.artifact import DEFAULT_MODEL, ModelMetadata, is_hub_id, model_version, resolve_model_path
from recsys.model.checks import check_model_folder
from recsys.model.priors import ItemPriors
from recsys.model.text_lengths import choose_max_length
from recsys.scoring.onnx_runtime import ANY_ONNX, serving_encoder
from recsys.scoring.scorer import SCORE_BATCH, Scorer

logger = logging.getLogger(__name__)


def load_scorer(
    name_or_path: str | None = None,
    *,
    max_length: int | None = None,
    log: pd.DataFrame | None = None,
    onnx: Sequence[str] = ANY_ONNX,
) -> Scorer:
    """Load a saved ClickTune model, or a base model as a zero-shot bi-encoder.

    A saved model reads texts up to the ``max_length`` it was trained with. A base model reads up to
    ``max_length`` where given (a fine-tuned model's, so that the two compare like for like), else up to the
    length chosen from ``log``'s texts as training would choose it (``recsys.model.text_lengths``), else 128 tokens.

    A local folder is checked before anything loads (``recsys.model.checks.check_model_folder``, which first finishes
    a save that a kill interrupted past its commit point): a damaged or unfinished one is refused with a message
    that names the file and the fix, never served. What the check read is what loads.

    ``onnx`` are the precisions of the folder's ONNX export that may be served, preferred first
    (``recsys.scoring.onnx_runtime.onnx_precisions``; the app's setting ``CLICKTUNE_ONNX``); () serves PyTorch.
    """
    from recsys.model.architectures import load_checked_model  # imported here: a command's --help loads no torch

    path = resolve_model_path(name_or_path)
    check_model_name(path)
    local = Path(path).is_dir()
    saved = check_model_folder(path) if local else None
    metadata = saved or ModelMetadata(base_model=str(name_or_path or DEFAULT_MODEL))
    model, tokenizer = load_checked_model(metadata.architecture, path, saved)
    if saved is None and (max_length or log is not None):
        metadata.max_length = max_length or choose_max_length(log, tokenizer, metadata.architecture).max_length
    priors = ItemPriors.load(path) if metadata.blend else None  # the check refused a blend without them
    encoder = serving_encoder(path, metadata, SCORE_BATCH, onnx) if local else None
    kind = "fine-tuned" if metadata.fine_tuned else "zero-shot"
    how = f", encoded with {encoder.name}" if encoder else ""
    logger.info(
        "loaded %s %s model from %s (texts up to %d tokens)%s", kind, metadata.architecture, path,
        metadata.max_length, how,
    )  # fmt: skip
    version = model_version(path if local else None, metadata)
    return Scorer(model, tokenizer, metadata, priors, version=version, encoder=encoder)


def check_model_name(name: str) -> None:
    """Refuse a model name that is neither a folder here nor a Hub id: a mistyped path (``models/clicktun``, whose
    ``models/`` is a folder here) would otherwise go to the Hub, and end a minute later in a network error."""
    parts = Path(name).parts
    if Path(name).is_dir() or len(parts) < 2:  # a bare name: a Hub id of old (bert-base-uncased)
        return
    if is_hub_id(name) and not Path(parts[0]).is_dir():
        return
    here = Path(name).parent
    beside = sorted(p.name for p in here.iterdir() if p.is_dir()) if here.is_dir() else []
    hint = f" ({here} holds {', '.join(beside[:8])})" if beside else ""
    raise UserError(f"{name}: no such model folder{hint}; give a saved model's folder, or a Hub id as OWNER/NAME")


def zero_shot_of(scorer: Scorer, onnx: Sequence[str] = ANY_ONNX) -> Scorer:
    """The zero-shot base model of a fine-tuned scorer, reading texts as long as the fine-tuned model reads them;
    a zero-shot scorer is its own."""
    metadata = scorer.metadata
    if not metadata.fine_tuned:
        return scorer
    return load_scorer(metadata.base_model, max_length=metadata.max_length, onnx=onnx)
