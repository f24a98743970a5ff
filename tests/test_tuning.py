"""What a run trains: frozen lower layers, LoRA adapters merged for saving, and WiSE-FT's interpolation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finetune.tuning import add_lora, freeze_lower_layers, interpolated, trainable_weights, without_adapters
from recsys.model.architectures import load_model
from recsys.model.artifact import ARCHITECTURES, BI
from recsys.model.relevance_model import RelevanceModel


@pytest.fixture
def model(tiny_model_dir: Path) -> RelevanceModel:
    return load_model(BI, str(tiny_model_dir))[0]


def trainable(model: RelevanceModel) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def query_logits(model: RelevanceModel) -> torch.Tensor:
    ids = torch.tensor([[2, 7, 8, 3], [2, 9, 3, 0]])
    mask = (ids != 0).long()
    model.eval()
    with torch.no_grad():
        return model(ids, mask, ids.flip(0), mask.flip(0), torch.tensor([0, 1]))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_freezing_layers_freezes_the_embeddings_and_the_lowest_layers(tiny_model_dir: Path, architecture: str) -> None:
    model = load_model(architecture, str(tiny_model_dir))[0]
    everything = trainable(model)
    freeze_lower_layers(model, 0)
    assert trainable(model) == everything

    freeze_lower_layers(model, 1)
    lowest = {name for name in everything if ".embeddings." in name or ".encoder.layer.0." in name}
    assert lowest and any(".encoder.layer.1." in name for name in trainable(model))
    assert everything - trainable(model) == lowest


def test_freezing_more_layers_than_the_model_has_is_an_error(model: RelevanceModel) -> None:
    with pytest.raises(ValueError, match="--freeze-layers 3: the model has only 2 encoder layers"):
        freeze_lower_layers(model, 3)


def test_trainable_weights_are_a_copy_of_what_trains(model: RelevanceModel) -> None:
    freeze_lower_layers(model, 1)
    copied = trainable_weights(model)
    assert set(copied) == trainable(model)
    parameter = dict(model.named_parameters())["bias"]
    with torch.no_grad():
        parameter.add_(1.0)
    assert not torch.equal(copied["bias"], parameter), "the copy follows the model"


def test_interpolated_weights_hold_inside_the_block_and_are_restored_after(model: RelevanceModel) -> None:
    base = trainable_weights(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    current = trainable_weights(model)
    with interpolated(model, base, 0.25):
        for name, p in model.named_parameters():
            torch.testing.assert_close(p, 0.25 * current[name] + 0.75 * base[name])
    for name, p in model.named_parameters():
        assert torch.equal(p, current[name]), f"{name} was not restored"


def test_interpolated_weights_are_restored_after_an_error(model: RelevanceModel) -> None:
    current = trainable_weights(model)
    base = {name: torch.zeros_like(p) for name, p in current.items()}
    with pytest.raises(RuntimeError, match="inside"), interpolated(model, base, 0.5):
        raise RuntimeError("inside")
    for name, p in model.named_parameters():
        assert torch.equal(p, current[name])


@pytest.mark.parametrize(("base", "alpha"), [(None, 0.5), ("zeros", 1.0)])
def test_without_a_base_or_at_alpha_1_the_weights_stay(model: RelevanceModel, base: str | None, alpha: float) -> None:
    current = trainable_weights(model)
    start = {name: torch.zeros_like(p) for name, p in current.items()} if base else None
    with interpolated(model, start, alpha):
        for name, p in model.named_parameters():
            assert torch.equal(p, current[name])


def test_lora_trains_only_adapters_and_merges_into_an_ordinary_model(model: RelevanceModel) -> None:
    plain = {name for name, _ in model.named_parameters()}
    add_lora(model, rank=4)
    trains = trainable(model)
    assert any("lora_" in name for name in trains)
    assert all("lora_" in name for name in trains - set(model.scalars)), "base weights still train"
    generator = torch.Generator().manual_seed(0)  # the same weights whatever ran before
    with torch.no_grad():  # adapters start as a no-op; give them weights so that merging has something to merge
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
    adapted = query_logits(model)

    merged = without_adapters(model)
    assert merged is not model
    assert {name for name, _ in merged.named_parameters()} == plain
    # Merging adds B·A into the weights in float32, which rounds otherwise than applying the adapters: a wrong merge
    # is off by the adapters' whole size, far beyond this tolerance.
    torch.testing.assert_close(query_logits(merged), adapted, atol=1e-4, rtol=1e-4)
    assert any("lora_" in name for name, _ in model.named_parameters()), "merging changed the model in training"


def test_a_model_without_adapters_is_saved_as_it_is(model: RelevanceModel) -> None:
    assert without_adapters(model) is model
