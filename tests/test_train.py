"""Training: the losses, and end to end on the tiny BERT: smoke runs, freezing, and resuming from checkpoints."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from accelerate.state import AcceleratorState, PartialState
from safetensors.torch import load_file

from finetune.checkpoints import checkpoints_in
from finetune.data import hold_out
from finetune.train import compute_loss, main
from recsys.data.contract import read_clicks
from recsys.defaults import TRAIN_FILE as BUNDLED_TRAIN
from recsys.errors import ContractError, UserError
from recsys.model.artifact import (
    CHECKPOINTS_DIR,
    METADATA_FILE,
    MODULE_DIRS,
    PRIORS_FILE,
    TRAINING_METRICS_FILE,
    ModelFolderError,
)
from recsys.model.checks import check_model_folder
from recsys.publish.upload_plan import list_files, plan_upload, published_files
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates

pytestmark = pytest.mark.usefixtures("reset_accelerate")


@pytest.fixture
def train(tiny_model_dir: Path, clicks_path: Path, tmp_path: Path):
    """Run training as the command line does, into ``tmp_path / "model"``."""

    def run(*argv: str) -> dict:
        args = [
            "--model-name-or-path", str(tiny_model_dir),
            "--train-file", str(clicks_path),
            "--eval-file", str(clicks_path),
            "--output-dir", str(tmp_path / "model"),
            "--report-to", "none",
            "--max-length", "32",
            "--batch-size", "8",
            "--eval-batch-size", "256",
            "--learning-rate", "1e-3",
            "--lora-rank", "0",  # every weight trains; LoRA has its own test
        ]  # fmt: skip
        try:
            return main([*args, *argv])
        finally:
            # A second run in the same test starts from fresh Accelerate state, as a new process would.
            AcceleratorState._reset_state(True)
            PartialState._reset_state()

    return run


def weights(path: Path) -> dict[str, torch.Tensor]:
    """A saved model's tensors, named without the task model's ``bert.`` prefix."""
    # Copied out of the memory-mapped file, which a test may truncate afterwards.
    return {name.removeprefix("bert."): t.clone() for name, t in load_file(path / "model.safetensors").items()}


def checkpoint_steps(output_dir: Path) -> list[int]:
    """The steps of the complete checkpoints."""
    return [int(p.name.split("-")[1]) for p in checkpoints_in(output_dir / CHECKPOINTS_DIR)]


def test_pointwise_loss_is_binary_cross_entropy_per_row() -> None:
    labels = torch.tensor([1.0, 0.0, 1.0])
    logits = torch.tensor([2.0, -1.0, 0.5])
    expected = -(torch.log(torch.sigmoid(logits)) * labels + torch.log(1 - torch.sigmoid(logits)) * (1 - labels))
    assert compute_loss(logits, labels, "pointwise", 1) == pytest.approx(expected.mean().item())


def test_listwise_loss_targets_each_lists_click() -> None:
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    right = torch.tensor([5.0, 0.0, 0.0, 5.0, 0.0, 0.0])
    wrong = torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0, 5.0])
    assert compute_loss(right, labels, "listwise", 3) < 0.05 < compute_loss(wrong, labels, "listwise", 3)


def test_in_batch_loss_targets_each_examples_click_among_all_items() -> None:
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    # Example 0's click is item 0, example 1's is item 2; -inf entries are masked out.
    right = torch.tensor([[5.0, 0.0, 0.0, -torch.inf], [0.0, 0.0, 5.0, 0.0]])
    wrong = torch.tensor([[0.0, 0.0, 5.0, -torch.inf], [5.0, 0.0, 0.0, 0.0]])
    assert compute_loss(right, labels, "listwise", 2) == pytest.approx(
        -torch.log_softmax(right, 1)[[0, 1], [0, 2]].mean().item()
    )
    assert compute_loss(right, labels, "listwise", 2) < 0.05 < compute_loss(wrong, labels, "listwise", 2)


@pytest.mark.parametrize(
    ("architecture", "loss"), [("bi", "pointwise"), ("bi", "listwise"), ("cross", "pointwise"), ("cross", "listwise")]
)
@pytest.mark.slow
def test_train_smoke_and_reload(train, tmp_path: Path, architecture: str, loss: str) -> None:
    summary = train("--architecture", architecture, "--loss", loss, "--max-steps", "3", "--negatives", "2")
    output_dir = tmp_path / "model"

    assert summary["steps"] == 3
    assert summary["best_step"] == 3
    assert [h["step"] for h in summary["history"]] == [3]
    assert json.loads((output_dir / TRAINING_METRICS_FILE).read_text()) == json.loads(json.dumps(summary))
    assert (output_dir / "README.md").read_text().startswith("---\n")
    assert (output_dir / METADATA_FILE).is_file()

    scorer = load_scorer(str(output_dir))
    assert scorer.metadata.fine_tuned
    assert scorer.metadata.architecture == architecture
    assert scorer.metadata.training["loss"] == loss
    recorded = {key: scorer.metadata.training[key] for key in ("learning_rate", "in_batch_negatives")}
    assert recorded == {key: summary["config"][key] for key in recorded}  # one name, one value, in both files
    assert recorded["learning_rate"] > 0 and "lr" not in scorer.metadata.training
    assert scorer.metadata.max_length == 32
    assert 0 < scorer.metadata.threshold < 1
    assert scorer.metadata.calibration_a > 0
    items = pd.DataFrame({"item": ["microsoft gets unexpected bump windows revenue", "tautog bite"]})
    assert rank_candidates(scorer, "microsoft windows", items)["rank"].tolist() == [1, 2]


@pytest.mark.slow
def test_in_batch_negatives_change_what_training_learns(train, tmp_path: Path) -> None:
    common = ("--max-steps", "2", "--negatives", "2")
    train(*common, "--output-dir", str(tmp_path / "own"))
    summary = train(*common, "--in-batch-negatives", "--output-dir", str(tmp_path / "in-batch"))
    assert summary["steps"] == 2
    own, in_batch = weights(tmp_path / "own"), weights(tmp_path / "in-batch")
    assert any(not torch.equal(own[name], in_batch[name]) for name in own)


def test_without_item_priors_the_final_score_is_the_text_logit(train, tmp_path: Path) -> None:
    train("--no-item-priors", "--max-steps", "1")
    scorer = load_scorer(str(tmp_path / "model"))
    assert scorer.metadata.blend == {} and scorer.priors is None
    assert not (tmp_path / "model" / PRIORS_FILE).exists()


@pytest.mark.slow
def test_bf16_mixed_precision_trains_close_to_fp32_and_saves_fp32_weights(
    train, tiny_model_dir: Path, tmp_path: Path
) -> None:
    full = train("--max-steps", "2", "--output-dir", str(tmp_path / "fp32"))
    mixed = train("--max-steps", "2", "--mixed-precision", "bf16", "--output-dir", str(tmp_path / "bf16"))
    assert mixed["config"]["mixed_precision"] == "bf16"
    start, fp32, bf16 = weights(tiny_model_dir), weights(tmp_path / "fp32"), weights(tmp_path / "bf16")
    assert {t.dtype for t in bf16.values()} == {torch.float32}
    name = "encoder.layer.1.output.dense.weight"
    moved = (fp32[name] - start[name]).abs().mean()
    assert not torch.equal(bf16[name], fp32[name])  # bfloat16 matmuls: another run, not the same one
    # but close to it, on average (Adam turns a tiny gradient's rounding into a whole step of some weights)
    assert (bf16[name] - fp32[name]).abs().mean() < moved / 4
    assert abs(mixed["best"]["auc"] - full["best"]["auc"]) < 0.05


def test_training_changes_the_weights(train, tiny_model_dir: Path, tmp_path: Path) -> None:
    train("--max-steps", "2")
    before, after = weights(tiny_model_dir), weights(tmp_path / "model")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert "encoder.layer.1.output.dense.weight" in changed


def test_lora_trains_adapters_and_saves_an_ordinary_model(train, tiny_model_dir: Path, tmp_path: Path) -> None:
    train("--lora-rank", "4", "--max-steps", "2", "--learning-rate", "1e-2")
    before, after = weights(tiny_model_dir), weights(tmp_path / "model")
    assert after.keys() == before.keys(), "adapters were saved instead of merged into the weights"
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    # Adapters sit on the linear layers: their merged weights change, the embeddings and norms do not.
    assert "encoder.layer.1.attention.self.query.weight" in changed
    assert not any(name.startswith("embeddings.") or "LayerNorm" in name for name in changed)
    assert load_scorer(str(tmp_path / "model")).metadata.fine_tuned


@pytest.mark.slow
def test_wise_alpha_saves_the_interpolation_of_base_and_fine_tuned_weights(
    train, tiny_model_dir: Path, tmp_path: Path
) -> None:
    train("--max-steps", "2", "--output-dir", str(tmp_path / "full"))
    train("--max-steps", "2", "--output-dir", str(tmp_path / "half"), "--wise-alpha", "0.5")
    base, full, half = weights(tiny_model_dir), weights(tmp_path / "full"), weights(tmp_path / "half")
    name = "encoder.layer.1.output.dense.weight"
    assert not torch.allclose(full[name], base[name])
    torch.testing.assert_close(half[name], 0.5 * full[name] + 0.5 * base[name])


@pytest.mark.slow
def test_the_scale_is_fixed_unless_given_its_own_learning_rate(train, tmp_path: Path) -> None:
    train("--max-steps", "2", "--scale", "17", "--output-dir", str(tmp_path / "fixed"))
    train(
        "--max-steps", "2", "--scale", "17", "--scale-learning-rate", "0.5", "--output-dir", str(tmp_path / "learned")
    )
    assert load_scorer(str(tmp_path / "fixed")).metadata.scale == 17
    assert load_scorer(str(tmp_path / "learned")).metadata.scale != 17


@pytest.mark.slow
def test_retraining_a_fine_tuned_model_keeps_its_original_base(train, tiny_model_dir: Path, tmp_path: Path) -> None:
    train("--max-steps", "1")
    first = tmp_path / "model"
    retrained = tmp_path / "retrained"
    train("--max-steps", "1", "--model-name-or-path", str(first), "--output-dir", str(retrained))
    # The zero-shot baseline of the retrained model is the original base, not the model it started from.
    assert load_scorer(str(retrained)).metadata.base_model == str(tiny_model_dir)


@pytest.mark.parametrize("architecture", ["bi", "cross"])
@pytest.mark.slow
def test_freeze_layers_freezes_embeddings_and_lowest_layers(
    train, tiny_model_dir: Path, tmp_path: Path, architecture: str
) -> None:
    train("--architecture", architecture, "--freeze-layers", "1", "--max-steps", "3")
    before, after = weights(tiny_model_dir), weights(tmp_path / "model")
    frozen = [name for name in before if name.startswith(("embeddings.", "encoder.layer.0."))]
    trained = [name for name in before if name.startswith("encoder.layer.1.")]
    assert frozen and trained
    for name in frozen:
        assert torch.equal(before[name], after[name]), f"{name} changed though frozen"
    for name in trained:
        assert not torch.equal(before[name], after[name]), f"{name} did not train"


def test_freeze_layers_beyond_the_model_is_an_error(train) -> None:
    with pytest.raises(ValueError, match="--freeze-layers 3: the model has only 2 encoder layers"):
        train("--freeze-layers", "3", "--max-steps", "1")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--freeze-layers", "-1", "--freeze-layers must be 0 or more"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--wise-alpha", "0", r"--wise-alpha must be in \(0, 1\]"),
        ("--lora-rank", "-2", "--lora-rank must be 0 or more"),
        ("--learning-rate", "-1", "--learning-rate must be positive, or 0 for the default"),
    ],
)
def test_bad_settings_fail_with_the_flag_named(train, flag: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train(flag, value)


@pytest.mark.parametrize(("flag", "value"), [("--architecture", "poly"), ("--loss", "pairwise")])
def test_an_unknown_choice_is_refused_with_the_choices(
    train, flag: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit:
        train(flag, value)
    assert exit.value.code == 2  # as argparse ends a bad flag
    assert f"{flag}: invalid choice: '{value}'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_finished_run_deletes_its_checkpoints(train, tmp_path: Path) -> None:
    output_dir = tmp_path / "model"
    train("--max-steps", "2", "--eval-steps", "1")
    assert not (output_dir / CHECKPOINTS_DIR).exists()
    assert not [p.name for p in output_dir.iterdir() if p.name.startswith(".")]  # nothing set aside either
    assert load_scorer(str(output_dir)).metadata.training["best_step"] in (1, 2)
    with pytest.raises(FileNotFoundError, match="keeps its checkpoints only with --keep-checkpoints"):
        train("--max-steps", "4", "--resume")


@pytest.mark.slow
def test_a_run_stopped_early_deletes_its_checkpoints(train, tmp_path: Path) -> None:
    # Steps far below float32's resolution of the weights leave them as they are: no evaluation improves.
    summary = train("--max-steps", "6", "--eval-steps", "1", "--patience", "1", "--learning-rate", "1e-20")
    assert summary["steps"] == 2 < 6
    assert not (tmp_path / "model" / CHECKPOINTS_DIR).exists()
    assert load_scorer(str(tmp_path / "model")).metadata.fine_tuned


def test_resume_without_a_checkpoint_is_an_error(train, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"--resume: no complete checkpoint under .*checkpoints"):
        train("--resume", "--max-steps", "2")


@pytest.mark.slow
def test_resume_continues_from_the_newest_checkpoint(train, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output_dir = tmp_path / "model"
    first = train("--max-steps", "4", "--eval-steps", "2", "--keep-checkpoints")
    assert [h["step"] for h in first["history"]] == [2, 4]
    assert checkpoint_steps(output_dir) == [2, 4]
    at_step_4 = weights(output_dir / CHECKPOINTS_DIR / "step-4")
    capsys.readouterr()

    resumed = train("--resume", "--max-steps", "6", "--eval-steps", "1", "--patience", "0", "--keep-checkpoints")
    assert f"resumed from {output_dir / 'checkpoints' / 'step-4'} at step 4" in capsys.readouterr().out
    assert resumed["steps"] == 6
    assert [h["step"] for h in resumed["history"]] == [2, 4, 5, 6]
    assert resumed["history"][:2] == first["history"]
    assert json.loads((output_dir / TRAINING_METRICS_FILE).read_text())["steps"] == 6
    assert checkpoint_steps(output_dir) == [5, 6]
    # Step 5 trains on this run's schedule, not at the end of the 4-step run's, where the learning rate is 0.
    at_step_5 = weights(output_dir / CHECKPOINTS_DIR / "step-5")
    assert any(not torch.equal(at_step_4[name], at_step_5[name]) for name in at_step_4)


@pytest.mark.parametrize(
    ("architecture", "loss", "batch_size"),
    [
        ("bi", "pointwise", "48"),  # 3 batches an epoch: resumes from step 4, one batch into epoch 2
        ("cross", "listwise", "16"),  # 5 lists of 16 an epoch: resumes from the end of epoch 1
    ],
)
@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(
    train, tmp_path: Path, architecture: str, loss: str, batch_size: str
) -> None:
    output_dir = tmp_path / "model"
    argv = ["--architecture", architecture, "--loss", loss, "--batch-size", batch_size, "--negatives", "2"]
    argv += ["--max-steps", "6", "--eval-steps", "2", "--patience", "0", "--keep-checkpoints"]
    uninterrupted = train(*argv)
    expected = weights(output_dir / CHECKPOINTS_DIR / "step-6")

    # As if the run had been killed while writing its newest checkpoint: --resume takes the one before.
    newest = output_dir / CHECKPOINTS_DIR / "step-6"
    half = newest.rename(newest.with_name("step-6.partial"))
    with (half / "model.safetensors").open("r+b") as handle:
        handle.truncate(100)
    resumed_from = checkpoint_steps(output_dir)[-1]
    assert 3 < resumed_from < 6
    resumed = train(*argv, "--resume")

    assert resumed["steps"] == 6
    actual = weights(output_dir / CHECKPOINTS_DIR / "step-6")
    assert actual.keys() == expected.keys()
    # Bit for bit: the same batches, negatives, dropout masks and learning rates as the uninterrupted run.
    mismatched = [name for name in expected if not torch.equal(actual[name], expected[name])]
    assert not mismatched, f"resuming from step {resumed_from} changed {mismatched}"
    assert resumed["history"] == uninterrupted["history"]


def test_an_eval_file_that_cannot_rank_is_refused_before_training(train, clicks_path: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(clicks_path)
    # Every group all clicks or all non-clicks: no AUC or nDCG to choose the best model by.
    eval_file = tmp_path / "one-sided.csv"
    frame.assign(clicked=frame.groupby("group")["clicked"].transform("max")).to_csv(eval_file, index=False)
    with pytest.raises(
        ContractError, match=rf"{re.escape(str(eval_file))}: no group holds both a click and a non-click"
    ):
        train("--eval-file", str(eval_file), "--max-steps", "1")
    assert not (tmp_path / "model" / CHECKPOINTS_DIR).exists()


# A run killed at any point


class Killed(BaseException):
    """A kill: nothing in the code under test catches it, so nothing after it runs."""


def model_files(folder: Path) -> dict[str, bytes]:
    """The files of the folder itself and its module folders (not checkpoints/ or runs/): what serving and
    publishing read."""
    paths = [p for p in folder.iterdir() if p.is_file()]
    paths += [p for name in MODULE_DIRS if (folder / name).is_dir() for p in (folder / name).iterdir()]
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in paths}


@pytest.mark.slow
def test_a_run_killed_at_any_write_leaves_the_previous_model_or_the_new_one(
    train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output_dir, previous_dir, reference = tmp_path / "model", tmp_path / "previous", tmp_path / "reference"
    train("--max-steps", "1", "--seed", "1", "--output-dir", str(previous_dir))
    previous = model_files(previous_dir)
    train("--max-steps", "1", "--seed", "2", "--output-dir", str(reference))
    new = model_files(reference)
    assert new["model.safetensors"] != previous["model.safetensors"]

    rename, renames = os.replace, []

    def killed_at(k: int):
        def replace(source, target) -> None:
            if len(renames) == k:
                raise Killed(f"killed before rename {k}")
            renames.append(target)
            rename(source, target)

        return replace

    monkeypatch.setattr(os, "replace", killed_at(-1))  # count the renames of a whole run
    train("--max-steps", "1", "--seed", "2")
    writes = len(renames)
    assert writes > 10  # checkpoint, best model, then each file of the commit

    outcomes = set()
    for k in range(writes):
        shutil.rmtree(output_dir)
        shutil.copytree(previous_dir, output_dir)  # the previous run's model (its checkpoints deleted)
        renames.clear()
        monkeypatch.setattr(os, "replace", killed_at(k))
        with pytest.raises(Killed):
            train("--max-steps", "1", "--seed", "2")
        monkeypatch.setattr(os, "replace", rename)

        assert check_model_folder(output_dir) is not None  # finishes a save that was past its commit point
        found = model_files(output_dir)
        if found == previous:
            outcomes.add("previous")
            continue
        # Otherwise all of the new run: the same files, weights, metadata and summary as its uninterrupted twin.
        assert found.keys() == new.keys(), f"killed before rename {k}: a mix of files"
        assert found["model.safetensors"] == new["model.safetensors"], f"killed before rename {k}: a mix"
        saved, expected = (json.loads(files[METADATA_FILE]) for files in (found, new))
        for metadata in (saved, expected):
            del metadata["training"]["output_dir"]
        assert saved == expected
        assert json.loads(found[TRAINING_METRICS_FILE])["config"]["seed"] == 2
        outcomes.add("new")
    assert outcomes == {"previous", "new"}  # kills before the commit point, and after it
    assert load_scorer(str(output_dir)).metadata.training["seed"] == 2


@pytest.mark.slow
def test_a_run_killed_before_it_finished_is_refused_until_resumed(
    train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import finetune.train

    def killed(*args: object) -> None:
        raise Killed("killed before the model was saved")

    output_dir = tmp_path / "model"
    monkeypatch.setattr(finetune.train, "commit_best_model", killed)
    with pytest.raises(Killed):
        train("--max-steps", "2", "--eval-steps", "1")
    monkeypatch.undo()
    assert not (output_dir / "model.safetensors").exists()  # the best model waits beside the checkpoints
    with pytest.raises(ModelFolderError, match=r"did not finish .* `python -m finetune\.train --resume --output-dir"):
        load_scorer(str(output_dir))

    summary = train("--max-steps", "2", "--eval-steps", "1", "--resume")
    assert summary["steps"] == 2
    assert load_scorer(str(output_dir)).metadata.training["best_step"] == summary["best_step"]


@pytest.mark.slow
def test_what_a_run_publishes_names_files_not_paths_of_this_machine(
    train, tmp_path: Path, tiny_model_dir: Path, clicks_path: Path
) -> None:
    train("--max-steps", "1")
    output_dir = tmp_path / "model"
    local = [str(tmp_path), str(tiny_model_dir), str(clicks_path.parent)]
    assert str(clicks_path) in (output_dir / METADATA_FILE).read_text()  # kept here, to re-evaluate on
    published = published_files(output_dir, plan_upload(list_files(output_dir)).upload)
    assert {METADATA_FILE, TRAINING_METRICS_FILE, "README.md"} <= published.keys()
    for path, content in published.items():
        data = content if isinstance(content, bytes) else content.read_bytes()
        assert not [p for p in local if p.encode() in data], path
    assert json.loads(published[TRAINING_METRICS_FILE])["config"]["train_file"] == clicks_path.name


# -- validation on the user's own log -------------------------------------------------------------------------


def test_a_train_file_without_an_eval_file_is_validated_on_its_own_held_out_users(
    tiny_model_dir: Path, clicks_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Selection, threshold, calibration and blend were all fitted on the bundled news log's valid.csv."""
    import finetune.run

    read = []
    monkeypatch.setattr(finetune.run, "read_clicks", lambda path: read.append(Path(path)) or read_clicks(path))
    output_dir = tmp_path / "model"
    try:
        summary = main([
            "--model-name-or-path", str(tiny_model_dir), "--train-file", str(clicks_path),
            "--output-dir", str(output_dir), "--report-to", "none", "--max-length", "32", "--max-steps", "1",
            "--lora-rank", "0",
        ])  # fmt: skip
    finally:
        AcceleratorState._reset_state(True)
        PartialState._reset_state()
    assert read == [clicks_path]  # nothing of the bundled logs
    said = "2 of the 12 groups of clicks.csv (15%"
    assert said in capsys.readouterr().out.splitlines()[0]
    assert said in summary["validation"] and "held out" in summary["validation"]
    training = json.loads((output_dir / METADATA_FILE).read_text())["training"]
    assert training["eval_file"] == "" and training["validation"] == summary["validation"]
    assert f"model selected on {summary['validation']}" in (output_dir / "README.md").read_text()


