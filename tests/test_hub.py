"""Publishing a model (recsys.publish.hub): the plan command, the model card that goes with it, the token guard.

The Hub is out of reach in tests: ``push_model`` runs against a recorder that checks each call
against the real ``HfApi`` signatures (see ``RecordingHfApi`` in conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, ModelCard, metadata_load

from recsys.errors import UserError
from recsys.evaluation.metrics import RANKING_METRICS
from recsys.evaluation.results import Evaluation
from recsys.model.artifact import (
    DEFAULT_MODEL,
    EVALUATION_FILE,
    METADATA_FILE,
    ModelMetadata,
    model_digest,
)
from recsys.publish.card import build_model_card
from recsys.publish.hub import main, push_model, write_evaluation
from recsys.publish.upload_plan import LINK, list_files, plan_folder

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_TestTokenThatMustNeverBeWritten0123"


def uploaded_files(commit: dict) -> dict[str, bytes]:
    """The files of a recorded ``create_commit``, by path in the repo, with the bytes that went up."""
    uploaded = {}
    for operation in commit["operations"]:
        assert isinstance(operation, CommitOperationAdd)
        content = operation.path_or_fileobj
        uploaded[operation.path_in_repo] = content if isinstance(content, bytes) else Path(content).read_bytes()
    return uploaded


@pytest.fixture
def hf_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return TOKEN


@pytest.mark.slow
def test_push_model_uploads_the_plan_with_a_full_model_card(trained_model_dir, hf_token, recording_hf_api):
    url = push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)

    assert url == "https://huggingface.co/me/clicktune-test"
    [create] = recording_hf_api.called("create_repo")
    assert create["repo_id"] == "me/clicktune-test" and create["repo_type"] == "model" and create["exist_ok"]
    assert create["token"] == hf_token  # from HF_TOKEN, passed to huggingface_hub and nowhere else
    [upload] = recording_hf_api.called("create_commit")
    assert upload["repo_id"] == "me/clicktune-test" and upload["repo_type"] == "model"
    uploaded = uploaded_files(upload)
    assert uploaded.keys() == {
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
    assert metadata["library_name"] == "sentence-transformers" and "datasets" not in metadata
    assert "base_model" not in metadata  # a local folder is no Hub id; the card's text names it
    [index] = metadata["model-index"]
    [result] = index["results"]
    assert result["dataset"]["split"] == "validation"
    names = [metric["name"] for metric in result["metrics"]]
    assert names[: len(RANKING_METRICS)] == list(RANKING_METRICS)
    assert [metric["type"] for metric in result["metrics"]][:4] == ["auc", "mrr", "ndcg_at_5", "ndcg_at_10"]
    assert "auc (tfidf baseline)" in names and "ndcg@10 (random baseline)" in names
    assert len(names) == len(RANKING_METRICS) * (1 + len(evaluation["baselines"]))
    model_auc = next(m["value"] for m in result["metrics"] if m["name"] == "auc")
    assert model_auc == round(evaluation["auc"], 4)

    card = ModelCard.load(trained_model_dir / "README.md")
    assert len(card.data.eval_results) == len(names)
    base_name = Path(ModelMetadata.load(trained_model_dir).base_model).name
    assert f"**Base model:** `{base_name}` (a local folder)" in card.text
    for section in ("## Evaluation", "## Intended use and limitations", "## How to load it", "**Training data:**"):
        assert section in card.text
    assert 'snapshot_download("me/clicktune-test")' in card.text and "tfidf" in card.text

    for path in list_files(trained_model_dir):
        assert hf_token.encode() not in (trained_model_dir / path).read_bytes(), path
    # What went up names files, not where they are on this machine; the local folder keeps its paths.
    local_paths = [str(REPO), str(trained_model_dir.parent), str(ModelMetadata.load(trained_model_dir).base_model)]
    for path, content in uploaded.items():
        assert not [p for p in local_paths if p.encode() in content], path
    published = json.loads(uploaded["clicktune.json"])
    assert published["training"]["eval_file"] == "clicks.csv" and published["base_model"] == base_name
    assert uploaded["model.safetensors"] == (trained_model_dir / "model.safetensors").read_bytes()
    assert json.loads((trained_model_dir / "clicktune.json").read_text())["training"]["eval_file"].startswith("/")


def test_card_of_a_model_from_a_hub_base_names_it(trained_model_dir):
    metadata = ModelMetadata.load(trained_model_dir)
    metadata.base_model = DEFAULT_MODEL
    metadata.save(trained_model_dir)
    card = build_model_card(trained_model_dir, repo_id="me/clicktune-test")
    assert card.data.base_model == DEFAULT_MODEL
    assert card.data.eval_results is None  # neither evaluation.json nor eval metrics from training
    assert "python -m recsys.evaluation.evaluator --model" in card.text  # says how to add the table


@pytest.mark.slow
def test_push_model_keeps_a_current_evaluation(trained_model_dir, hf_token, recording_hf_api):
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    written = (trained_model_dir / "evaluation.json").stat().st_mtime_ns
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert (trained_model_dir / "evaluation.json").stat().st_mtime_ns == written
    assert len(recording_hf_api.called("create_commit")) == 2


@pytest.mark.slow
def test_push_model_refuses_a_folder_that_holds_the_token(trained_model_dir, hf_token, recording_hf_api):
    (trained_model_dir / "metrics.json").write_text(json.dumps({"note": f"token {hf_token}"}))
    with pytest.raises(UserError, match=r"metrics\.json contain\(s\) your Hugging Face token"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert recording_hf_api.calls == []


def test_push_model_without_a_token_says_how_to_give_one(
    trained_model_dir, recording_hf_api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import huggingface_hub.constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
    with pytest.raises(UserError, match=r"set HF_TOKEN .* or run `hf auth login`"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert recording_hf_api.calls == []


def test_push_model_rejects_a_repo_id_without_owner(trained_model_dir, hf_token, recording_hf_api):
    with pytest.raises(ValueError, match="give OWNER/NAME"):
        push_model(trained_model_dir, "clicktune-test", api=recording_hf_api)


def test_push_model_rejects_a_folder_without_weights(tmp_path, hf_token, recording_hf_api):
    with pytest.raises(UserError, match=r"no config\.json and \*\.safetensors"):
        push_model(tmp_path, "me/clicktune-test", api=recording_hf_api)


def test_push_model_refuses_a_damaged_folder_before_anything_goes_up(trained_model_dir, hf_token, recording_hf_api):
    (trained_model_dir / "metrics.json").unlink()  # a run that did not finish
    with pytest.raises(UserError, match=r"training did not finish"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert recording_hf_api.calls == []


def test_plan_command_lists_what_goes_and_what_stays(trained_model_dir, capsys):
    main(["plan", "--model-dir", str(trained_model_dir)])
    out = capsys.readouterr().out
    assert "upload    model.safetensors" in out
    assert "left out  checkpoints/step-3/optimizer.bin  (training checkpoints" in out
    assert "left out  feedback-data/feedback.sqlite3  (a database" in out


@pytest.mark.slow
def test_write_evaluation_saves_what_it_returns(trained_model_dir, clicks_path):
    evaluation = write_evaluation(trained_model_dir, clicks_path, clicks_path, split="validation")
    assert isinstance(evaluation, Evaluation)
    assert (evaluation.data_file, evaluation.data_split) == ("clicks.csv", "validation")
    assert set(evaluation.baselines) == {"random", "popularity", "tfidf", "bm25", "zero_shot"}
    saved = json.loads((trained_model_dir / EVALUATION_FILE).read_text())
    assert saved == json.loads(json.dumps(evaluation.to_json()))
    assert Evaluation.load(trained_model_dir / EVALUATION_FILE).model == evaluation.model


@pytest.mark.slow
def test_push_model_re_evaluates_where_the_evaluation_is_of_another_model(
    trained_model_dir, hf_token, recording_hf_api
):
    import os

    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    evaluation = trained_model_dir / EVALUATION_FILE
    assert json.loads(evaluation.read_text())["model_sha256"] == model_digest(trained_model_dir)
    written = evaluation.stat().st_mtime_ns
    newer = evaluation.stat().st_mtime + 60
    os.utime(trained_model_dir / METADATA_FILE, (newer, newer))  # touched or copied: the same model
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert evaluation.stat().st_mtime_ns == written

    metadata = ModelMetadata.load(trained_model_dir)
    metadata.threshold = 0.25  # a model trained since: another clicktune.json
    metadata.save(trained_model_dir)
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert json.loads(evaluation.read_text())["model_sha256"] == model_digest(trained_model_dir)
    assert evaluation.stat().st_mtime_ns != written


@pytest.mark.slow
def test_push_model_evaluates_on_a_given_file_as_held_out(trained_model_dir, hf_token, recording_hf_api, clicks_path):
    push_model(trained_model_dir, "me/clicktune-test", eval_file=clicks_path, api=recording_hf_api)
    evaluation = Evaluation.load(trained_model_dir / EVALUATION_FILE)
    assert evaluation.data_file == "clicks.csv" and evaluation.data_split is None
    assert "popularity" not in evaluation.baselines  # no --train-file
    [index] = metadata_load(trained_model_dir / "README.md")["model-index"]
    assert "split" not in index["results"][0]["dataset"]


def test_a_linked_file_is_never_planned_and_the_plan_says_so(trained_model_dir, tmp_path, capsys):
    """merges.txt linked to a secret outside the folder: left out, named, and its target never read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE KEY 1234")
    (trained_model_dir / "merges.txt").symlink_to(secret)
    (trained_model_dir / "runs" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)  # clutter anyway
    plan = plan_folder(trained_model_dir)
    assert "merges.txt" not in plan.upload and plan.left_out["merges.txt"] == LINK and plan.links == ("merges.txt",)
    assert plan.left_out["runs/elsewhere"] == "TensorBoard logs"
    assert not [path for path in plan.left_out if path.startswith("runs/elsewhere/")]  # a linked folder is not entered
    main(["plan", "--model-dir", str(trained_model_dir)])
    out = capsys.readouterr().out
    assert "left out  merges.txt  (a link: only the folder's own files are published" in out
    assert "upload    merges.txt" not in out


def test_push_refuses_a_linked_file_before_writing_anything(trained_model_dir, tmp_path, hf_token, recording_hf_api):
    outside = tmp_path / "outside-card.md"
    outside.write_text("the user's own file")
    (trained_model_dir / "README.md").symlink_to(outside)  # the card would be written through the link
    with pytest.raises(UserError, match=r"clicktune: README\.md is a link, and only the folder's own files"):
        push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    assert outside.read_text() == "the user's own file" and not (trained_model_dir / EVALUATION_FILE).exists()
    assert recording_hf_api.calls == []


@pytest.mark.slow
def test_push_leaves_out_a_linked_folder_of_clutter(trained_model_dir, tmp_path, hf_token, recording_hf_api):
    (tmp_path / "big-disk").mkdir()
    (tmp_path / "big-disk" / "model.safetensors").write_text("not this model's")
    (trained_model_dir / "checkpoints" / "step-9").symlink_to(tmp_path / "big-disk")
    push_model(trained_model_dir, "me/clicktune-test", api=recording_hf_api)
    [upload] = recording_hf_api.called("create_commit")
    assert not [path for path in uploaded_files(upload) if path.startswith("checkpoints")]
