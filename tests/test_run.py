"""Setting up a training run: the click logs it learns from (finetune.run)."""

from __future__ import annotations

from finetune.config import TrainConfig
from finetune.run import click_logs
from recsys.data.contract import read_clicks
from recsys.defaults import VALID_FILE


def test_without_a_train_file_the_run_says_it_learns_from_the_bundled_sample() -> None:
    config = TrainConfig()
    _, valid, validation = click_logs(config)
    assert config.validation_file == str(VALID_FILE) and len(valid) == len(read_clicks(VALID_FILE))
    assert "valid.csv (the bundled sample's validation users; give --train-file" in validation