def test_a_hold_out_keeps_users_whole_and_is_seeded() -> None:
    frame = read_clicks(BUNDLED_TRAIN).assign(user=lambda f: f["group"].str[:3])  # users of several groups each
    train, held, described = hold_out(frame, 0.15, seed=42, source="train.csv")
    assert set(train["user"]).isdisjoint(held["user"]) and len(train) + len(held) == len(frame)
    users = frame["user"].nunique()
    assert (described.unit, described.total, described.held_out) == ("users", users, round(0.15 * users))
    assert hold_out(frame, 0.15, seed=42, source="x")[1].equals(held)
    assert not hold_out(frame, 0.15, seed=7, source="x")[1].equals(held)
    with pytest.raises(UserError, match="one group only, so none can be held out for validation; give --eval-file"):
        hold_out(frame[frame["group"] == frame["group"][0]].drop(columns="user"), 0.15, 42, "one.csv")


def test_the_time_budget_ends_a_run_with_its_best_model_and_says_so(train, tmp_path: Path, capsys) -> None:
    """Training runs epochs until early stopping, bounded by --time-budget: a budget spent ends the run at once."""
    summary = train("--max-steps", "-1", "--num-epochs", "3", "--time-budget", "1e-9", "--eval-steps", "0")
    assert summary["steps"] == 1 and summary["best_step"] == 1  # evaluated where the budget ran out
    assert summary["ending"].startswith("stopped by the time budget (1e-09 min) at step 1, not by convergence")
    assert "give --time-budget a larger number of minutes" in capsys.readouterr().out
    assert load_scorer(str(tmp_path / "model")).metadata.fine_tuned


