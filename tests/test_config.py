"""finetune/config.py: the training settings, their flags (Hugging Face names too) and their help."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import finetune.config
from finetune.config import HF_NAMES, TrainConfig, build_parser, parse_config


def test_training_takes_hugging_face_names_beside_ours(tmp_path: Path) -> None:
    eval_file = str(tmp_path / "valid.csv")
    config = parse_config(
        [
            "--per-device-train-batch-size", "4",
            "--per-device-eval-batch-size", "8",
            "--num-train-epochs", "2",
            "--validation-file", eval_file,
            "--max-seq-length", "32",
            "--hub-private-repo",
        ]
    )  # fmt: skip
    assert (config.batch_size, config.eval_batch_size, config.num_epochs) == (4, 8, 2)
    assert (config.eval_file, config.max_length, config.hub_private) == (eval_file, 32, True)
    assert parse_config(["--batch-size", "4"]).batch_size == 4
    defaults = TrainConfig()
    assert parse_config([]) == defaults  # an alias's absence leaves our default alone
    assert set(HF_NAMES) <= {field.name for field in fields(TrainConfig)}


def test_training_help_names_the_hugging_face_flags() -> None:
    text = " ".join(finetune.config.build_parser().format_help().split())
    for field, (hf_flag, _) in HF_NAMES.items():
        assert f"{hf_flag} " in text
        assert f"--{field.replace('_', '-')} by its Hugging Face name" in text


def test_keep_checkpoints_is_a_setting_with_help() -> None:
    help_text = " ".join(build_parser().format_help().split())
    assert "--keep-checkpoints, --no-keep-checkpoints" in help_text
    assert "keep output_dir/checkpoints after the run, to --resume it later" in help_text
    assert "(default: False)" in help_text


def test_a_resolved_config_holds_the_settings_a_run_trains_with() -> None:
    """What both saved files record: the default learning rate chosen, in-batch negatives only where they act."""
    assert TrainConfig().resolved().learning_rate == 5e-4  # LoRA adapters
    for full_fine_tuning in ({"lora_rank": 0}, {"architecture": "cross"}):  # a cross-encoder trains every weight
        assert TrainConfig(**full_fine_tuning).resolved().learning_rate == 2e-5
    assert TrainConfig(learning_rate=1e-3).resolved().learning_rate == 1e-3
    assert TrainConfig(in_batch_negatives=True).resolved().in_batch_negatives  # a listwise bi-encoder
    for no_use in ({"loss": "pointwise"}, {"architecture": "cross"}):
        assert not TrainConfig(in_batch_negatives=True, **no_use).resolved().in_batch_negatives
