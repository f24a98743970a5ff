"""Resumable training state: checkpoints saved, pruned and restored with Accelerate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from transformers import get_linear_schedule_with_warmup

from finetune.checkpoints import (
    KEEP_CHECKPOINTS,
    STATE_FILE,
    TrainerState,
    best_model_dir,
    checkpoints_in,
    load_checkpoint,
    save_best_model,
    save_checkpoint,
)

pytestmark = pytest.mark.usefixtures("reset_accelerate")

LEARNING_RATE = 0.1


def prepared(total_steps: int) -> tuple[Accelerator, torch.nn.Module, torch.optim.Optimizer, object]:
    """A tiny model, its optimiser and a linear schedule over ``total_steps``, prepared as training prepares them."""
    AcceleratorState._reset_state(True)  # each call stands for a new process
    PartialState._reset_state()
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, schedule)
    return accelerator, model, optimizer, scheduler


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: object, steps: int) -> None:
    for _ in range(steps):
        model(torch.ones(2, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def test_checkpoints_are_ordered_by_step_not_by_name(tmp_path: Path) -> None:
    for step in (10, 2, 9):
        (tmp_path / f"step-{step}").mkdir()
        (tmp_path / f"step-{step}" / STATE_FILE).write_text("{}")
    (tmp_path / "other").mkdir()
    assert [p.name for p in checkpoints_in(tmp_path)] == ["step-2", "step-9", "step-10"]
    assert checkpoints_in(tmp_path / "absent") == []


def test_only_complete_checkpoints_count(tmp_path: Path) -> None:
    for name in ("step-2", "step-4.partial", "step-6", "best-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / STATE_FILE).write_text("{}")
    (tmp_path / "step-8").mkdir()  # written in place by an older ClickTune and killed before its state
    (tmp_path / "step-9").write_text("a file, not a checkpoint")
    assert [p.name for p in checkpoints_in(tmp_path)] == ["step-2", "step-6"]


def test_a_checkpoint_appears_complete_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accelerator, _, _, _ = prepared(total_steps=4)
    save_checkpoint(accelerator, tmp_path, TrainerState(global_step=1))

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(accelerator, "save_state", lambda folder: (Path(folder).mkdir(), killed()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(accelerator, tmp_path, TrainerState(global_step=2))
    assert (tmp_path / "step-2.partial").is_dir() and not (tmp_path / "step-2").exists()
    assert [p.name for p in checkpoints_in(tmp_path)] == ["step-1"]

    monkeypatch.undo()
    save_checkpoint(accelerator, tmp_path, TrainerState(global_step=3))  # the next save clears what the kill left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-1", "step-3"]


def test_saving_keeps_the_best_models_that_kept_checkpoints_need(tmp_path: Path) -> None:
    accelerator, _, _, _ = prepared(total_steps=10)

    def names() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    def evaluated(step: int, best_step: int) -> None:
        if best_step == step:  # improved: training saves the best model, then the checkpoint
            save_best_model(tmp_path, step, lambda folder: (folder / "model.safetensors").write_text(f"step {step}"))
        save_checkpoint(accelerator, tmp_path, TrainerState(global_step=step, best_step=best_step))

    evaluated(1, best_step=1)
    evaluated(2, best_step=1)
    evaluated(3, best_step=3)
    assert names() == ["best-1", "best-3", "step-2", "step-3"]  # --resume from step-2 would finish with best-1
    evaluated(4, best_step=3)
    assert names() == ["best-3", "step-3", "step-4"]
    # A run killed after saving the best model of step 6, before its checkpoint; and one killed mid-save.
    save_best_model(tmp_path, 6, lambda folder: (folder / "model.safetensors").write_text("step 6"))
    (tmp_path / "best-7.partial").mkdir()
    evaluated(5, best_step=3)  # resumed from step-4: what nothing refers to goes
    assert names() == ["best-3", "step-4", "step-5"]
    assert (best_model_dir(tmp_path, 3) / "model.safetensors").read_text() == "step 3"


def test_saving_keeps_the_newest_checkpoints_with_their_state(tmp_path: Path) -> None:
    accelerator, model, optimizer, scheduler = prepared(total_steps=10)
    for step in range(1, 4):
        train_steps(model, optimizer, scheduler, 1)
        save_checkpoint(accelerator, tmp_path, TrainerState(global_step=step, batches_done=step))
    kept = checkpoints_in(tmp_path)
    assert [p.name for p in kept] == [f"step-{step}" for step in range(4 - KEEP_CHECKPOINTS, 4)]
    assert json.loads((kept[-1] / STATE_FILE).read_text())["global_step"] == 3


def test_loading_restores_the_newest_checkpoint_and_its_state(tmp_path: Path) -> None:
    accelerator, model, optimizer, scheduler = prepared(total_steps=4)
    train_steps(model, optimizer, scheduler, 2)
    history = [{"step": 2, "auc": 0.75}]
    state = TrainerState(epoch=1, batches_done=3, global_step=2, best_auc=0.75, best_step=2, history=history)
    save_checkpoint(accelerator, tmp_path, state)
    saved = {name: p.detach().clone() for name, p in model.named_parameters()}

    accelerator, model, optimizer, scheduler = prepared(total_steps=4)
    assert any(not torch.equal(saved[name], p) for name, p in model.named_parameters())
    assert load_checkpoint(accelerator, tmp_path, scheduler.scheduler) == state
    for name, p in model.named_parameters():
        assert torch.equal(saved[name], p), f"{name} was not restored"


def test_a_state_without_an_evaluation_survives_the_round_trip(tmp_path: Path) -> None:
    accelerator, _, _, _ = prepared(total_steps=4)
    save_checkpoint(accelerator, tmp_path, TrainerState())  # best_auc is -inf
    accelerator, _, _, scheduler = prepared(total_steps=4)
    assert load_checkpoint(accelerator, tmp_path, scheduler.scheduler) == TrainerState()


def test_the_learning_rate_follows_the_resuming_runs_schedule(tmp_path: Path) -> None:
    accelerator, model, optimizer, scheduler = prepared(total_steps=4)
    train_steps(model, optimizer, scheduler, 4)
    assert optimizer.param_groups[0]["lr"] == 0  # the end of the 4-step schedule
    save_checkpoint(accelerator, tmp_path, TrainerState(global_step=4))

    # Resumed with a longer run: step 4 of 8 is half-way down the linear decay, not at its end.
    accelerator, model, optimizer, scheduler = prepared(total_steps=8)
    load_checkpoint(accelerator, tmp_path, scheduler.scheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(LEARNING_RATE / 2)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train_steps(model, optimizer, scheduler, 1)
    assert any(not torch.equal(before[name], p) for name, p in model.named_parameters())


def test_loading_without_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    accelerator, _, _, scheduler = prepared(total_steps=4)
    with pytest.raises(
        FileNotFoundError, match=r"--resume: no complete checkpoint under .*; train once without --resume"
    ):
        load_checkpoint(accelerator, tmp_path, scheduler.scheduler)
