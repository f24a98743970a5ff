"""Publishing a model: the upload plan, the model card that goes with it, the token guard.

The Hub is out of reach in tests: ``push_model`` runs against a recorder that checks each call
against the real ``HfApi`` signatures (see ``RecordingHfApi`` in conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.utils import filter_repo_objects

from recsys.card import build_model_card
from recsys.hub import NOT_PUBLISHED, list_files, local_model_dir, main, plan_upload, push_model
from recsys.metrics import RANKING_METRICS
from recsys.models import DEFAULT_MODEL, ModelMetadata

TOKEN = "hf_TestTokenThatMustNeverBeWritten0123"
PUBLISHED = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "clicktune.json",
    "item_priors.csv",
    "metrics.json",
    "evaluation.json",
    "README.md",
}
LEFT_OUT = {
    "checkpoints/step-3/model.safetensors": "checkpoints",
    "checkpoints/step-3/optimizer.bin": "checkpoints",
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


def test_plan_of_nothing_is_empty():
    plan = plan_upload([])
    assert plan.upload == () and plan.left_out == {}


@pytest.fixture
def hf_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return TOKEN


def test_push_model_uploads_the_plan_with_a_full_model_card(trained_model_dir, hf_token, recording_hf_api):
    url = push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)

    assert url == "https://huggingface.co/me/clicktune-test"
    [create] = recording_hf_api.called("create_repo")
    assert create["repo_id"] == "me/clicktune-test" and create["repo_type"] == "model" and create["exist_ok"]
    assert create["token"] == hf_token  # from HF_TOKEN, passed to huggingface_hub and nowhere else
    [upload] = recording_hf_api.called("upload_folder")
    assert Path(upload["folder_path"]) == trained_model_dir and upload["repo_type"] == "model"
    uploaded = set(
        filter_repo_objects(
            list_files(trained_model_dir),
            allow_patterns=upload["allow_patterns"],
            ignore_patterns=upload["ignore_patterns"],
        )
    )
    assert uploaded == {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "clicktune.json",
        "metrics.json",
        "evaluation.json",
        "README.md",
    }

    # No evaluation.json was there: the model was evaluated against the baselines on training's eval file.
    evaluation = json.loads((trained_model_dir / "evaluation.json").read_text())
    assert evaluation["data_split"] == "validation" and {"random", "tfidf"} <= set(evaluation["baselines"])

    metadata = metadata_load(trained_model_dir / "README.md")
    assert metadata["license"] == "apache-2.0" and metadata["tags"][0] == "clicktune"
    assert "base_model" not in metadata  # a local folder is no Hub id; the card's text names it
    [index] = metadata["model-index"]
    [result] = index["results"]
    assert result["dataset"]["split"] == "validation"
    names = [metric["name"] for metric in result["metrics"]]
    assert names[: len(RANKING_METRICS)] == list(RANKING_METRICS)
    assert "auc (tfidf baseline)" in names and "ndcg@10 (random baseline)" in names
    assert len(names) == len(RANKING_METRICS) * (1 + len(evaluation["baselines"]))
    model_auc = next(m["value"] for m in result["metrics"] if m["name"] == "auc")
    assert model_auc == round(evaluation["auc"], 4)

    card = ModelCard.load(trained_model_dir / "README.md")
    assert len(card.data.eval_results) == len(names)
    assert f"**Base model:** `{ModelMetadata.load(trained_model_dir).base_model}`" in card.text
    for section in ("## Evaluation", "## Intended use and limitations", "## How to load it", "**Training data:**"):
        assert section in card.text
    assert 'snapshot_download("me/clicktune-test")' in card.text and "tfidf" in card.text

    for path in list_files(trained_model_dir):
        assert hf_token.encode() not in (trained_model_dir / path).read_bytes(), path


def test_card_of_a_model_from_a_hub_base_names_it(trained_model_dir):
    metadata = ModelMetadata.load(trained_model_dir)
    metadata.base_model = DEFAULT_MODEL
    metadata.save(trained_model_dir)
    card = build_model_card(trained_model_dir, repo_id="me/clicktune-test")
    assert card.data.base_model == DEFAULT_MODEL
    assert card.data.eval_results is None  # neither evaluation.json nor eval metrics from training
    assert "python -m recsys.evaluate --model" in card.text  # says how to add the table


def test_push_model_keeps_a_current_evaluation(trained_model_dir, hf_token, recording_hf_api):
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    written = (trained_model_dir / "evaluation.json").stat().st_mtime_ns
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert (trained_model_dir / "evaluation.json").stat().st_mtime_ns == written
    assert len(recording_hf_api.called("upload_folder")) == 2


def test_push_model_refuses_a_folder_that_holds_the_token(trained_model_dir, hf_token, recording_hf_api):
    (trained_model_dir / "metrics.json").write_text(json.dumps({"note": f"token {hf_token}"}))
    with pytest.raises(RuntimeError, match=r"metrics\.json contain\(s\) your Hugging Face token"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert recording_hf_api.calls == []


def test_push_model_without_a_token_says_how_to_give_one(
    trained_model_dir, recording_hf_api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import huggingface_hub.constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
    with pytest.raises(RuntimeError, match=r"set HF_TOKEN .* or run `hf auth login`"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert recording_hf_api.calls == []


def test_push_model_rejects_a_repo_id_without_owner(trained_model_dir, hf_token, recording_hf_api):
    with pytest.raises(ValueError, match="give OWNER/NAME"):
        push_model(trained_model_dir, "clicktune-test", api=recording_hf_api)


def test_push_model_rejects_a_folder_without_weights(tmp_path, hf_token, recording_hf_api):
    with pytest.raises(FileNotFoundError, match=r"no config\.json and \*\.safetensors"):
        push_model(tmp_path, "me/clicktune-test", api=recording_hf_api)


def test_plan_command_lists_what_goes_and_what_stays(trained_model_dir, capsys):
    main(["plan", "--model-dir", str(trained_model_dir)])
    out = capsys.readouterr().out
    assert "upload    model.safetensors" in out
    assert "left out  checkpoints/step-3/optimizer.bin  (training checkpoints" in out
    assert "left out  feedback-data/feedback.sqlite3  (a database" in out


def test_local_model_dir_keeps_a_path_and_downloads_a_hub_id(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert local_model_dir(str(tmp_path)) == str(tmp_path)
    assert local_model_dir("./models/clicktune") == "./models/clicktune"  # a path, even where nothing is yet
    # A Hub id goes to snapshot_download; offline (HF_HUB_OFFLINE=1) and with an empty cache, it finds nothing.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(LocalEntryNotFoundError, match="cached snapshot"):
        local_model_dir("me/clicktune-test")
