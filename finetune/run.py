"""One training run, set up: the data, the model, the optimiser and schedule, prepared by Accelerate.

:func:`prepare` builds a :class:`Run` from a :class:`~finetune.config.TrainConfig`; ``finetune.train``
then reads top to bottom over that one object.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.scheduler import AcceleratedScheduler
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from finetune.checkpoints import TrainerState, load_checkpoint
from finetune.config import TrainConfig
from finetune.data import Collator, ListwiseDataset, PointwiseDataset, hold_out
from finetune.tuning import add_lora, freeze_lower_layers, trainable_weights
from recsys.data.contract import CLICKED, POSITION, read_clicks, require_ranked_groups
from recsys.errors import ContractError
from recsys.feedback.propensity import check_curve, ips_weights, power_law, read_propensities
from recsys.model.architectures import load_model
from recsys.model.artifact import CHECKPOINTS_DIR, RUNS_DIR, ModelMetadata, resolve_model_path
from recsys.model.config_checks import longest_input
from recsys.model.priors import ItemPriors
from recsys.model.relevance_model import RelevanceModel
from recsys.model.text_lengths import TextLengths, choose_max_length


@dataclass
class Run:
    config: TrainConfig
    accelerator: Accelerator
    model: RelevanceModel  # prepared by Accelerate: unwrap it to save
    tokenizer: PreTrainedTokenizerBase
    optimizer: torch.optim.Optimizer
    scheduler: AcceleratedScheduler  # steps the schedule below, once per process and optimiser step
    schedule: LambdaLR  # the linear warm-up and decay itself
    train_loader: DataLoader
    eval_loader: DataLoader
    eval_frame: pd.DataFrame
    eval_features: pd.DataFrame  # the item priors' features of the eval rows (no columns without priors)
    priors: ItemPriors | None
    base_model: str  # the zero-shot model this one descends from
    validation: str  # what the model was selected on, in words: the eval file, or the share held out of the train file
    lengths: TextLengths  # the train file's text lengths in tokens, and the max_length chosen from them
    train_rows: int
    total_steps: int
    num_epochs: int
    list_size: int  # items per example: a click and its negatives, or one row
    weighting: dict | None = None  # --position-weights ips: the propensities used and how many clicks were clipped
    base_weights: dict[str, torch.Tensor] | None = None  # WiSE-FT's start
    state: TrainerState = field(default_factory=TrainerState)
    stopped_early: bool = False  # patience ran out in this process (a resumed run trains to its next evaluation)
    out_of_time: bool = False  # the time budget ran out in this process
    started: float = field(default_factory=time.monotonic)  # when this process began the run, for the time budget

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def checkpoints(self) -> Path:
        return self.output_dir / CHECKPOINTS_DIR

    @property
    def max_length(self) -> int:
        """Tokens per text (or pair): --max-length, or the length chosen from the train file."""
        return self.config.max_length or self.lengths.max_length

    def settings(self) -> dict:
        """The run's settings as recorded (``clicktune.json``, ``metrics.json``): its resolved config
        (:meth:`~finetune.config.TrainConfig.resolved`), with the max_length chosen from the train file."""
        return self.config.to_dict() | {"max_length": self.max_length}

    @property
    def out_of_patience(self) -> bool:
        return 0 < self.config.patience <= self.state.evals_without_improvement

    @property
    def evaluated_at_this_step(self) -> bool:
        return bool(self.state.history) and self.state.history[-1]["step"] == self.state.global_step

    @property
    def over_budget(self) -> bool:
        """Whether the run has taken its --time-budget (minutes, evaluations included; 0: no budget)."""
        budget = self.config.time_budget
        return budget > 0 and time.monotonic() - self.started >= budget * 60

    @property
    def finished(self) -> bool:
        state = self.state
        ended = self.stopped_early or self.out_of_time
        return ended or state.global_step >= self.total_steps or state.epoch >= self.num_epochs

    @property
    def ending(self) -> str:
        """Why the run ended, in words: what a user needs to know to train longer or not."""
        state, config = self.state, self.config
        best = f"the best model is step {state.best_step}'s (validation AUC {state.best_auc:.4f})"
        if self.out_of_time:
            return (
                f"stopped by the time budget ({config.time_budget:g} min) at step {state.global_step}, not by "
                f"convergence: {best}; give --time-budget a larger number of minutes (0: none) to train longer"
            )
        if self.stopped_early:
            patience = f"no better validation AUC in {config.patience} evaluations"
            return f"stopped early at step {state.global_step}: {patience}; {best}"
        return f"trained all {state.global_step} steps ({self.num_epochs} epoch(s)); {best}"


def click_logs(config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The rows to train on, the rows to validate on, and where the latter come from, in words that name files by
    name (they go into the published model): the eval file, or a share of the train file's users held out
    (:func:`~finetune.data.hold_out`), never a log the user did not give beside their own."""
    train_frame = read_clicks(config.train_file)
    if config.validation_file:
        source = Path(config.validation_file).name
        if config.bundled and not config.eval_file:
            source += " (the bundled sample's validation users; give --train-file to learn from your own log)"
        return train_frame, read_clicks(config.validation_file), source
    train_frame, eval_frame, held = hold_out(train_frame, config.holdout, config.seed, Path(config.train_file).name)
    return train_frame, eval_frame, f"{held.describe()} (give --eval-file to validate on a log of your own)"


