"""The ONNX Runtime path: exports that encode as the model does, the check that passes them, and what serving picks."""

from __future__ import annotations

import io
import json
import re
import shutil
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from recsys.defaults import VALID_FILE, Env
from recsys.errors import UserError
from recsys.model.architectures import load_model
from recsys.model.artifact import BI, ModelFolderError, ModelMetadata, content_digest, model_digest, resolve_model_path
from recsys.scoring.loading import load_scorer
from recsys.scoring.onnx_agreement import (
    AGREEMENT_FILE,
    FP32,
    INT8,
    ONNX_DIR,
    ONNX_FILES,
    Agreement,
    AgreementReport,
    CheckedExport,
)
from recsys.scoring.onnx_export import cli, default_data, export, main
from recsys.scoring.onnx_runtime import OnnxEncoder, onnx_precisions, serving_encoder
from recsys.scoring.vectors import TorchEncoder
from recsys.serving.service import load_served_models
from recsys.serving.settings import AppConfig

MAX_LENGTH = 32

pytestmark = pytest.mark.slow  # the module's models are exported to ONNX once, in about ten seconds


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, clicks_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The tiny BERT as a bi-encoder folder, exported and checked by the command line: (folder, report, output)."""
    folder = tmp_path_factory.mktemp("onnx") / "bi"
    shutil.copytree(tiny_model_dir, folder)
    ModelMetadata(base_model=str(tiny_model_dir), max_length=MAX_LENGTH).save(folder)
    with redirect_stdout(io.StringIO()) as out:
        report = main(["export", "--model", str(folder), "--data", str(clicks_path)])
    return folder, report, out.getvalue()


@pytest.fixture
def folder(exported, tmp_path: Path) -> Path:
    """A copy of the exported folder, for a test to change."""
    copy = tmp_path / "bi"
    shutil.copytree(exported[0], copy)
    return copy


@pytest.fixture(scope="module")
def texts(clicks_path: Path) -> list[str]:
    clicks = pd.read_csv(clicks_path)
    return list(dict.fromkeys([*clicks["query"], *clicks["item"]]))


def torch_vectors(folder: Path, texts: list[str], max_length: int) -> np.ndarray:
    model, tokenizer = load_model(BI, str(folder))
    return TorchEncoder(model.eval(), tokenizer, max_length).encode(texts)


def test_the_export_encodes_as_the_model_does(exported, texts: list[str]) -> None:
    folder = exported[0]
    encoder = OnnxEncoder(folder, ONNX_FILES[FP32], MAX_LENGTH, batch_size=16)
    done: list[int] = []
    vectors = encoder.encode(texts, done.append)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 32)
    np.testing.assert_allclose(vectors, torch_vectors(folder, texts, MAX_LENGTH), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert sum(done) == len(texts) and max(done) == 16
    np.testing.assert_allclose(encoder.encode(texts[::-1]), vectors[::-1], atol=1e-6)  # input order, whatever the batch
    assert encoder.encode([]).shape == (0, 32)


def test_the_graph_has_dynamic_batch_and_sequence_axes_and_both_outputs(exported) -> None:
    graph = onnx.load(exported[0] / ONNX_DIR / ONNX_FILES[FP32]).graph
    for tensor in graph.input:
        assert [d.dim_param for d in tensor.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert [output.name for output in graph.output] == ["last_hidden_state", "sentence_embedding"]
    quantized = onnx.load(exported[0] / ONNX_DIR / ONNX_FILES[INT8]).graph
    assert any(node.op_type == "MatMulInteger" for node in quantized.node)


def test_the_check_is_written_and_read_back(exported, clicks_path: Path) -> None:
    folder, report, output = exported
    fp32, int8 = report.exports
    assert (fp32.precision, int8.precision) == (FP32, INT8)
    assert fp32.agreement.passed and fp32.agreement.spearman > 0.999 and fp32.agreement.top10_unchanged == 1.0
    assert fp32.agreement.groups == pd.read_csv(clicks_path)["group"].nunique()
    assert AgreementReport.load(folder) == report
    saved = json.loads((folder / ONNX_DIR / AGREEMENT_FILE).read_text())
    assert saved["model_sha256"] == model_digest(folder) and saved["max_length"] == MAX_LENGTH
    assert {"precision", "spearman", "top10_unchanged", "groups", "passed", "sha256"} <= set(saved["exports"][0])
    assert saved["serve"] == report.served().precision
    assert f"serving {folder} uses the {report.served().precision} ONNX export" in output


def write_report(folder: Path, passed: dict[str, bool]) -> None:
    """An agreement.json for this folder's model and files, with figures that pass or fail each precision."""
    good, bad = Agreement(1.0, 1.0, groups=12, rows=141), Agreement(0.9, 0.5, groups=12, rows=141)
    exports = tuple(
        CheckedExport(
            p, f"{ONNX_DIR}/{ONNX_FILES[p]}", content_digest([folder / ONNX_DIR / ONNX_FILES[p]]), good if ok else bad
        )
        for p, ok in passed.items()
    )
    AgreementReport("bi (zero-shot)", model_digest(folder), MAX_LENGTH, "clicks.csv", exports).save(folder)