@pytest.mark.slow
def test_without_a_budget_or_patience_a_run_trains_its_epochs(train) -> None:
    summary = train("--max-steps", "-1", "--num-epochs", "2", "--time-budget", "0", "--patience", "0")
    assert summary["ending"].startswith(f"trained all {summary['steps']} steps (2 epoch(s))")
    assert [h["step"] for h in summary["history"]] == [summary["steps"] // 2, summary["steps"]]


# -- position weights (inverse propensity) --------------------------------------------------------------------


@pytest.fixture
def positioned_clicks(clicks_path: Path, tmp_path: Path) -> Path:
    """The test click log with each row's place in its group as ``position``, in a seeded shuffle of the group (the
    file lists each user's non-clicks before the clicks, so file order would put every click low)."""
    frame = pd.read_csv(clicks_path)
    shuffled = frame.assign(key=np.random.default_rng(0).random(len(frame)))
    path = tmp_path / "positioned.csv"
    frame.assign(position=shuffled.groupby("group")["key"].rank(method="first").astype(int)).to_csv(path, index=False)
    return path


def test_the_weighted_listwise_loss_is_each_lists_loss_weighted_to_a_mean_of_1() -> None:
    logits = torch.tensor([2.0, 0.0, 1.0, -1.0, 0.5, 3.0])  # two lists of 3, each click first
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    # By hand: each list's -log softmax of its click; the weights 4 and 1 rescaled to mean 1 are 1.6 and 0.4.
    first = -2.0 + math.log(math.exp(2.0) + math.exp(0.0) + math.exp(1.0))
    second = 1.0 + math.log(math.exp(-1.0) + math.exp(0.5) + math.exp(3.0))
    expected = (1.6 * first + 0.4 * second) / 2
    weighted = compute_loss(logits, labels, "listwise", 3, torch.tensor([4.0, 1.0]))
    assert weighted.item() == pytest.approx(expected)
    assert compute_loss(logits, labels, "listwise", 3, torch.tensor([40.0, 10.0])).item() == pytest.approx(expected)
    unweighted = compute_loss(logits, labels, "listwise", 3)
    assert compute_loss(logits, labels, "listwise", 3, torch.ones(2)).item() == pytest.approx(unweighted.item())
    assert unweighted.item() == pytest.approx((first + second) / 2)


def test_the_weighted_pointwise_loss_weighs_each_row() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 1.0])
    weights = torch.tensor([5.0, 1.0, 2.0])  # two clicks weighted, the non-click 1; mean 8/3
    rows = [
        -math.log(1 / (1 + math.exp(-2.0))),
        -math.log(1 - 1 / (1 + math.exp(1.0))),
        -math.log(1 / (1 + math.exp(-0.5))),
    ]
    expected = sum(w * 3 / 8 * row for w, row in zip([5.0, 1.0, 2.0], rows, strict=True)) / 3
    assert compute_loss(logits, labels, "pointwise", 1, weights).item() == pytest.approx(expected)