def position_weights(frame: pd.DataFrame, config: TrainConfig) -> tuple[np.ndarray | None, dict | None]:
    """Each train row's weight in the loss, and what it rests on (recorded in ``clicktune.json``); none without
    ``--position-weights ips``. With it, a click weighs 1/p(its position), clipped at ``--propensity-clip``, and any
    other row 1 (``recsys.feedback.propensity.ips_weights``); ``p`` is ``1/r**eta`` or the ``--propensity-file``
    curve."""
    if config.position_weights != "ips":
        return None, None
    if POSITION not in frame.columns:
        raise ContractError(
            config.train_file,
            f"--position-weights ips weights each click by the position it was shown at, but the train file has "
            f"no {POSITION!r} column",
            f"add the 1-based {POSITION} of each row in its list (the app's feedback export writes it), or train "
            "with --position-weights none",
            column=POSITION,
            missing=(POSITION,),
        )
    deepest = int(frame[POSITION].max())
    if config.propensity_file:
        curve, source = read_propensities(config.propensity_file), Path(config.propensity_file).name
        if deepest > len(curve):
            raise ContractError(
                config.train_file,
                f"it shows rows down to position {deepest}, deeper than {source}'s propensities, which stop at "
                f"{len(curve)}",
                "give propensities for every position of the train file, or --propensity-eta instead of the file",
                column=POSITION,
            )
    else:
        curve, source = power_law(config.propensity_eta, range(1, deepest + 1)), f"1/r^{config.propensity_eta:g}"
    curve = check_curve(curve[:deepest], source)
    clicked = frame[CLICKED].to_numpy() == 1
    weights = ips_weights(frame[POSITION], curve, config.propensity_clip, clicked=clicked)
    clipped = int((clicked & (1.0 / curve[frame[POSITION].to_numpy() - 1] > config.propensity_clip)).sum())
    return weights, {
        "propensities": source,
        "clip": config.propensity_clip,
        "curve": [round(float(p), 6) for p in curve],  # p(1), p(2), ... down to the train file's deepest position
        "clicks": int(clicked.sum()),
        "clicks_clipped": clipped,
        "mean_click_weight": round(float(weights[clicked].mean()), 4) if clicked.any() else None,
    }


def describe_weighting(weighting: dict, loss: str) -> str:
    """The run's line about ``--position-weights ips``, e.g. "position weights: ips, each click's list weighs
    1/p(position), p = 1/r^1 (p(2) = 0.5, ...), clipped at 10 (4 of 120 clicks clipped), rescaled to a mean of 1 per
    batch; serving uses no position"."""
    curve = weighting["curve"]
    shown = ", ".join(f"p({k}) = {curve[k - 1]:.3g}" for k in (2, 5, 10, len(curve)) if k <= len(curve))
    what = "each click's list" if loss == "listwise" else "each click (non-clicks 1)"
    return (
        f"position weights: ips, {what} weighs 1/p(position), p = {weighting['propensities']}"
        + (f" ({shown})" if shown else "")
        + f", clipped at {weighting['clip']:g} ({weighting['clicks_clipped']} of {weighting['clicks']} clicks "
        "clipped), rescaled to a mean of 1 per batch; serving uses no position"
    )


def load_start(config: TrainConfig) -> tuple[RelevanceModel, PreTrainedTokenizerBase, str]:
    """The model to start from, its tokenizer, and its zero-shot base (a retrained ClickTune model keeps its own)."""
    model, tokenizer = load_model(config.architecture, config.model_name_or_path)  # a saved folder is checked first
    path = resolve_model_path(config.model_name_or_path)
    earlier = ModelMetadata.load(path) if Path(path).is_dir() else None  # None: a base model
    if earlier is None:  # from a base model, the temperature is this run's choice
        model.start_scale(config.scale)
    for name in model.scalars:
        getattr(model, name).requires_grad_(config.scale_learning_rate > 0)
    freeze_lower_layers(model, config.freeze_layers)
    if config.uses_lora:
        add_lora(model, config.lora_rank)
    return model, tokenizer, earlier.base_model if earlier and earlier.fine_tuned else config.model_name_or_path


def optimizer_for(model: RelevanceModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over what trains: the weights (or adapters) at ``config.learning_rate``, the scalars at their own rate."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for name, p in params if name not in model.scalars]}]
    scalars = [p for name, p in params if name in model.scalars]
    groups += [{"params": scalars, "lr": config.scale_learning_rate}] if scalars else []
    # fused: one kernel over all tensors rather than a loop of small ones per tensor (a tenth of a CPU step)
    return torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)


