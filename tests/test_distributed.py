"""Training on several processes (``accelerate launch``, DDP) learns what one process learns.

Why the two should agree: with ``--batch-size 4`` on 2 processes, Accelerate hands process 0 and
process 1 batches 2k and 2k + 1 of the same order, which together are batch k of one process with
``--batch-size 8``. Each process's loss is the mean over its half, and DDP averages the two
gradients: the mean over the whole batch, the gradient of one process, summed in another order.
The learning-rate schedule, the seed, the negatives drawn and the evaluation (gathered from both
processes) are the same, so the weights after each step agree up to float rounding.

"Equal within noise", asserted: every saved weight within 1e-5 of the one-process run's, and the
evaluation's AUC equal within 1e-6 at every evaluation. Observed: about 5e-7 apart, while 5 steps
move the weights by about 2e-3, and a schedule one warm-up step off (the bug that rounding the
warm-up over processes' steps made) puts them 2e-3 apart. Dropout is off in the model trained here:
each process would draw its own masks for its half, and the runs would differ by that noise. Not
equal by design: in-batch negatives, which see only each process's half of the batch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finetune.train import main
from recsys.model.artifact import CHECKPOINTS_DIR, TRAINING_METRICS_FILE
from recsys.scoring.loading import load_scorer

REPO = Path(__file__).resolve().parents[1]
FSDP_CONFIG = REPO / "finetune" / "accelerate_configs" / "fsdp.yaml"
WEIGHT_TOLERANCE = 1e-5
AUC_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def model_without_dropout(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT with dropout off: training it is deterministic, on one process or two."""
    directory = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    shutil.copytree(tiny_model_dir, directory, dirs_exist_ok=True)
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


@pytest.mark.usefixtures("reset_accelerate")
@pytest.mark.slow
def test_two_processes_train_the_weights_that_one_process_trains(
    accelerate_launch, model_without_dropout: Path, clicks_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bi-encoder trained in full (a weight it never uses, its pooler, too): 5 steps, evaluated at 2, 4 and 5,
    with the default 10% warm-up, which is half a step of one process and one step of two processes' schedule."""
    args = [
        "--model-name-or-path", str(model_without_dropout),
        "--train-file", str(clicks_path), "--eval-file", str(clicks_path),
        "--report-to", "none", "--max-length", "32", "--learning-rate", "1e-3", "--lora-rank", "0",
        "--loss", "listwise", "--negatives", "2", "--max-steps", "5", "--eval-steps", "2",
        "--eval-batch-size", "32",  # 141 rows: 5 batches, unevenly shared, which the gathering must undo
    ]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")  # both runs on the CPU, also where a GPU is
    main([*args, "--output-dir", str(one), "--batch-size", "8"])
    launched = accelerate_launch("finetune.train", *args, "--output-dir", str(two), "--batch-size", "4")

    assert launched.returncode == 0, launched.stderr[-3000:]
    alone, shared = weights(one), weights(two)
    start = weights(model_without_dropout)
    assert alone.keys() == shared.keys()
    moved = max((alone[name] - start[name.removeprefix("bert.")]).abs().max().item() for name in alone)
    assert moved > 100 * WEIGHT_TOLERANCE  # training moved the weights far more than the tolerance
    for name in alone:
        torch.testing.assert_close(shared[name], alone[name], atol=WEIGHT_TOLERANCE, rtol=0, msg=name)

    history = [json.loads((d / TRAINING_METRICS_FILE).read_text())["history"] for d in (one, two)]
    assert [h["step"] for h in history[1]] == [h["step"] for h in history[0]] == [2, 4, 5]
    for mine, theirs in zip(*history, strict=True):
        assert theirs["auc"] == pytest.approx(mine["auc"], abs=AUC_TOLERANCE)
        assert theirs["rows"] == mine["rows"] == 141  # the gathered eval scores are each row's, once
    assert not (two / CHECKPOINTS_DIR).exists()  # process 0 committed the model and deleted the checkpoints
    assert load_scorer(str(two)).metadata.fine_tuned


def test_the_example_fsdp_config_is_one_that_accelerate_reads() -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(FSDP_CONFIG))
    assert config.distributed_type == DistributedType.FSDP
    assert config.fsdp_config["fsdp_version"] == 2
    assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "BertLayer"  # MiniLM's blocks
