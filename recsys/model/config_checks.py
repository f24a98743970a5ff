"""A model folder's weights and ``config.json``, checked before anything is built from them.

Only the weights that the folder's layout names are loaded: ``model.safetensors``, or the shards that
``model.safetensors.index.json`` names in the folder, each holding the bytes its header promises. A torch pickle
(``pytorch_model.bin``) can run code when it is loaded, so a folder whose only weights are one is refused unless the
operator allows pickles (``CLICKTUNE_ALLOW_PICKLE=1``, :func:`pickle_allowed`). ``config.json`` must name a model
type of :data:`SUPPORTED_MODEL_TYPES`, sizes within :data:`CONFIG_LIMITS`, and sizes that agree with the tensors that
the safetensors headers describe (read without loading them), so that a hand-edited config never makes transformers
allocate what the weights do not hold. Each refusal is a ``ModelFolderError`` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recsys.data.contract import FALSE, TRUE
from recsys.defaults import Env
from recsys.errors import UserError
from recsys.model.artifact import (
    CONFIG_FILE,
    MAX_TOKENS,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
    WEIGHTS_PATTERN,
    ModelFolderError,
    read_json,
)

# BERT-family encoders that transformers builds with AutoModel and a sequence-classification head, whose configs
# name their sizes as BERT's does. RoBERTa and its kin number positions from after the padding id.
SUPPORTED_MODEL_TYPES = ("bert", "electra", "roberta", "xlm-roberta", "mpnet")
OFFSET_POSITION_TYPES = ("roberta", "xlm-roberta", "mpnet")
# Upper bounds on config.json's sizes (each a whole number of at least 1), above every model of those types:
# transformers allocates from them before it reads a weight.
CONFIG_LIMITS = {
    "vocab_size": 1_000_000,
    "hidden_size": 8192,
    "num_hidden_layers": 96,
    "num_attention_heads": 128,
    "intermediate_size": 4 * 8192,
    "max_position_embeddings": MAX_TOKENS,
    "type_vocab_size": 16,
}
# Where a size shows in the safetensors headers: (config key, tensor name pattern, which dimension).
TENSOR_SIZES = (
    ("vocab_size", re.compile(r"(^|\.)embeddings\.word_embeddings\.weight$"), 0),
    ("max_position_embeddings", re.compile(r"(^|\.)embeddings\.position_embeddings\.weight$"), 0),
    ("intermediate_size", re.compile(r"(^|\.)layer\.0\.intermediate\.dense\.weight$"), 0),
    ("hidden_size", re.compile(r"(^|\.)layer\.0\.intermediate\.dense\.weight$"), 1),
)
_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_CONFIG_FIX = f"restore {CONFIG_FILE} from the model's source, or copy the whole model folder again"


def pickle_allowed(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``CLICKTUNE_ALLOW_PICKLE`` lets a folder's torch pickle (``pytorch_model.bin``) load: unset or 0, no."""
    text = (os.environ if env is None else env).get(Env.ALLOW_PICKLE, "").strip().lower()
    if text in ("", *FALSE):
        return False
    if text in TRUE:
        return True
    raise UserError(
        f"{Env.ALLOW_PICKLE}={text!r} must be 1 (load a folder's pytorch_model.bin, a pickle that can run code, "
        "where it has no model.safetensors) or 0 (refuse such a folder)"
    )


def check_weights(path: Path, pickles: list[str]) -> dict[str, list[int]]:
    """The weights that the layout names are here, whole, and inside the folder; the shapes of their tensors.

    ``model.safetensors``, else ``model.safetensors.index.json`` and the shards it names (file names of this
    folder), else a pickle where :func:`pickle_allowed` (no shapes: a pickle is not read before it loads). Every
    safetensors file holds the bytes its header promises.
    """
    if (path / WEIGHTS_FILE).is_file():
        loaded = [path / WEIGHTS_FILE]
    elif (path / WEIGHTS_INDEX_FILE).is_file():
        loaded = [path / shard for shard in _shards(path / WEIGHTS_INDEX_FILE)]
    elif pickles and pickle_allowed():
        loaded = []
    elif pickles:
        raise ModelFolderError(
            path,
            f"no {WEIGHTS_FILE}, only {pickles[0]}, a torch pickle, which can run code when it is loaded",
            f"convert it to safetensors (transformers' save_pretrained writes {WEIGHTS_FILE}), or, if you trust "
            f"its source, set {Env.ALLOW_PICKLE}=1 to load it",
        )
    else:
        found = ", ".join(sorted(p.name for p in path.glob(WEIGHTS_PATTERN)))
        raise ModelFolderError(
            path,
            f"no {WEIGHTS_FILE} (nor {WEIGHTS_INDEX_FILE}), the weights that transformers loads; "
            f"{found} is not the model's weight file",
        )
    shapes: dict[str, list[int]] = {}
    for weights in sorted({*path.glob(WEIGHTS_PATTERN), *loaded}):
        header = _safetensors_header(weights)
        if weights in loaded:
            shapes |= {k: t.get("shape") for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)}
    return shapes


