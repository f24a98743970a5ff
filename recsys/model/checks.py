"""Checking a model folder before it is served, evaluated or trained from.

A damaged or unfinished folder is refused with one message naming the file and the fix
(:class:`recsys.model.artifact.ModelFolderError`), rather than served silently wrong: a vocabulary that is
not the model's, a head that would start at random, fine-tuned weights labelled zero-shot, a NaN
threshold, a truncated safetensors file, a run that did not finish.

The weights and ``config.json`` are checked by ``recsys.model.config_checks`` (which weights load, and the bounds on
the config); the tokenizer and the architecture here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.model.artifact import (
    BI,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    CROSS,
    EVALUATION_FILE,
    METADATA_FILE,
    PICKLE_WEIGHTS_FILES,
    PRIORS_FILE,
    TRAINING_METRICS_FILE,
    WEIGHTS_PATTERN,
    ModelFolderError,
    ModelMetadata,
    is_number,
    read_json,
)
from recsys.model.commits import recover_commit
from recsys.model.config_checks import check_config, check_weights, longest_input

# The tokenizer's vocabulary, in one of these (a tokenizer_config.json alone builds a tokenizer of special tokens).
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model")
# A tokenizer may cover a little less than the embeddings (padded to a multiple of 64 or 128), never much less.
MIN_VOCABULARY_SHARE = 0.9
# Files written by ClickTune's training only: beside a model without clicktune.json, they mean fine-tuned weights.
TRAINING_FILES = (TRAINING_METRICS_FILE, PRIORS_FILE, CHECKPOINTS_DIR)
# Files that every reader parses as JSON; one that does not parse is named.
JSON_FILES = (
    CONFIG_FILE,
    TRAINING_METRICS_FILE,
    EVALUATION_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "generation_config.json",
)


def _resume(path: Path) -> str:
    command = f"python -m finetune.train --resume --output-dir {path}"
    return f"finish it with `{command}` and the run's other flags, or train again"


def check_model_folder(path: str | Path) -> ModelMetadata | None:
    """Refuse a damaged or unfinished model folder; return its metadata (None: a base model, served zero-shot).

    A save that a kill interrupted after its commit point is finished first (:func:`recover_commit`).
    Then, one message naming the file and the fix for the first of: no config or weights, a JSON file
    that does not parse, metadata values that serving cannot use, fine-tuned weights without
    ``clicktune.json`` or without the ``metrics.json`` that a finished run writes last, no
    ``model.safetensors`` (or a pickle in its place, unless allowed), truncated safetensors or shards
    outside the folder, a config of another model type or with sizes out of bounds or unlike the weights'
    (``max_length`` beyond its positions), a tokenizer that is not the model's, an architecture that does
    not fit the weights, and blend weights without the item priors they blend.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(path, "no such folder", "give a folder that `python -m finetune.train` wrote")
    recover_commit(path)
    pickles = [name for name in PICKLE_WEIGHTS_FILES if (path / name).is_file()]
    if not (path / CONFIG_FILE).is_file() or not (any(path.glob(WEIGHTS_PATTERN)) or pickles):
        if (path / CHECKPOINTS_DIR).is_dir():
            raise ModelFolderError(
                path, "training into this folder did not finish (checkpoints, no model)", _resume(path)
            )
        raise ModelFolderError(
            path,
            f"no {CONFIG_FILE} and {WEIGHTS_PATTERN} here",
            "give a folder that `python -m finetune.train --output-dir` wrote",
        )
    files = {name: read_json(path / name) for name in JSON_FILES if (path / name).is_file()}
    metadata = ModelMetadata.load(path)
    if metadata is None:
        found = [name for name in TRAINING_FILES if (path / name).exists()]
        if found:
            raise ModelFolderError(
                path / METADATA_FILE,
                f"missing, though {', '.join(found)} show that training wrote this folder: its fine-tuned "
                "weights would be served as zero-shot, without their calibration and threshold",
                f"restore {METADATA_FILE} from a copy of the folder, or train again",
            )
    elif metadata.fine_tuned and TRAINING_METRICS_FILE not in files:
        raise ModelFolderError(
            path, f"training did not finish ({TRAINING_METRICS_FILE}, written last, is missing)", _resume(path)
        )
    settings = check_config(path, files[CONFIG_FILE], check_weights(path, pickles))
    if metadata is not None and metadata.max_length > longest_input(settings):
        raise ModelFolderError(
            path / METADATA_FILE,
            f"max_length is {metadata.max_length}, but the model reads at most {longest_input(settings)} tokens "
            "(its max_position_embeddings)",
            f"restore {METADATA_FILE} from the run that wrote it, or retrain",
        )
    _check_tokenizer(path, files[CONFIG_FILE], files)
    if metadata is not None:
        _check_architecture(path, files[CONFIG_FILE], metadata)
        if metadata.blend and not (path / PRIORS_FILE).is_file():
            raise ModelFolderError(
                path / PRIORS_FILE,
                f"the model blends item priors into its score ({', '.join(metadata.blend)}) but its "
                f"{PRIORS_FILE} is missing",
            )
    return metadata