@pytest.mark.parametrize(
    ("passed", "setting", "served"),
    [
        ({FP32: True, INT8: True}, None, "onnx int8"),
        ({FP32: True, INT8: False}, None, "onnx fp32"),
        ({FP32: False, INT8: False}, None, None),
        ({FP32: True, INT8: True}, "fp32", "onnx fp32"),
        ({FP32: True, INT8: True}, "0", None),
        ({FP32: True, INT8: True}, "false", None),
        ({FP32: False, INT8: True}, "fp32", None),
    ],
)
def test_serving_picks_int8_then_fp32_where_they_passed(
    folder: Path, passed: dict[str, bool], setting: str | None, served: str | None
) -> None:
    write_report(folder, passed)
    precisions = onnx_precisions("" if setting is None else setting)  # unset: either export
    encoder = serving_encoder(folder, ModelMetadata.load(folder), precisions=precisions)
    assert (encoder.name if encoder else None) == served


def test_a_retrained_model_or_a_changed_file_is_not_served_on_an_old_check(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_report(folder, {FP32: True, INT8: True})
    metadata = ModelMetadata.load(folder)
    assert serving_encoder(folder, replace(metadata, max_length=MAX_LENGTH + 1)) is None
    shutil.copy(folder / ONNX_DIR / ONNX_FILES[FP32], folder / ONNX_DIR / ONNX_FILES[INT8])
    assert serving_encoder(folder, metadata).name == "onnx fp32"  # int8's file is not the one checked
    assert "changed since its check" in caplog.text
    replace(metadata, threshold=0.4).save(folder)  # as a training run rewrites clicktune.json
    assert serving_encoder(folder, ModelMetadata.load(folder)) is None
    assert "not on this model (retrained since?)" in caplog.text and "export --model" in caplog.text


def test_serving_without_a_check_or_a_folder_serves_pytorch(folder: Path, cross_dir: Path) -> None:
    metadata = ModelMetadata.load(folder)
    assert serving_encoder(folder.parent / "elsewhere", metadata) is None
    assert serving_encoder("sentence-transformers/all-MiniLM-L6-v2", ModelMetadata()) is None
    assert serving_encoder(cross_dir, ModelMetadata.load(cross_dir)) is None
    (folder / ONNX_DIR / AGREEMENT_FILE).unlink()
    assert serving_encoder(folder, metadata) is None


def test_bad_input_is_refused_naming_the_fix(folder: Path, cross_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder; ONNX files are written into a local model folder"):
        export(tmp_path / "missing")
    with pytest.raises(UserError, match=r"an ONNX export needs a bi-encoder.*this model is a cross-encoder"):
        export(cross_dir)
    with pytest.raises(
        UserError, match=r"no such ONNX file; write it with `python -m recsys.scoring.onnx_export export"
    ):
        OnnxEncoder(folder, "model_fp16.onnx", MAX_LENGTH)
    with pytest.raises(UserError, match=f"{Env.ONNX}='yes please' must be 1"):
        AppConfig.from_env({Env.ONNX: "yes please"})
    (folder / ONNX_DIR / AGREEMENT_FILE).write_text('{"exports": []}')
    with pytest.raises(
        ModelFolderError, match=r"not an agreement report.*run `python -m recsys.scoring.onnx_export export"
    ):
        serving_encoder(folder, ModelMetadata.load(folder))


def test_the_check_runs_on_trainings_eval_file_where_it_is_here(clicks_path: Path, tmp_path: Path) -> None:
    assert default_data(ModelMetadata(training={"eval_file": str(clicks_path)})) == clicks_path
    assert default_data(ModelMetadata(training={"eval_file": str(tmp_path / "gone.csv")})) == VALID_FILE


def test_the_command_line_ends_a_bad_folder_in_one_line(
    cross_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("sys.argv", ["clicktune-onnx", "export", "--model", str(cross_dir)])
    with pytest.raises(SystemExit) as exit_:
        cli()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {cross_dir}: an ONNX export needs a bi-encoder")


def test_minilm_exports_fp32_that_matches_and_int8_that_stays_close(tmp_path: Path) -> None:
    folder = tmp_path / "minilm"
    shutil.copytree(resolve_model_path(None), folder)
    export(folder)
    texts = list(dict.fromkeys(pd.read_csv(Path(__file__).parent / "data" / "clicks.csv")["item"]))[:64]
    reference = torch_vectors(folder, texts, 128)
    fp32 = OnnxEncoder(folder, ONNX_FILES[FP32], 128).encode(texts)
    np.testing.assert_allclose(fp32, reference, atol=1e-4)
    int8 = OnnxEncoder(folder, ONNX_FILES[INT8], 128).encode(texts)
    assert (int8 * reference).sum(axis=1).min() > 0.98


def test_load_scorer_serves_the_checked_export_and_scores_as_pytorch(folder: Path, texts: list[str]) -> None:
    pairs = [(texts[0], text) for text in texts[1:30]]
    write_report(folder, {INT8: False, FP32: True})
    served = load_scorer(str(folder))
    assert served.encoder.name == "onnx fp32"
    plain = load_scorer(str(folder), onnx=AppConfig.from_env({Env.ONNX: "0"}).onnx)  # as the app reads it
    assert plain.encoder.name == "torch fp32"
    assert load_served_models(folder, AppConfig.from_env({Env.ONNX: "0"}).onnx).scorer.encoder.name == "torch fp32"
    assert load_served_models(folder, AppConfig.from_env({}).onnx).scorer.encoder.name == "onnx fp32"
    np.testing.assert_allclose(served.score_pairs(pairs), plain.score_pairs(pairs), atol=1e-4)


def rewrite_exports(folder: Path, **values: object) -> None:
    """Set ``values`` in the first export of the folder's agreement.json."""
    path = folder / ONNX_DIR / AGREEMENT_FILE
    data = json.loads(path.read_text())
    data["exports"][0] |= values
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "named",
    ["../../outside/model.onnx", "{outside}", "onnx/../onnx/model.onnx", "onnx/model_qint8.onnx", "config.json"],
)
def test_a_report_that_names_a_file_other_than_the_folders_exports_is_refused(
    folder: Path, tmp_path: Path, named: str
) -> None:
    outside = tmp_path / "outside" / "model.onnx"
    outside.parent.mkdir()
    shutil.copy(folder / ONNX_DIR / ONNX_FILES[FP32], outside)
    write_report(folder, {FP32: True, INT8: True})
    named = named.format(outside=outside)
    rewrite_exports(folder, file=named, sha256=content_digest([outside]))  # the first export is fp32's
    expected = (
        rf"its 'fp32' export names {re.escape(repr(named))}, which is not one of the model folder's own ONNX files "
        r".*; nothing it names was read; run `python -m"
    )
    with pytest.raises(ModelFolderError, match=expected):
        serving_encoder(folder, ModelMetadata.load(folder))


def test_a_report_of_an_unknown_precision_is_refused(folder: Path) -> None:
    write_report(folder, {FP32: True, INT8: True})
    rewrite_exports(folder, precision="fp16", file="onnx/model_fp16.onnx")
    with pytest.raises(ModelFolderError, match=r"its 'fp16' export names 'onnx/model_fp16\.onnx', which is not one"):
        serving_encoder(folder, ModelMetadata.load(folder))


@pytest.mark.parametrize("linked", ["export", "onnx folder", "report"])
def test_no_link_in_the_onnx_folder_is_followed(folder: Path, tmp_path: Path, linked: str) -> None:
    write_report(folder, {FP32: True, INT8: True})
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder / ONNX_DIR, elsewhere)
    if linked == "export":  # the same bytes, so the digest matches: only the link tells
        (folder / ONNX_DIR / ONNX_FILES[INT8]).unlink()
        (folder / ONNX_DIR / ONNX_FILES[INT8]).symlink_to(elsewhere / ONNX_FILES[INT8])
        message = r"agreement\.json: its 'int8' export names 'onnx/model_qint8\.onnx', which is not one of .* links\)"
    elif linked == "onnx folder":
        shutil.rmtree(folder / ONNX_DIR)
        (folder / ONNX_DIR).symlink_to(elsewhere)
        message = rf"{re.escape(str(folder / ONNX_DIR))}: is a link; a model folder's ONNX files are its own"
    else:
        (folder / ONNX_DIR / AGREEMENT_FILE).unlink()
        (folder / ONNX_DIR / AGREEMENT_FILE).symlink_to(elsewhere / AGREEMENT_FILE)
        message = r"onnx/agreement\.json: is a link"
    with pytest.raises(ModelFolderError, match=message):
        serving_encoder(folder, ModelMetadata.load(folder))
    with pytest.raises(ModelFolderError, match=message):  # the app and the evaluator refuse it at load
        load_scorer(str(folder))


@pytest.mark.parametrize(
    ("values", "named"),
    [({"spearman": "1.0"}, "spearman is '1.0'"), ({"groups": 0}, "groups is 0"), ({"file": 3}, "file is 3"),
     ({"top10_unchanged": None}, "top10_unchanged is None")],
)  # fmt: skip
def test_a_report_value_of_another_type_is_refused_naming_it(folder: Path, values: dict, named: str) -> None:
    write_report(folder, {FP32: True, INT8: True})
    rewrite_exports(folder, **values)
    with pytest.raises(
        ModelFolderError, match=rf"not an agreement report \(its {re.escape(named)}, not what ClickTune"
    ):
        serving_encoder(folder, ModelMetadata.load(folder))
