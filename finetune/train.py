"""Fine-tune a text-relevance model on click logs with Accelerate.

    python -m finetune.train --train-file clicks.csv --eval-file valid.csv --output-dir models/clicktune
    accelerate launch -m finetune.train ...

Evaluates on the eval file every ``--eval-steps``, at the end of each epoch and at the last step;
keeps the model with the best group AUC beside the checkpoints; stops after ``--patience``
evaluations without a better one; and saves a resumable checkpoint after each evaluation. When
the run ends, the best model, its ``metrics.json`` and its card move into ``--output-dir`` as one
change: a run killed at any point leaves there the model it held before, or the new one. Then the
checkpoints, scratch for resuming, are deleted, unless ``--keep-checkpoints``.

``--output-dir`` is never one of the run's inputs nor a folder holding one (the click logs, the model
it starts from, the app's feedback folder), by its own path or through a link: that is refused
before anything loads.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from finetune.checkpoints import best_model_dir, delete_checkpoints, save_best_model, save_checkpoint
from finetune.config import parse_config
from finetune.tuning import interpolated, without_adapters
from recsys.cli import run_cli
from recsys.data.contract import CLICKED
from recsys.data.file_checks import check_not_an_input_folder
from recsys.errors import UserError
from recsys.evaluation.metrics import choose_threshold, evaluate_scores, threshold_summary
from recsys.model.artifact import TRAINING_METRICS_FILE, ModelMetadata, resolve_model_path
from recsys.model.calibration import Calibration
from recsys.model.commits import begin_commit, commit
from recsys.model.priors import Blend
from recsys.publish.card import write_model_card
from recsys.scoring.loading import check_model_name

if TYPE_CHECKING:
    import torch
    from torch import nn

    from finetune.run import Run


def compute_loss(
    logits: torch.Tensor, labels: torch.Tensor, loss: str, list_size: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Pointwise: BCE per row. Listwise: softmax cross-entropy that picks each list's click (its first item).

    ``logits`` is ``[lists * list_size]`` for lists on their own, or ``[lists, items]`` when each click
    also stands against the other items of the batch; the click of list n is item ``n * list_size``.
    ``weights`` (one per row, or per list) multiply each one's loss, rescaled to a mean of 1 in the batch:
    they change how the batch's examples count against each other, not the size of its loss.
    """
    import torch  # imported here, as finetune.run and recsys.model.architectures: --help loads no torch
    from torch import nn

    reduction = "mean" if weights is None else "none"
    if loss == "pointwise":
        losses = nn.functional.binary_cross_entropy_with_logits(logits.view(-1), labels.float(), reduction=reduction)
    else:
        if logits.dim() == 1:
            scores = logits.view(-1, list_size)
            target = torch.zeros(len(scores), dtype=torch.long, device=scores.device)
        else:
            scores, target = logits, torch.arange(len(logits), device=logits.device) * list_size
        losses = nn.functional.cross_entropy(scores, target, reduction=reduction)
    if weights is None:
        return losses
    weights = weights.to(losses.dtype)
    return (losses * weights / weights.mean()).mean()


def logits_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**{name: tensor for name, tensor in batch.items() if name not in ("labels", "weights")})


def predict(run: Run) -> np.ndarray:
    """The model's text logits for every row of the eval file."""
    import torch  # imported here: --help loads no torch

    run.model.eval()
    logits = []
    with torch.no_grad():
        for batch in run.eval_loader:
            logits.append(run.accelerator.gather_for_metrics(logits_of(run.model, batch)))
    run.model.train()
    return torch.cat(logits).float().cpu().numpy()


def train_epoch(run: Run, progress: tqdm) -> None:
    """Train on the rest of this epoch, evaluating every ``eval_steps``; return early at the last step or on
    running out of patience. An epoch that runs to its end is evaluated there."""
    config, state, accelerator = run.config, run.state, run.accelerator
    # Through the loader, which re-applies its own epoch count to the data set on each iteration;
    # after --resume that count starts at 0, and the order and negatives would be epoch 0's.
    run.train_loader.set_epoch(state.epoch)
    batches = run.train_loader
    if state.batches_done:  # resumed mid-epoch
        batches = accelerator.skip_first_batches(run.train_loader, state.batches_done)
    started = time.perf_counter()
    for batch in batches:
        with accelerator.accumulate(run.model):
            logits = logits_of(run.model, batch)
            loss = compute_loss(logits, batch["labels"], config.loss, run.list_size, batch.get("weights"))
            accelerator.backward(loss)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        state.batches_done += 1
        state.pairs_seen += len(batch["labels"]) * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue
        state.global_step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        accelerator.log({"train/loss": loss.item(), "train/lr": run.scheduler.get_last_lr()[0]}, step=state.global_step)
        last = state.global_step >= run.total_steps
        run.out_of_time = run.over_budget
        if last or run.out_of_time or (config.eval_steps and state.global_step % config.eval_steps == 0):
            state.train_seconds += time.perf_counter() - started
            evaluate_and_keep_best(run)
            started = time.perf_counter()
            if run.out_of_patience:
                run.stopped_early = True
            if last or run.stopped_early or run.out_of_time:
                return
    state.train_seconds += time.perf_counter() - started
    state.epoch, state.batches_done = state.epoch + 1, 0
    if not run.evaluated_at_this_step:  # unless the last batch fell on an --eval-steps evaluation
        evaluate_and_keep_best(run)
        run.stopped_early, run.out_of_time = run.out_of_patience, run.over_budget