def vocabulary_size(path: Path, files: dict[str, Any]) -> int | None:
    """How many token ids the folder's tokenizer files define (None where only a sentencepiece model says)."""
    if isinstance(files.get("tokenizer.json"), dict):
        data = files["tokenizer.json"]
        model = data.get("model") if isinstance(data.get("model"), dict) else {}
        vocab = model.get("vocab")
        ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab))) if vocab else []
        ids += [token.get("id") for token in data.get("added_tokens") or [] if isinstance(token, dict)]
    elif (path / "vocab.txt").is_file():
        with (path / "vocab.txt").open(encoding="utf-8", errors="replace") as handle:
            return sum(1 for _ in handle)
    elif isinstance(files.get("vocab.json"), dict):
        added = files.get("added_tokens.json")
        ids = [*files["vocab.json"].values(), *(added.values() if isinstance(added, dict) else ())]
    else:
        return None  # a sentencepiece model: counted once the tokenizer loads
    ids = [i for i in ids if isinstance(i, int)]
    return max(ids) + 1 if ids else 0


def check_vocabulary(path: str | Path, tokens: int, embeddings: int) -> None:
    """A tokenizer fits its model: no id beyond the embeddings, and most of them covered."""
    fix = "copy the model folder's tokenizer files (tokenizer.json, vocab.txt, tokenizer_config.json) again, or retrain"
    if tokens > embeddings:
        raise ModelFolderError(
            path, f"the tokenizer has {tokens} tokens but the model embeds only {embeddings}: not its tokenizer", fix
        )
    if tokens < MIN_VOCABULARY_SHARE * embeddings:
        raise ModelFolderError(
            path,
            f"the tokenizer has {tokens} tokens but the model embeds {embeddings}: its vocabulary was cut or replaced",
            fix,
        )


def _check_tokenizer(path: Path, config: Any, files: dict[str, Any]) -> None:
    if not any(any(path.glob(pattern)) for pattern in VOCABULARY_FILES):
        raise ModelFolderError(
            path,
            f"no tokenizer vocabulary ({', '.join(VOCABULARY_FILES)}); a tokenizer without one knows only its "
            "special tokens",
        )
    tokens = vocabulary_size(path, files)
    embeddings = config.get("vocab_size") if isinstance(config, dict) else None
    if tokens is not None and is_number(embeddings):
        check_vocabulary(path, tokens, int(embeddings))


def _check_architecture(path: Path, config: Any, metadata: ModelMetadata) -> None:
    """The saved weights are the architecture that ``clicktune.json`` names: a missing head would score at random."""
    heads = (config.get("architectures") or []) if isinstance(config, dict) else []
    classifier = any(str(head).endswith("ForSequenceClassification") for head in heads)
    where, why = path / CONFIG_FILE, f"but {METADATA_FILE} says {metadata.architecture}"
    if metadata.architecture == CROSS and heads and not classifier:
        raise ModelFolderError(
            where, f"holds a plain encoder ({heads[0]}) without the cross-encoder's classification head, {why}"
        )
    if metadata.architecture == BI and classifier:
        raise ModelFolderError(where, f"holds a sequence-classification model ({heads[0]}), {why}")
    labels = config.get("id2label") if isinstance(config, dict) else None
    if metadata.architecture == CROSS and isinstance(labels, dict) and len(labels) != 1:
        raise ModelFolderError(where, f"has {len(labels)} labels; a cross-encoder scores with one logit")