def _shards(index: Path) -> list[str]:
    """The weight files that a sharded index names: file names of its folder, present, never a path elsewhere."""
    data = read_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFolderError(index, "has no weight_map of tensor names to weight files")
    shards = sorted(set(map(str, weight_map.values())))
    for shard in shards:
        if Path(shard).name != shard or shard in (".", "..") or not shard.endswith(".safetensors"):
            raise ModelFolderError(index, f"names {shard!r}, which is not a safetensors file of this folder")
    missing = [shard for shard in shards if not (index.parent / shard).is_file()]
    if missing:
        raise ModelFolderError(index, f"names weight files that are missing: {', '.join(missing)}")
    return shards


def _safetensors_header(weights: Path) -> dict[str, Any]:
    """A safetensors file's header (its tensors' names, shapes and offsets), once its bytes are known to be there."""
    size = weights.stat().st_size
    with weights.open("rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else size
        try:
            if 8 + length > size:
                raise ValueError
            header = json.loads(handle.read(length))
            end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise ModelFolderError(weights, f"truncated or damaged ({size} bytes, no complete header)") from None
    if 8 + length + end > size:
        raise ModelFolderError(weights, f"truncated: {size} of its {8 + length + end} bytes")
    return header


def longest_input(settings: Mapping[str, Any]) -> int:
    """How many tokens a model of these (checked) settings reads at most: its positions, less RoBERTa's offset."""
    positions = settings["max_position_embeddings"]
    if settings["model_type"] in OFFSET_POSITION_TYPES:
        pad = settings.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
    return positions


def check_config(path: Path, config: Any, shapes: Mapping[str, Any]) -> dict[str, Any]:
    """config.json builds a supported model of bounded size that fits its weights, before transformers builds it.

    Returns the model's settings: the config over its type's defaults (which transformers uses for a size it lacks).
    """
    where = path / CONFIG_FILE
    if not isinstance(config, dict):
        raise ModelFolderError(where, f"holds {type(config).__name__}, not an object", _CONFIG_FIX)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelFolderError(
            where,
            f"model_type is {model_type!r}, not one of the encoders ClickTune trains and serves "
            f"({', '.join(SUPPORTED_MODEL_TYPES)})",
            _CONFIG_FIX,
        )
    if config.get("transformers_weights") not in (None, WEIGHTS_FILE, WEIGHTS_INDEX_FILE):
        raise ModelFolderError(
            where,
            f"transformers_weights names {config['transformers_weights']!r}, not the folder's {WEIGHTS_FILE}",
            _CONFIG_FIX,
        )
    for name, limit in CONFIG_LIMITS.items():
        if name not in config:
            continue  # the type's default
        value = config[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise ModelFolderError(where, f"{name} is {value!r}, not a whole number from 1 to {limit}", _CONFIG_FIX)
    from transformers import AutoConfig  # imported here, so that importing the checks loads no transformers

    settings = {**AutoConfig.for_model(model_type).to_dict(), **config}
    hidden, heads = settings["hidden_size"], settings["num_attention_heads"]
    if hidden % heads:
        raise ModelFolderError(
            where, f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}", _CONFIG_FIX
        )
    if longest_input(settings) < 1:
        raise ModelFolderError(where, "its positions leave no room for a token", _CONFIG_FIX)
    _check_sizes_against_weights(where, settings, shapes)
    return settings


def _check_sizes_against_weights(where: Path, settings: Mapping[str, Any], shapes: Mapping[str, Any]) -> None:
    """Each size that a tensor of the weights shows is the config's: transformers would build another model."""
    found: list[tuple[str, int, str]] = []
    for name, pattern, dimension in TENSOR_SIZES:
        for tensor, shape in shapes.items():
            if pattern.search(tensor) and isinstance(shape, list) and len(shape) > dimension:
                found.append((name, shape[dimension], tensor))
    layers = {int(match.group(1)) for tensor in shapes if (match := _LAYER.search(tensor))}
    if layers:
        found.append(("num_hidden_layers", max(layers) + 1, "encoder.layer.N"))
    for name, size, tensor in found:
        if settings.get(name) != size:
            raise ModelFolderError(
                where, f"{name} is {settings.get(name)}, but the weights hold {size} ({tensor})", _CONFIG_FIX
            )
