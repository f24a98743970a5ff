"""What publishing a model uploads and what stays home (recsys.publish.upload_plan)."""

from __future__ import annotations

from huggingface_hub.utils import filter_repo_objects

from recsys.model.artifact import PUBLISHED_FILES, ModelMetadata
from recsys.publish.upload_plan import NOT_PUBLISHED, list_files, plan_upload

PUBLISHED = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "modules.json",  # sentence-transformers' description of a bi-encoder
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize/config.json",  # sentence-transformers 6 writes one when it saves the model again
    "clicktune.json",
    "item_priors.csv",
    "metrics.json",
    "evaluation.json",
    "README.md",
}
LEFT_OUT = {
    "checkpoints/step-3/model.safetensors": "checkpoints",
    "checkpoints/step-3/optimizer.bin": "checkpoints",
    "checkpoints/best-3/1_Pooling/config.json": "checkpoints",
    "runs/1_Pooling/config.json": "TensorBoard",
    "runs/clicktune/events.out.tfevents.1.vm": "TensorBoard",
    "__pycache__/helper.cpython-311.pyc": "bytecode",
    ".venv/lib/python3.11/site-packages/x.py": "virtual environment",
    "feedback-data/feedback.sqlite3": "feedback",
    "feedback.sqlite3-wal": "feedback",
    ".env": "secret",
    "token": "secret",
    "pytorch_model.bin": "safetensors are published instead",
    ".cache/huggingface/download/model.safetensors.lock": "hidden",
    "notes.txt": NOT_PUBLISHED,
}


def test_plan_publishes_the_model_and_says_why_the_rest_stays_home():
    plan = plan_upload([*PUBLISHED, *LEFT_OUT])
    assert set(plan.upload) == PUBLISHED
    assert set(plan.left_out) == set(LEFT_OUT)
    for path, why in LEFT_OUT.items():
        assert why in plan.left_out[path], path


def test_upload_folder_patterns_select_exactly_the_plan():
    # The same filter that upload_folder applies to the folder's files.
    paths = [*PUBLISHED, *LEFT_OUT, "weights[v2].safetensors"]
    plan = plan_upload(paths)
    selected = filter_repo_objects(paths, allow_patterns=plan.allow_patterns, ignore_patterns=plan.ignore_patterns)
    assert sorted(selected) == list(plan.upload)
    assert "weights[v2].safetensors" in plan.upload


def test_plan_publishes_by_the_artifacts_list_of_files():
    assert plan_upload(["model.safetensors"]).upload == plan_upload(["model.safetensors"], PUBLISHED_FILES).upload
    # With another list of published files, what is not on it stays home.
    plan = plan_upload(["model.safetensors", "config.json"], published=["config.json"])
    assert plan.upload == ("config.json",) and plan.left_out == {"model.safetensors": NOT_PUBLISHED}


def test_plan_of_nothing_is_empty():
    plan = plan_upload([])
    assert plan.upload == () and plan.left_out == {}


def test_plan_publishes_every_file_that_saving_a_model_writes(tiny_model_dir, tmp_path):
    from recsys.model.architectures import load_model, save_model

    for architecture in ("bi", "cross"):
        model, tokenizer = load_model(architecture, str(tiny_model_dir))
        save_model(model, tokenizer, tmp_path / architecture, ModelMetadata(architecture=architecture))
        files = list_files(tmp_path / architecture)
        assert plan_upload(files).upload == tuple(files), architecture
    assert {"modules.json", "sentence_bert_config.json", "1_Pooling/config.json"} <= set(list_files(tmp_path / "bi"))
