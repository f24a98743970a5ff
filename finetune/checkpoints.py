"""Resumable training state: where a run stands, saved beside Accelerate's state after each evaluation.

Under ``output_dir/checkpoints/``:

    step-N/          Accelerate's state and ``trainer_state.json`` after step N; only the newest few are kept
    best-N/          the best model so far (from step N), as ``finetune.train.finish`` will publish it
    *.partial/       one being written; a kill leaves it behind, and nothing reads it

Each is written under its ``.partial`` name and renamed when complete, so ``--resume`` never
meets half a checkpoint: it takes the newest complete one. They are scratch: once the best model
is in ``output_dir``, a finished run deletes them all (:func:`delete_checkpoints`) unless
``--keep-checkpoints``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.data.atomic_files import write_text_atomic

if TYPE_CHECKING:
    from accelerate import Accelerator
    from torch.optim.lr_scheduler import LambdaLR

STATE_FILE = "trainer_state.json"
KEEP_CHECKPOINTS = 2  # the newest ones; older checkpoints are deleted
PARTIAL = ".partial"  # the suffix of a folder still being written
_CHECKPOINT = re.compile(r"step-(\d+)")
_BEST = re.compile(r"best-(\d+)")


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


def _step(path: Path, pattern: re.Pattern) -> int | None:
    match = pattern.fullmatch(path.name)
    return int(match.group(1)) if match and path.is_dir() else None


def checkpoints_in(folder: Path) -> list[Path]:
    """The complete checkpoints under ``folder``, oldest first (a partial one, or one without its state, is none)."""
    found = [p for p in folder.glob("step-*") if _step(p, _CHECKPOINT) is not None and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: _step(p, _CHECKPOINT))


def read_state(checkpoint: Path) -> TrainerState:
    return TrainerState(**json.loads((checkpoint / STATE_FILE).read_text()))


def save_checkpoint(accelerator: Accelerator, folder: Path, state: TrainerState) -> None:
    """Save Accelerate's state and ``state`` as ``step-N``: written as ``step-N.partial``, renamed when complete."""
    checkpoint = folder / f"step-{state.global_step}"
    partial = checkpoint.with_name(checkpoint.name + PARTIAL)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # every process has written its random states
    if accelerator.is_main_process:
        write_text_atomic(partial / STATE_FILE, json.dumps(asdict(state)))
        shutil.rmtree(checkpoint, ignore_errors=True)
        os.replace(partial, checkpoint)
        prune(folder, state)


def prune(folder: Path, state: TrainerState) -> None:
    """Delete older checkpoints, what killed runs left half-written, and best models that no kept checkpoint needs."""
    complete = checkpoints_in(folder)
    for old in complete[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old)
    needed = {state.best_step} | {read_state(c).best_step for c in complete[-KEEP_CHECKPOINTS:]}
    for path in folder.iterdir():
        unfinished = path.is_dir() and path.name.endswith(PARTIAL)
        incomplete = _step(path, _CHECKPOINT) is not None and not (path / STATE_FILE).is_file()
        unneeded = _step(path, _BEST) not in (None, *needed)
        if unfinished or incomplete or unneeded:
            shutil.rmtree(path)


def best_model_dir(folder: Path, step: int) -> Path:
    return folder / f"best-{step}"


def save_best_model(folder: Path, step: int, write: Callable[[Path], None]) -> Path:
    """Call ``write(partial)`` to save the best model of ``step``, then rename the folder complete as ``best-N``."""
    best = best_model_dir(folder, step)
    partial = best.with_name(best.name + PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    shutil.rmtree(best, ignore_errors=True)
    os.replace(partial, best)
    return best


def delete_checkpoints(folder: Path) -> None:
    """Delete ``folder`` (a run's checkpoints) and everything in it.

    It is renamed aside first, so that a kill midway never leaves a checkpoint without some of its files for
    ``--resume`` to take; what a kill leaves aside (hidden, so never published) goes with the next deletion.
    """
    aside = folder.with_name(f".{folder.name}{PARTIAL}")
    if folder.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def load_checkpoint(accelerator: Accelerator, folder: Path, schedule: LambdaLR) -> TrainerState:
    """Restore the newest complete checkpoint under ``folder``; return its state. The learning rate follows this run."""
    found = checkpoints_in(folder)
    if not found:
        raise FileNotFoundError(
            f"--resume: no complete checkpoint under {folder}; train once without --resume (a run that finished "
            "keeps its checkpoints only with --keep-checkpoints)"
        )
    accelerator.load_state(str(found[-1]))
    state = read_state(found[-1])
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
