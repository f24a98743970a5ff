"""No command writes over its input: training's --output-dir and the MIND conversion's --out, refused before
anything loads, by their own path or through a link (``recsys.data.file_checks``; its own test is in
test_file_checks.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.data.mind import main as convert_mind
from recsys.errors import ContractError, UserError

pytestmark = pytest.mark.usefixtures("reset_accelerate")

REPO = Path(__file__).resolve().parents[1]
NO_MODEL = "no-such-model-is-loaded"  # a refusal that comes before the model loads never meets this name


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _train(train_file: Path, eval_file: Path, output_dir: Path, model: str | Path = NO_MODEL) -> dict:
    from finetune.train import main

    return main(
        [
            "--train-file", str(train_file), "--eval-file", str(eval_file), "--output-dir", str(output_dir),
            "--model-name-or-path", str(model), "--max-steps", "1", "--report-to", "none",
        ]
    )  # fmt: skip


def test_training_refuses_an_output_dir_that_holds_its_click_logs(tmp_path: Path, clicks_path: Path) -> None:
    train_file = tmp_path / "clicks.csv"
    shutil.copy(clicks_path, train_file)
    before = _tree(tmp_path)
    with pytest.raises(ContractError, match=rf"{tmp_path}: holds the input file {train_file}; give --output-dir"):
        _train(train_file, clicks_path, tmp_path)
    with pytest.raises(ContractError, match=r"holds the input file .*clicks\.csv"):
        _train(clicks_path, train_file, tmp_path)  # the eval file too
    assert _tree(tmp_path) == before  # no runs/, no checkpoints/, no model: refused before anything loads


def test_training_refuses_an_output_dir_holding_a_link_to_its_click_log(tmp_path: Path, clicks_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "clicks.csv").symlink_to(clicks_path)
    with pytest.raises(ContractError, match=r"model: holds the input file .*model/clicks\.csv; "):
        _train(out / "clicks.csv", clicks_path, out)
    # The click log's folder named through a link.
    (tmp_path / "data").symlink_to(clicks_path.parent)
    with pytest.raises(ContractError, match=r"data: holds the input file .*clicks\.csv, through a link"):
        _train(clicks_path, clicks_path, tmp_path / "data")


def test_training_refuses_to_write_into_the_model_it_starts_from(
    tmp_path: Path, tiny_model_dir: Path, clicks_path: Path
) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    before = _tree(base)
    with pytest.raises(ContractError, match=rf"{base}: is the input folder {base}; give --output-dir a folder of"):
        _train(clicks_path, clicks_path, base, model=base)
    (tmp_path / "alias").symlink_to(base)
    with pytest.raises(ContractError, match=rf"alias: is the input folder {base}, through a link"):
        _train(clicks_path, clicks_path, tmp_path / "alias", model=base)
    assert _tree(base) == before


def test_training_refuses_the_feedback_folder(
    tmp_path: Path, clicks_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    (feedback / "feedback.sqlite3").write_bytes(b"SQLite format 3\x00")
    monkeypatch.setenv("FEEDBACK_DIR", str(feedback))
    with pytest.raises(ContractError, match=r"feedback: is the input folder .*feedback; "):
        _train(clicks_path, clicks_path, feedback)
    assert _tree(feedback) == {"feedback.sqlite3": b"SQLite format 3\x00"}


NEWS = "N1\tnews\tnewsus\tTitle one\t\t\t[]\t[]\nN2\tnews\tnewsus\tTitle two\t\t\t[]\t[]\n"
BEHAVIORS = "1\tU1\t11/15/2019 8:55:22 AM\tN1\tN2-1 N1-0\n"


def test_the_mind_conversion_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    behaviors, news = tmp_path / "behaviors.csv", tmp_path / "news.tsv"  # a .csv name, as --out needs
    behaviors.write_text(BEHAVIORS)
    news.write_text(NEWS)
    argv = ["--behaviors", str(behaviors), "--news", str(news), "--out"]
    with pytest.raises(ContractError, match=rf"{behaviors}: is the input file; write the click log to another file"):
        convert_mind([*argv, str(behaviors)])
    (tmp_path / "clicks.csv").symlink_to(news)
    with pytest.raises(ContractError, match=rf"clicks\.csv: is the input file {news}, through a link"):
        convert_mind([*argv, str(tmp_path / "clicks.csv")])
    assert behaviors.read_text() == BEHAVIORS and news.read_text() == NEWS
    assert not list(tmp_path.glob("*.partial"))
    convert_mind([*argv, str(tmp_path / "out.csv")])  # another file is written
    assert (tmp_path / "out.csv").read_text().count("\n") == 3


@pytest.mark.slow
def test_the_refusal_is_one_line_from_the_command_line(tmp_path: Path) -> None:
    behaviors, news = tmp_path / "behaviors.csv", tmp_path / "news.tsv"
    behaviors.write_text(BEHAVIORS)
    news.write_text(NEWS)
    argv = ["--behaviors", str(behaviors), "--news", str(news), "--out", str(behaviors)]
    done = subprocess.run([sys.executable, "-m", "recsys.data.mind", *argv], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {behaviors}: is the input file; write the click log to another file"
    assert behaviors.read_text() == BEHAVIORS


def test_a_mistyped_base_model_folder_is_named_before_anything_loads(
    models_folder_here: Path, clicks_path: Path
) -> None:
    with pytest.raises(UserError, match=r"models/clicktun: no such model folder \(models holds clicktune\)"):
        _train(clicks_path, clicks_path, models_folder_here / "out", model="models/clicktun")