def make_accelerator(config: TrainConfig, tracker: str | None) -> Accelerator:
    """The run's Accelerator: its precision, accumulation and tracker, with the run's logs under the output folder."""
    return Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=tracker,
        project_dir=str(Path(config.output_dir) / RUNS_DIR),
        # A bi-encoder's mean pooling never uses the encoder's pooler: under DDP (several processes) a weight
        # without a gradient is an error unless expected, as Trainer's ddp_find_unused_parameters expects it.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def data_loaders(
    config: TrainConfig,
    train_frame: pd.DataFrame,
    eval_frame: pd.DataFrame,
    weights: np.ndarray | None,
    tokenizer: PreTrainedTokenizerBase,
    model_class: type[RelevanceModel],
    max_length: int,
) -> tuple[DataLoader, DataLoader]:
    """The training batches (listwise or pointwise, with their position weights) and the validation batches, each
    padded by the model class's own ``batch``."""
    if config.loss == "listwise":
        train_set = ListwiseDataset(train_frame, config.negatives, seed=config.seed, weights=weights)
    else:
        train_set = PointwiseDataset(train_frame, seed=config.seed, weights=weights)
    # The loader's own generator: starting an iteration draws a seed from it, not from the global RNG
    # that dropout uses, so a resumed run draws the same dropout masks as an uninterrupted one.
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        collate_fn=Collator(tokenizer, model_class, max_length, config.in_batch_negatives, weights is not None),
        generator=torch.Generator().manual_seed(config.seed),
    )
    eval_loader = DataLoader(
        PointwiseDataset(eval_frame, shuffle=False),
        batch_size=config.eval_batch_size,
        collate_fn=Collator(tokenizer, model_class, max_length),
    )
    return train_loader, eval_loader


def linear_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int, steps_per_epoch: int, processes: int
) -> LambdaLR:
    """Linear warm-up and decay. A prepared scheduler steps once per process on each optimiser step (Accelerate's
    convention): the warm-up is rounded in optimiser steps first, so that N processes follow the learning rates of
    one. It is a share of an epoch (of --max-steps where shorter), so that it does not grow with the most epochs a
    run may take."""
    warmup_steps = int(config.warmup_ratio * min(total_steps, steps_per_epoch)) * processes
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps * processes)


def prepare(config: TrainConfig) -> Run:
    """The run of ``config``, its defaults resolved (:meth:`~finetune.config.TrainConfig.resolved`): what it trains
    with is what it records."""
    config = config.resolved()
    tracker = None if config.report_to == "none" else config.report_to
    accelerator = make_accelerator(config, tracker)
    set_seed(config.seed)
    train_frame, eval_frame, validation = click_logs(config)
    accelerator.print(f"training on {config.train_file}; validating on {validation}")
    weights, weighting = position_weights(train_frame, config)  # a log without positions fails here, before loading
    if weighting:
        accelerator.print(describe_weighting(weighting, config.loss))
    # Before a model loads, not after an epoch of training.
    require_ranked_groups(eval_frame, config.validation_file or f"the {config.holdout:.0%} held out of the train file")
    model, tokenizer, base_model = load_start(config)
    positions = longest_input(model.encoder.config.to_dict())
    lengths = choose_max_length(train_frame, tokenizer, config.architecture, positions)
    max_length = config.max_length or lengths.max_length
    accelerator.print(lengths.describe(config.max_length))
    base_weights = trainable_weights(model) if config.wise_alpha < 1 else None
    priors = ItemPriors.fit(train_frame) if config.item_priors else None
    # Without priors a blend has no features and no weights: the final score is the text logit.
    eval_features = priors.features(eval_frame) if priors else pd.DataFrame(index=range(len(eval_frame)))

    train_loader, eval_loader = data_loaders(
        config, train_frame, eval_frame, weights, tokenizer, type(model), max_length
    )
    # Each process gets its share of the batches once the loader is prepared.
    batches_per_process = math.ceil(len(train_loader) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / config.gradient_accumulation_steps)
    total_steps = config.max_steps if config.max_steps > 0 else steps_per_epoch * config.num_epochs
    optimizer = optimizer_for(model, config)
    schedule = linear_schedule(optimizer, config, total_steps, steps_per_epoch, accelerator.num_processes)
    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, schedule
    )
    run = Run(
        config=config,
        accelerator=accelerator,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        schedule=schedule,
        train_loader=train_loader,
        eval_loader=eval_loader,
        eval_frame=eval_frame,
        eval_features=eval_features,
        priors=priors,
        base_model=base_model,
        validation=validation,
        lengths=lengths,
        train_rows=len(train_frame),
        total_steps=total_steps,
        num_epochs=math.ceil(total_steps / steps_per_epoch),
        list_size=1 + config.negatives if config.loss == "listwise" else 1,
        base_weights=base_weights,
        weighting=weighting,
    )
    if config.resume:
        run.state = load_checkpoint(accelerator, run.checkpoints, schedule)
    if tracker:
        accelerator.init_trackers("clicktune", config={k: str(v) for k, v in config.to_dict().items()})
    return run
