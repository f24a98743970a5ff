"""Resumable training state: where a run stands, saved beside Accelerate's state after each evaluation."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from accelerate import Accelerator
from torch.optim.lr_scheduler import LambdaLR

STATE_FILE = "trainer_state.json"
KEEP_CHECKPOINTS = 2  # the newest ones; older checkpoints are deleted


@dataclass
class TrainerState:
    """Where training stands; saved beside each checkpoint so that --resume continues exactly."""

    epoch: int = 0
    batches_done: int = 0  # batches of the current epoch already trained on
    global_step: int = 0  # optimiser steps
    best_auc: float = -math.inf
    best_step: int = 0
    evals_without_improvement: int = 0
    train_seconds: float = 0.0
    pairs_seen: int = 0
    history: list[dict] = field(default_factory=list)  # each evaluation's metrics, with its "step"


def checkpoints_in(folder: Path) -> list[Path]:
    """The checkpoints under ``folder``, oldest first."""
    return sorted(folder.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(accelerator: Accelerator, folder: Path, state: TrainerState) -> None:
    checkpoint = folder / f"step-{state.global_step}"
    accelerator.save_state(str(checkpoint))
    if accelerator.is_main_process:
        (checkpoint / STATE_FILE).write_text(json.dumps(asdict(state)))
        for old in checkpoints_in(folder)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old)


def load_checkpoint(accelerator: Accelerator, folder: Path, schedule: LambdaLR) -> TrainerState:
    """Restore the newest checkpoint under ``folder`` and return its state; the learning rate follows this run."""
    found = checkpoints_in(folder)
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint under {folder}; train once without --resume")
    accelerator.load_state(str(found[-1]))
    state = TrainerState(**json.loads((found[-1] / STATE_FILE).read_text()))
    follow_this_runs_schedule(schedule)
    accelerator.print(f"resumed from {found[-1]} at step {state.global_step}")
    return state


def follow_this_runs_schedule(schedule: LambdaLR) -> None:
    """Set the optimiser's learning rates from this run's schedule at the restored step.

    The checkpoint's learning rates follow the saving run's schedule, which reaches 0 at its
    --max-steps; continuing on this run's schedule lets a larger --max-steps train the extra steps.
    """
    groups = schedule.optimizer.param_groups
    for group, base_lr, factor in zip(groups, schedule.base_lrs, schedule.lr_lambdas, strict=True):
        group["lr"] = base_lr * factor(schedule.last_epoch)
