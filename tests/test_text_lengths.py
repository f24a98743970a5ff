"""Text lengths chosen from the log: measured, recorded in clicktune.json, served, and shared by the zero-shot row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from accelerate.state import AcceleratorState, PartialState
from transformers import AutoTokenizer

from finetune.train import main
from recsys.data.contract import ITEM, QUERY, read_clicks
from recsys.defaults import TRAIN_FILE
from recsys.evaluation.evaluator import main as evaluate_main
from recsys.model.artifact import BI, CROSS, DEFAULT_MODEL, METADATA_FILE, resolve_model_path
from recsys.model.text_lengths import CAP, choose_max_length
from recsys.scoring.loading import load_scorer, zero_shot_of
from recsys.serving.service import load_served_models

pytestmark = pytest.mark.usefixtures("reset_accelerate")


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))


def p95(tokenizer, *texts: list[str]) -> int:
    lengths = [len(ids) for ids in tokenizer(*texts)["input_ids"]]
    return int(np.ceil(np.percentile(lengths, 95)))


@pytest.mark.slow
def test_a_bi_encoder_reads_the_longer_sides_95th_percentile_rounded_up_to_8(minilm_tokenizer) -> None:
    frame = read_clicks(TRAIN_FILE)
    lengths = choose_max_length(frame, minilm_tokenizer, BI)
    query = p95(minilm_tokenizer, frame[QUERY].drop_duplicates().tolist())
    item = p95(minilm_tokenizer, frame[ITEM].drop_duplicates().tolist())
    assert (lengths.query, lengths.item) == (query, item)
    assert query > 64 > item  # the news log's contexts are cut at 64 tokens, its titles never
    assert lengths.max_length == -(-query // 8) * 8
    assert f"texts are read up to {lengths.max_length} tokens" in lengths.describe()


@pytest.mark.slow
def test_a_cross_encoder_reads_its_pairs_95th_percentile(minilm_tokenizer) -> None:
    frame = read_clicks(TRAIN_FILE)
    lengths = choose_max_length(frame, minilm_tokenizer, CROSS)
    assert lengths.pair == p95(minilm_tokenizer, frame[QUERY].tolist(), frame[ITEM].tolist())
    assert lengths.max_length == -(-lengths.pair // 8) * 8 > choose_max_length(frame, minilm_tokenizer, BI).max_length


def test_the_length_is_capped_by_the_model_and_at_256_tokens(minilm_tokenizer) -> None:
    long = " ".join(["headline"] * 400)
    frame = pd.DataFrame({QUERY: [long, long + " more"], ITEM: ["a", "b"], "clicked": [1, 0]})
    assert choose_max_length(frame, minilm_tokenizer, BI).max_length == CAP
    assert choose_max_length(frame, minilm_tokenizer, BI, positions=100).max_length == 100
    short = pd.DataFrame({QUERY: ["hi"], ITEM: ["yo"], "clicked": [1]})
    assert choose_max_length(short, minilm_tokenizer, BI).max_length == 8


@pytest.mark.slow
def test_training_chooses_the_length_from_the_train_file_records_it_and_serves_it(
    tiny_model_dir: Path, clicks_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output_dir = tmp_path / "model"
    try:
        summary = main([
            "--model-name-or-path", str(tiny_model_dir), "--train-file", str(clicks_path),
            "--eval-file", str(clicks_path), "--output-dir", str(output_dir), "--report-to", "none",
            "--max-steps", "1", "--lora-rank", "0",
        ])  # fmt: skip
    finally:
        AcceleratorState._reset_state(True)
        PartialState._reset_state()
    expected = choose_max_length(read_clicks(clicks_path), AutoTokenizer.from_pretrained(tiny_model_dir), BI)
    assert expected.describe() in capsys.readouterr().out
    saved = json.loads((output_dir / METADATA_FILE).read_text())
    assert saved["max_length"] == saved["training"]["max_length"] == expected.max_length != 0
    assert saved["training"]["text_lengths"] == expected.to_dict()
    assert summary["config"]["max_length"] == expected.max_length  # metrics.json: the value, not the default 0
    card = (output_dir / "README.md").read_text()
    assert f"texts read up to {expected.max_length} tokens (chosen from the train file: 95% of its contexts" in card
    scorer = load_scorer(str(output_dir))
    assert scorer.metadata.max_length == scorer.encoder.max_length == expected.max_length
    zero_shot = zero_shot_of(scorer)  # the baseline reads the same length: a like-for-like comparison
    assert zero_shot.metadata.max_length == zero_shot.encoder.max_length == expected.max_length
    assert not zero_shot.metadata.fine_tuned
    served = load_served_models(output_dir)  # the app's Compare tab: the base model at the same length
    assert served.base.metadata.max_length == served.scorer.metadata.max_length == expected.max_length


def test_a_given_max_length_is_kept_and_the_measured_lengths_still_said(
    tiny_model_dir: Path, clicks_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    try:
        main([
            "--model-name-or-path", str(tiny_model_dir), "--train-file", str(clicks_path),
            "--eval-file", str(clicks_path), "--output-dir", str(tmp_path / "model"), "--report-to", "none",
            "--max-steps", "1", "--lora-rank", "0", "--max-length", "24",
        ])  # fmt: skip
    finally:
        AcceleratorState._reset_state(True)
        PartialState._reset_state()
    assert "texts are read up to 24 tokens (--max-length); of the train file, 95% of its contexts" in (
        capsys.readouterr().out
    )
    assert json.loads((tmp_path / "model" / METADATA_FILE).read_text())["max_length"] == 24


def test_a_base_model_evaluated_alone_reads_the_length_training_would_choose(
    tiny_model_dir: Path, clicks_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chosen = choose_max_length(read_clicks(clicks_path), AutoTokenizer.from_pretrained(tiny_model_dir), BI)
    assert load_scorer(str(tiny_model_dir), log=read_clicks(clicks_path)).encoder.max_length == chosen.max_length
    assert load_scorer(str(tiny_model_dir)).metadata.max_length == 128  # no log, no model's length: the default
    with caplog.at_level("INFO", logger="recsys.scoring.loading"):
        evaluate_main(["--model", str(tiny_model_dir), "--data", str(clicks_path), "--no-baselines"])
    assert f"(texts up to {chosen.max_length} tokens)" in caplog.text
