"""The sentence-transformers folder format, written beside ClickTune's own files.

A bi-encoder's folder also holds sentence-transformers' module files, so that
``SentenceTransformer(dir).encode`` gives ClickTune's vectors; a cross-encoder's config names an
identity activation, so that ``CrossEncoder(dir).predict`` gives its text logits.
``clicktune.json`` stays the sidecar for the scale, calibration, threshold and item priors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsys.model.artifact import (
    NORMALIZE_DIR,
    POOLING_CONFIG_FILE,
    POOLING_DIR,
    ST_CONFIG_FILE,
    ST_MODULES_FILE,
    ST_TRANSFORMER_FILE,
)

ST_IDENTITY = "torch.nn.modules.linear.Identity"  # sentence-transformers names an activation by its import path


def sentence_transformers_files(hidden_size: int, max_length: int) -> dict[str, Any]:
    """sentence-transformers' files for a bi-encoder: the transformer (the folder's own weights and tokenizer)
    truncating at ``max_length``, mean pooling over the attention mask, and L2 normalisation, as
    :meth:`BiEncoder.embed` computes them.

    The module names and the pooling keys are those every sentence-transformers release since 2.0 loads (the
    packaged all-MiniLM-L6-v2 has the same); the Normalize module has no files.
    """
    modules = [("", "Transformer"), (POOLING_DIR, "Pooling"), (NORMALIZE_DIR, "Normalize")]
    return {
        ST_MODULES_FILE: [
            {"idx": n, "name": str(n), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for n, (path, kind) in enumerate(modules)
        ],
        ST_TRANSFORMER_FILE: {"max_seq_length": max_length, "do_lower_case": False},
        ST_CONFIG_FILE: {
            "model_type": "SentenceTransformer",
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        POOLING_CONFIG_FILE: {
            "word_embedding_dimension": hidden_size,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    }


def write_sentence_transformers_files(output_dir: str | Path, hidden_size: int, max_length: int) -> None:
    for name, content in sentence_transformers_files(hidden_size, max_length).items():
        (Path(output_dir) / name).parent.mkdir(exist_ok=True)
        (Path(output_dir) / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