def test_the_weighted_in_batch_loss_weighs_each_examples_click() -> None:
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    logits = torch.tensor([[5.0, 0.0, 1.0, -torch.inf], [0.0, 2.0, 1.0, 0.0]])
    per_example = -torch.log_softmax(logits, 1)[[0, 1], [0, 2]]
    expected = (per_example * torch.tensor([0.5, 1.5])).mean()  # weights 1 and 3, rescaled to mean 1
    weighted = compute_loss(logits, labels, "listwise", 2, torch.tensor([1.0, 3.0]))
    assert weighted.item() == pytest.approx(expected.item())


def test_ips_needs_a_position_column_in_the_train_file(train, clicks_path: Path) -> None:
    with pytest.raises(ContractError, match=r"--position-weights ips .* no 'position' column") as error:
        train("--position-weights", "ips", "--max-steps", "1")
    assert error.value.source == str(clicks_path) and error.value.missing == ("position",)
    assert "or train with --position-weights none" in str(error.value)


@pytest.mark.slow
def test_ips_weights_change_what_training_learns_and_are_recorded(
    train, positioned_clicks: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ("--train-file", str(positioned_clicks), "--max-steps", "2", "--negatives", "2")
    train(*common, "--output-dir", str(tmp_path / "plain"))
    capsys.readouterr()
    summary = train(*common, "--position-weights", "ips", "--output-dir", str(tmp_path / "ips"))  # p = 1/r, clip 10

    plain, ips = weights(tmp_path / "plain"), weights(tmp_path / "ips")
    assert any(not torch.equal(plain[name], ips[name]) for name in plain)
    first_lines = capsys.readouterr().out.splitlines()[:3]
    assert any(
        line.startswith("position weights: ips, each click's list weighs 1/p(position), p = 1/r^1 (p(2) = 0.5")
        for line in first_lines
    ), first_lines
    training = load_scorer(str(tmp_path / "ips")).metadata.training
    assert (training["position_weights"], training["propensity_eta"], training["propensity_clip"]) == ("ips", 1.0, 10.0)
    recorded = training["position_weighting"]
    clicks = pd.read_csv(positioned_clicks)
    deepest = clicks["position"].max()
    assert recorded["curve"] == pytest.approx([1 / k for k in range(1, deepest + 1)], rel=1e-5)
    assert recorded["clicks"] == clicks["clicked"].sum()
    clipped = ((clicks["clicked"] == 1) & (clicks["position"] > 10)).sum()  # 1/p above 10
    assert 0 < recorded["clicks_clipped"] == clipped < recorded["clicks"]
    assert summary["config"]["position_weights"] == "ips"
    assert load_scorer(str(tmp_path / "plain")).metadata.training["position_weights"] == "none"
    assert "position_weighting" not in load_scorer(str(tmp_path / "plain")).metadata.training


@pytest.mark.slow
def test_ips_with_unit_propensities_trains_as_without_weights(train, positioned_clicks: Path, tmp_path: Path) -> None:
    common = ("--train-file", str(positioned_clicks), "--max-steps", "2", "--negatives", "2")
    train(*common, "--output-dir", str(tmp_path / "plain"))
    train(*common, "--position-weights", "ips", "--propensity-eta", "0", "--output-dir", str(tmp_path / "flat"))
    plain, flat = weights(tmp_path / "plain"), weights(tmp_path / "flat")
    for name in plain:
        torch.testing.assert_close(flat[name], plain[name], rtol=1e-5, atol=1e-6)


def test_ips_reads_a_propensity_file_and_refuses_one_that_stops_short(
    train, positioned_clicks: Path, tmp_path: Path
) -> None:
    from recsys.feedback.propensity import write_propensities

    deepest = int(pd.read_csv(positioned_clicks)["position"].max())
    curve = pd.DataFrame({"position": range(1, deepest + 1), "propensity": [1 / k**0.5 for k in range(1, deepest + 1)]})
    full, short = tmp_path / "propensities.json", tmp_path / "short.csv"
    write_propensities(curve, full)
    write_propensities(curve.head(5), short)
    flags = ("--train-file", str(positioned_clicks), "--position-weights", "ips", "--max-steps", "1")
    train(*flags, "--propensity-file", str(full), "--loss", "pointwise")
    recorded = load_scorer(str(tmp_path / "model")).metadata.training["position_weighting"]
    assert recorded["propensities"] == "propensities.json"
    assert recorded["curve"] == pytest.approx(curve["propensity"].tolist(), rel=1e-5)
    with pytest.raises(ContractError, match=f"down to position {deepest}, deeper than short.csv's propensities"):
        train(*flags, "--propensity-file", str(short))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--propensity-file", "p.csv"), "--propensity-file is read only with --position-weights ips"),
        (("--position-weights", "ips", "--propensity-eta", "-1"), "--propensity-eta must be 0 or more"),
        (("--position-weights", "ips", "--propensity-clip", "0.5"), "--propensity-clip must be 1 or more"),
    ],
)
def test_bad_position_weight_settings_are_refused_naming_the_flag(train, flags: tuple, message: str) -> None:
    with pytest.raises(UserError, match=message):
        train(*flags)
