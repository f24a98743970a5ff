"""bench.speed's training: ``finetune.train`` against sentence-transformers' ``SentenceTransformerTrainer`` with
``MultipleNegativesRankingLoss`` on the same lists, batch, ``max_length`` and negatives, full fine-tuning, LoRA and
bf16; each trainer in its own process, with its pairs/s, peak memory and the validation AUC it reaches."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from bench.speed_measure import DATA, THREADS, Report, table
from recsys.data.contract import ITEM, QUERY, read_clicks


def train_clicktune(
    output_dir: str, steps: int, batch: int, length: int, lora_rank: int, precision: str = "no"
) -> dict:
    """``finetune.train`` for ``steps`` steps, text only (no item priors), evaluated once at the end."""
    from finetune.train import main

    flags = ["--max-steps", str(steps), "--batch-size", str(batch), "--max-length", str(length)]
    flags += ["--mixed-precision", precision]
    flags += ["--lora-rank", str(lora_rank), "--eval-steps", "0", "--patience", "0", "--no-item-priors"]
    summary = main([*flags, "--output-dir", output_dir, "--report-to", "none"])
    return {"pairs/s": summary["pairs_per_second"], "seconds": summary["train_seconds"]}


def train_peer(
    output_dir: str, steps: int, batch: int, length: int, negatives: int, precision: str = "no", seed: int = 42
) -> dict:
    """sentence-transformers' trainer with MultipleNegativesRankingLoss on the same lists as ``finetune.train``."""
    from datasets import Dataset as HfDataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    from finetune.data import ListwiseDataset
    from recsys.model.artifact import DEFAULT_MODEL
    from recsys.model.artifact import resolve_model_path as base_path

    lists = ListwiseDataset(read_clicks(DATA / "train.csv"), negatives, seed)
    examples = [lists[n] for n in range(len(lists))]
    columns = {"anchor": [e.query for e in examples], "positive": [e.items[0] for e in examples]}
    columns |= {f"negative_{k}": [e.items[k] for e in examples] for k in range(1, negatives + 1)}
    model = SentenceTransformer(base_path(DEFAULT_MODEL), device="cpu")
    model.max_seq_length = length
    arguments = SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        weight_decay=0.01,
        seed=seed,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        logging_steps=steps,
        disable_tqdm=True,
        bf16=precision == "bf16",
    )
    loss = losses.MultipleNegativesRankingLoss(model, scale=20.0)
    trainer = SentenceTransformerTrainer(model, arguments, train_dataset=HfDataset.from_dict(columns), loss=loss)
    seconds = trainer.train().metrics["train_runtime"]
    model.save(output_dir)
    return {"pairs/s": steps * batch * (1 + negatives) / seconds, "seconds": seconds}


def _in_child(function: Callable, arguments: tuple, results) -> None:
    torch.set_num_threads(THREADS)
    out = function(*arguments)
    # VmHWM, the peak of this process's own memory (ru_maxrss would carry the parent's peak across the fork)
    peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    results.put(out | {"peak MiB": int(peak.split()[1]) / 1024})


def in_child(function: Callable, *arguments) -> dict:
    """``function(*arguments)`` in a fresh process, with that process's peak memory."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_in_child, args=(function, arguments, results))
    child.start()
    out = results.get()
    child.join()
    return out


def text_auc(model_dir: str) -> float:
    """Group AUC of a model's text logits on the validation users (no priors, no calibration needed)."""
    from recsys.evaluation.metrics import evaluate_scores
    from recsys.scoring.loading import load_scorer

    frame = read_clicks(DATA / "valid.csv")
    logits = load_scorer(model_dir).score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    return evaluate_scores(frame, logits, logits, intervals=False).values["auc"]


def trainer_runs(folder: str, steps: int, batch: int, length: int, negatives: int) -> dict[str, tuple]:
    """Each trainer's name, and the function and arguments that run it into its own folder; the peer first."""
    peer, ours = "sentence-transformers trainer + MNRL", "finetune.train"
    return {
        f"{peer}, full fine-tuning (peer)": (train_peer, f"{folder}/peer", steps, batch, length, negatives),
        f"{ours}, full fine-tuning": (train_clicktune, f"{folder}/full", steps, batch, length, 0),
        f"{ours}, LoRA rank 8 (the default recipe)": (train_clicktune, f"{folder}/lora", steps, batch, length, 8),
        f"{peer}, full fine-tuning, bf16": (train_peer, f"{folder}/peer16", steps, batch, length, negatives, "bf16"),
        f"{ours}, full fine-tuning, --mixed-precision bf16": (
            train_clicktune,
            f"{folder}/full16",
            steps,
            batch,
            length,
            0,
            "bf16",
        ),
    }


def training(report: Report, steps: int, batch: int = 16, length: int = 64, negatives: int = 4) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, (function, out, *arguments) in trainer_runs(folder, steps, batch, length, negatives).items():
            result = in_child(function, out, *arguments)
            rows.append({"trainer": name, **result, "validation AUC": text_auc(out)})
    peer = rows[0]["pairs/s"]
    for row in rows:
        row["× peer"] = row["pairs/s"] / peer
    report.add(
        "Training: pairs/s against SentenceTransformerTrainer",
        f"{steps} steps of {batch} lists (a click and {negatives} non-clicks of its group, the same lists for "
        f"both), max_length {length}, the packaged MiniLM, lr 2e-5 with 10% warm-up, seed 42, each trainer in "
        "its own process (peak memory is that process's). Pairs/s counts (context, title) pairs per second of "
        "training (ClickTune: its loop's own clock, evaluation excluded; the peer: `train_runtime`). Validation "
        "AUC is of the text score on the validation users, after the same steps.\n\n" + table(rows),
    )
    report.figures["training"] = rows
