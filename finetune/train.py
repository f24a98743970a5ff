"""Fine-tune a text-relevance model on click logs with Accelerate.

    python -m finetune.train --train-file clicks.csv --eval-file valid.csv --output-dir models/clicktune
    accelerate launch -m finetune.train ...

Evaluates on the eval file after each epoch (and every ``--eval-steps``), keeps the model with
the best group AUC in ``--output-dir``, stops after ``--patience`` evaluations without a better
one, and saves a resumable checkpoint after each evaluation under ``output_dir/checkpoints``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from finetune.config import parse_config
from finetune.data import Collator, ListwiseDataset, PointwiseDataset
from recsys.card import write_model_card
from recsys.contract import CLICKED, read_clicks
from recsys.metrics import choose_threshold, evaluate_scores, threshold_summary
from recsys.models import (
    BiEncoder,
    ModelMetadata,
    fit_calibration,
    load_encoder,
    resolve_model_path,
    save_model,
    sigmoid,
)
from recsys.priors import Blend, ItemPriors

logger = get_logger(__name__)

STATE_FILE = "trainer_state.json"


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
    history: list[dict] = field(default_factory=list)


def freeze_lower_layers(model: nn.Module, layers: int) -> None:
    """Freeze the embeddings and the lowest ``layers`` encoder layers (BERT-family models)."""
    if layers == 0:
        return
    base = (model.encoder if isinstance(model, BiEncoder) else model).base_model
    encoder_layers = base.encoder.layer
    if layers > len(encoder_layers):
        raise ValueError(f"--freeze-layers {layers}: the model has only {len(encoder_layers)} encoder layers")
    for module in [base.embeddings, *encoder_layers[:layers]]:
        module.requires_grad_(False)


def add_lora(model: BiEncoder, rank: int) -> None:
    """Train low-rank adapters on every linear layer of the encoder instead of its weights (peft LoRA)."""
    from peft import LoraConfig, get_peft_model

    # Every linear layer of the encoder's blocks; not the pooler, which mean pooling never uses.
    layers = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=layers)
    model.encoder = get_peft_model(model.encoder, config)


def without_adapters(model: nn.Module) -> nn.Module:
    """A copy with the LoRA adapters merged into the weights: an ordinary model to save."""
    from peft import PeftModel

    if isinstance(model, BiEncoder) and isinstance(model.encoder, PeftModel):
        merged = copy.deepcopy(model)
        merged.encoder = merged.encoder.merge_and_unload()
        return merged
    return model


def forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One logit per (query, item) in the batch, whichever the architecture; for a batch with an
    ``in_batch_mask``, each example's query against every item of the batch, ``[examples, items]``."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "query_index" in inputs:
        return model(**inputs)
    return model(**inputs).logits.view(-1)


def compute_loss(logits: torch.Tensor, labels: torch.Tensor, loss: str, list_size: int) -> torch.Tensor:
    """Pointwise: BCE per row. Listwise: softmax cross-entropy that picks each list's click (its first item).

    ``logits`` is ``[lists * list_size]`` for lists on their own, or ``[lists, items]`` when each click
    also stands against the other items of the batch; the click of list n is item ``n * list_size``.
    """
    if loss == "pointwise":
        return nn.functional.binary_cross_entropy_with_logits(logits.view(-1), labels.float())
    if logits.dim() == 1:
        scores = logits.view(-1, list_size)
        target = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
    else:
        scores, target = logits, torch.arange(len(logits), device=logits.device) * list_size
    return nn.functional.cross_entropy(scores, target)


@contextmanager
def interpolated(model: nn.Module, base: dict[str, torch.Tensor] | None, alpha: float) -> Iterator[None]:
    """WiSE-FT: inside the block the weights are ``alpha * current + (1 - alpha) * base``; restored after."""
    if base is None or alpha == 1.0:
        yield
        return
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


def predict(model: nn.Module, loader: DataLoader, accelerator: Accelerator) -> np.ndarray:
    model.eval()
    logits = []
    with torch.no_grad():
        for batch in loader:
            logits.append(accelerator.gather_for_metrics(forward(model, batch)))
    model.train()
    return torch.cat(logits).float().cpu().numpy()


def latest_checkpoint(checkpoints: Path) -> Path | None:
    found = sorted(checkpoints.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> dict:
    config = parse_config(argv)
    output_dir = Path(config.output_dir)
    checkpoints = output_dir / "checkpoints"
    tracker = None if config.report_to == "none" else config.report_to
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=tracker,
        project_dir=str(output_dir / "runs"),
    )
    set_seed(config.seed)

    train_frame, eval_frame = read_clicks(config.train_file), read_clicks(config.eval_file)
    # Retraining a ClickTune model keeps its original base model: that is the zero-shot baseline.
    start = resolve_model_path(config.model_name_or_path)
    earlier = ModelMetadata.load(start) if Path(start).is_dir() else None
    base_model = earlier.base_model if earlier and earlier.fine_tuned else config.model_name_or_path
    model, tokenizer = load_encoder(config.architecture, config.model_name_or_path)
    if isinstance(model, BiEncoder):
        if earlier is None:  # a base model: the temperature is this run's choice
            model.scale.data.fill_(config.scale)
        model.scale.requires_grad_(config.scale_learning_rate > 0)
        model.bias.requires_grad_(config.scale_learning_rate > 0)
    freeze_lower_layers(model, config.freeze_layers)
    if config.uses_lora:
        add_lora(model, config.lora_rank)
    base_weights = (
        {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
        if config.wise_alpha < 1
        else None
    )
    priors = ItemPriors.fit(train_frame) if config.item_priors else None
    # Without priors a blend has no features and no weights: the final score is the text logit.
    eval_features = priors.features(eval_frame) if priors else pd.DataFrame(index=range(len(eval_frame)))
    collate = Collator(tokenizer, config.architecture, config.max_length)
    if config.loss == "listwise":
        train_set = ListwiseDataset(train_frame, config.negatives, seed=config.seed)
    else:
        train_set = PointwiseDataset(train_frame, seed=config.seed)
    list_size = 1 + config.negatives if config.loss == "listwise" else 1
    # The loader's own generator: starting an iteration draws a seed from it, not from the global RNG
    # that dropout uses, so a resumed run draws the same dropout masks as an uninterrupted one.
    train_loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        collate_fn=Collator(tokenizer, config.architecture, config.max_length, config.uses_in_batch_negatives),
        generator=torch.Generator().manual_seed(config.seed),
    )
    eval_loader = DataLoader(
        PointwiseDataset(eval_frame, shuffle=False), batch_size=config.eval_batch_size, collate_fn=collate
    )

    # Each process gets its share of the batches once the loader is prepared.
    batches_per_process = math.ceil(len(train_loader) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / config.gradient_accumulation_steps)
    total_steps = config.max_steps if config.max_steps > 0 else steps_per_epoch * config.num_epochs
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    scalars = [p for name, p in model.named_parameters() if name in ("scale", "bias") and p.requires_grad]
    weights = [p for name, p in model.named_parameters() if name not in ("scale", "bias") and p.requires_grad]
    groups = [{"params": weights}] + ([{"params": scalars, "lr": config.scale_learning_rate}] if scalars else [])
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    # A prepared scheduler steps once per process on each optimiser step (Accelerate's convention).
    schedule_steps = total_steps * accelerator.num_processes
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * schedule_steps), schedule_steps)
    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler
    )

    state = TrainerState()
    if config.resume:
        checkpoint = latest_checkpoint(checkpoints)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {checkpoints}; train once without --resume")
        accelerator.load_state(str(checkpoint))
        state = TrainerState(**json.loads((checkpoint / STATE_FILE).read_text()))
        # The saved learning rate follows the saving run's schedule, which reaches 0 at its --max-steps;
        # continue on this run's schedule, so that a larger --max-steps really trains the extra steps.
        schedule = scheduler.scheduler
        for group, base_lr, factor in zip(optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas, strict=True):
            group["lr"] = base_lr * factor(schedule.last_epoch)
        accelerator.print(f"resumed from {checkpoint} at step {state.global_step}")
    if tracker:
        accelerator.init_trackers("clicktune", config={k: str(v) for k, v in config.to_dict().items()})

    def evaluate_and_checkpoint() -> bool:
        """Evaluate, keep the best model, save a checkpoint; True when patience has run out."""
        if state.history and state.history[-1]["step"] == state.global_step:
            return 0 < config.patience <= state.evals_without_improvement
        with interpolated(accelerator.unwrap_model(model), base_weights, config.wise_alpha):
            logits = predict(model, eval_loader, accelerator)
            labels = eval_frame[CLICKED].to_numpy()
            blend = Blend.fit(eval_frame, logits, eval_features) if priors else Blend()
            scores = blend.final(logits, eval_features)
            a, b = fit_calibration(scores, labels)
            probabilities = sigmoid(a * scores + b)
            metrics = evaluate_scores(eval_frame, scores, probabilities, intervals=False)
            if priors:
                metrics["text_auc"] = evaluate_scores(eval_frame, logits, probabilities, intervals=False)["auc"]
            metrics["step"] = state.global_step
            improved = metrics["auc"] > state.best_auc
            if improved and accelerator.is_main_process:
                threshold = threshold_summary(labels, probabilities, choose_threshold(labels, probabilities))
                save_best(accelerator.unwrap_model(model), metrics, (a, b), threshold, blend)
        state.history.append(metrics)
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
        accelerator.print(f"step {state.global_step}: eval auc {metrics['auc']:.4f} ndcg@10 {metrics['ndcg@10']:.4f}")
        if improved:
            state.best_auc, state.best_step, state.evals_without_improvement = metrics["auc"], state.global_step, 0
        else:
            state.evals_without_improvement += 1
        save_checkpoint()
        return 0 < config.patience <= state.evals_without_improvement

    def save_best(unwrapped: nn.Module, metrics: dict, calibration: tuple, threshold: dict, blend: Blend) -> None:
        metadata = ModelMetadata(
            architecture=config.architecture,
            base_model=base_model,
            max_length=config.max_length,
            calibration_a=calibration[0],
            calibration_b=calibration[1],
            threshold=threshold["threshold"],
            blend=blend.weights,
            fine_tuned=True,
            training={
                **config.to_dict(),
                "learning_rate": config.lr,
                "best_step": state.global_step,
                "train_rows": len(train_frame),
            },
            metrics={"eval": metrics, "threshold": threshold},
        )
        save_model(without_adapters(unwrapped), tokenizer, output_dir, metadata)
        if priors:
            priors.save(output_dir)

    def save_checkpoint() -> None:
        checkpoint = checkpoints / f"step-{state.global_step}"
        accelerator.save_state(str(checkpoint))
        if accelerator.is_main_process:
            (checkpoint / STATE_FILE).write_text(json.dumps(asdict(state)))
            for old in sorted(checkpoints.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-2]:
                shutil.rmtree(old)

    progress = tqdm(
        total=total_steps, initial=state.global_step, disable=not accelerator.is_local_main_process, desc="training"
    )
    model.train()
    early_stop = False
    while not early_stop and state.global_step < total_steps and state.epoch < num_epochs:
        # Through the loader, which re-applies its own epoch count to the data set on each iteration;
        # after --resume that count starts at 0, and the order and negatives would be epoch 0's.
        train_loader.set_epoch(state.epoch)
        batches = (
            accelerator.skip_first_batches(train_loader, state.batches_done) if state.batches_done else train_loader
        )
        started = time.perf_counter()
        for batch in batches:
            with accelerator.accumulate(model):
                loss = compute_loss(forward(model, batch), batch["labels"], config.loss, list_size)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state.batches_done += 1
            state.pairs_seen += len(batch["labels"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            state.global_step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
            accelerator.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step=state.global_step)
            if state.global_step >= total_steps:
                break
            if config.eval_steps and state.global_step % config.eval_steps == 0:
                state.train_seconds += time.perf_counter() - started
                early_stop = evaluate_and_checkpoint()
                started = time.perf_counter()
                if early_stop:
                    break
        else:
            state.epoch, state.batches_done = state.epoch + 1, 0
        state.train_seconds += time.perf_counter() - started
        if not early_stop:
            early_stop = evaluate_and_checkpoint()
    progress.close()

    summary = {
        "best_step": state.best_step,
        "best": next((h for h in state.history if h["step"] == state.best_step), None),
        "history": state.history,
        "steps": state.global_step,
        "train_seconds": round(state.train_seconds, 1),
        "pairs_per_second": round(state.pairs_seen / max(state.train_seconds, 1e-9), 2),
        "config": config.to_dict(),
    }
    if accelerator.is_main_process:
        (output_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_model_card(output_dir)
        if config.push_to_hub:
            from recsys.hub import push_model

            push_model(output_dir, config.hub_model_id, private=config.hub_private)
    accelerator.end_training()
    return summary


if __name__ == "__main__":
    main()
