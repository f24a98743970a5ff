"""What a run trains of the model: all of it, its upper layers, or low-rank adapters; and WiSE-FT's interpolation.

Each works on :class:`recsys.model.relevance_model.RelevanceModel`'s ``encoder`` (the transformers model), so it
applies to every architecture that allows it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from recsys.errors import UserError

if TYPE_CHECKING:
    import torch

    from recsys.model.relevance_model import RelevanceModel

# Every linear layer of the encoder's blocks; not the pooler, which mean pooling never uses.
LORA_TARGETS = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"


def freeze_lower_layers(model: RelevanceModel, layers: int) -> None:
    """Freeze the embeddings and the lowest ``layers`` encoder layers (BERT-family models)."""
    if layers == 0:
        return
    base = model.encoder.base_model
    encoder_layers = base.encoder.layer
    if layers > len(encoder_layers):
        raise UserError(f"--freeze-layers {layers}: the model has only {len(encoder_layers)} encoder layers")
    for module in [base.embeddings, *encoder_layers[:layers]]:
        module.requires_grad_(False)


def add_lora(model: RelevanceModel, rank: int) -> None:
    """Train low-rank adapters on every linear layer of the encoder instead of its weights (peft LoRA)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=LORA_TARGETS)
    model.encoder = get_peft_model(model.encoder, config)


def without_adapters(model: RelevanceModel) -> RelevanceModel:
    """A copy with the LoRA adapters merged into the weights: an ordinary model to save."""
    from peft import PeftModel

    if not isinstance(model.encoder, PeftModel):
        return model
    merged = copy.deepcopy(model)
    merged.encoder = merged.encoder.merge_and_unload()
    return merged


def trainable_weights(model: RelevanceModel) -> dict[str, torch.Tensor]:
    """A copy of the weights that training changes: the start of WiSE-FT's interpolation."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@contextmanager
def interpolated(model: RelevanceModel, base: dict[str, torch.Tensor] | None, alpha: float) -> Iterator[None]:
    """WiSE-FT: inside the block the weights are ``alpha * current + (1 - alpha) * base``; restored after."""
    if base is None or alpha == 1.0:
        yield
        return
    import torch  # imported here: --help loads no torch

    current = {name: p.detach().clone() for name, p in model.named_parameters() if name in base}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in base:
                p.mul_(alpha).add_(base[name], alpha=1 - alpha)
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in current:
                    p.copy_(current[name])