def evaluate_and_keep_best(run: Run) -> None:
    """Score the eval file, fit the blend and calibration there, keep the model if it is the best yet, checkpoint."""
    state, frame = run.state, run.eval_frame
    with interpolated(run.accelerator.unwrap_model(run.model), run.base_weights, run.config.wise_alpha):
        logits = predict(run)
        features = run.eval_features
        blend = Blend.fit(frame, logits, features) if run.priors else Blend()
        scores = blend.final(logits, features)
        calibration = Calibration.fit(scores, frame[CLICKED].to_numpy())
        probabilities = calibration.probabilities(scores)
        metrics = evaluate_scores(frame, scores, probabilities, intervals=False).to_dict() | {"step": state.global_step}
        if run.priors:
            metrics["text_auc"] = evaluate_scores(frame, logits, probabilities, intervals=False).values["auc"]
        improved = metrics["auc"] > state.best_auc
        if improved and run.accelerator.is_main_process:
            save_best(run, metrics, calibration, blend, probabilities)
    state.history.append(metrics)
    run.accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=state.global_step)
    run.accelerator.print(f"step {state.global_step}: eval auc {metrics['auc']:.4f} ndcg@10 {metrics['ndcg@10']:.4f}")
    if improved:
        state.best_auc, state.best_step, state.evals_without_improvement = metrics["auc"], state.global_step, 0
    else:
        state.evals_without_improvement += 1
    save_checkpoint(run.accelerator, run.checkpoints, state)


def save_best(run: Run, metrics: dict, calibration: Calibration, blend: Blend, probabilities: np.ndarray) -> None:
    """Save the model as it is now, with what serving needs: calibration, threshold, blend and item priors."""
    from recsys.model.architectures import save_model  # imported here: --help loads no torch

    config, labels = run.config, run.eval_frame[CLICKED].to_numpy()
    threshold = threshold_summary(labels, probabilities, choose_threshold(labels, probabilities))
    metadata = ModelMetadata(
        architecture=config.architecture,
        base_model=run.base_model,
        max_length=run.max_length,
        calibration_a=calibration.a,
        calibration_b=calibration.b,
        threshold=threshold["threshold"],
        blend=blend.weights,
        fine_tuned=True,
        training={
            **run.settings(),
            "eval_file": config.validation_file,  # "": a share of the train file, which "validation" describes
            "validation": run.validation,
            "text_lengths": run.lengths.to_dict(),
            **({"position_weighting": run.weighting} if run.weighting else {}),
            "best_step": run.state.global_step,
            "train_rows": run.train_rows,
        },
        metrics={"eval": metrics, "threshold": threshold},
    )
    model = without_adapters(run.accelerator.unwrap_model(run.model))

    def write(folder: Path) -> None:
        save_model(model, run.tokenizer, folder, metadata)
        if run.priors:
            run.priors.save(folder)

    # Beside the checkpoints until the run finishes: output_dir keeps the previous model meanwhile.
    save_best_model(run.checkpoints, run.state.global_step, write)


def finish(run: Run) -> dict:
    """Publish the best model into ``output_dir`` with the run's summary (``metrics.json``) and the card; then
    delete the checkpoints, unless ``--keep-checkpoints`` (a run stopped early is finished too)."""
    state = run.state
    ending = run.ending
    run.accelerator.print(f"training {ending}")
    summary = {
        "ending": ending,
        "best_step": state.best_step,
        "best": next((h for h in state.history if h["step"] == state.best_step), None),
        "history": state.history,
        "steps": state.global_step,
        "validation": run.validation,
        "train_seconds": round(state.train_seconds, 1),
        "pairs_per_second": round(state.pairs_seen / max(state.train_seconds, 1e-9), 2),
        "config": run.settings(),
    }
    if run.accelerator.is_main_process:
        commit_best_model(run, summary)
        if not run.config.keep_checkpoints:  # the best model is committed: nothing needs them but --resume
            delete_checkpoints(run.checkpoints)
        if run.config.push_to_hub:
            from recsys.publish.hub import push_model

            push_model(run.output_dir, run.config.hub_model_id, private=run.config.hub_private)
    run.accelerator.end_training()
    return summary


def commit_best_model(run: Run, summary: dict) -> None:
    """Move the best model, ``metrics.json`` and the card into ``output_dir`` as one change
    (``recsys.model.commits.commit``).

    A run killed at any point leaves the model that was there before, or this one; never a mix.
    """
    best = best_model_dir(run.checkpoints, run.state.best_step)
    if not best.is_dir():
        raise UserError(
            f"{best}: the best model of step {run.state.best_step} is not among the checkpoints (saved by an "
            "older ClickTune?); train again without --resume"
        )
    staging = begin_commit(run.output_dir)
    shutil.copytree(best, staging, dirs_exist_ok=True)  # with sentence-transformers' module folders
    (staging / TRAINING_METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    write_model_card(staging, model_name=run.output_dir.name)
    commit(run.output_dir)


def main(argv: list[str] | None = None) -> dict:
    config = parse_config(argv)
    # Before a model or a click log loads: the run writes into output_dir and, at its end, replaces the model files.
    check_not_an_input_folder(
        config.output_dir, config.inputs(), "give --output-dir a folder of its own, e.g. models/clicktune-next"
    )
    check_model_name(resolve_model_path(config.model_name_or_path))  # a mistyped folder: now, not from the Hub
    from finetune.run import prepare  # imported here, with Accelerate and torch: --help loads neither

    run = prepare(config)
    quiet = not run.accelerator.is_local_main_process
    progress = tqdm(total=run.total_steps, initial=run.state.global_step, disable=quiet, desc="training")
    run.model.train()
    while not run.finished:
        train_epoch(run, progress)
    progress.close()
    return finish(run)


def cli() -> None:
    """The ``clicktune-train`` console script: ``main`` with user errors as one line."""
    run_cli(main)


if __name__ == "__main__":
    cli()
