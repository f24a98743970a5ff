"""Scoring a large file in chunks: the rows in input order with the scorer's scores, on one process or two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import ITEM, PROBABILITY, QUERY, SCORE, validate_pairs
from recsys.data.tables import read_table
from recsys.errors import ContractError, UserError
from recsys.scoring.bulk import main, parts_folder, score_file

BUNDLED_VALID = Path(__file__).resolve().parents[1] / "data" / "bing_news" / "valid.csv"
ROWS = 300
CHUNK = 64  # five chunks of the 300 rows, the last one short


def read_text(path: Path) -> pd.DataFrame:
    """A CSV as the text it holds, cell for cell."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def rows_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 rows of the bundled validation log, with every column it has (labels, ids, entities)."""
    path = tmp_path_factory.mktemp("score") / "rows.csv"
    read_text(BUNDLED_VALID).head(ROWS).to_csv(path, index=False)
    return path


def assert_same_scores(written: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same rows in the same order, and scores equal up to float32 noise (texts padded in other batches)."""
    assert list(written.columns) == list(expected.columns)
    text = [c for c in expected.columns if c not in (SCORE, PROBABILITY)]
    assert written[text].astype(str).to_numpy().tolist() == expected[text].astype(str).to_numpy().tolist()
    for column in (SCORE, PROBABILITY):
        np.testing.assert_allclose(written[column].astype(float), expected[column].astype(float), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_every_row_is_written_in_input_order_with_the_scorers_scores(scorer, rows_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    scored = score_file(scorer, rows_path, out, chunk_size=10_000)

    assert (scored.rows, scored.chunks, scored.processes) == (ROWS, 1, 1)
    written = read_text(out)
    original = read_text(rows_path)
    assert list(written.columns) == [*original.columns, SCORE, PROBABILITY]
    assert written[list(original.columns)].equals(original)
    scores, probabilities = scorer.score_frame(validate_pairs(read_table(rows_path)))
    np.testing.assert_allclose(written[SCORE].astype(float), scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(written[PROBABILITY].astype(float), probabilities, rtol=1e-6, atol=1e-6)


def test_chunks_smaller_than_the_file_give_the_same_file(
    tiny_model_dir: Path, rows_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def score(out: Path, chunk_size: int):
        args = ["--model", str(tiny_model_dir), "--data", str(rows_path), "--out", str(out)]
        return main([*args, "--chunk-size", str(chunk_size)])

    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    score(whole, 10_000)
    scored = score(chunked, CHUNK)

    assert (scored.rows, scored.chunks) == (ROWS, 5)
    assert f"{ROWS} rows scored in 5 chunks" in capsys.readouterr().out
    assert_same_scores(read_text(chunked), read_text(whole))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.csv", "whole.csv"]  # nothing left beside them


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl", ".parquet"])
def test_other_formats_in_and_out_hold_the_same_rows(bi_scorer, rows_path: Path, tmp_path: Path, suffix: str) -> None:
    expected = tmp_path / "expected.csv"
    score_file(bi_scorer, rows_path, expected, chunk_size=CHUNK)
    data = tmp_path / f"rows{suffix}"
    original = read_text(rows_path)
    if suffix == ".parquet":
        original.to_parquet(data, row_group_size=50)  # row groups that do not line up with the chunks
    elif suffix == ".jsonl":
        original.to_json(data, orient="records", lines=True, force_ascii=False)
    else:
        original.to_csv(data, sep="\t", index=False)
    out = tmp_path / f"scores{suffix}"
    score_file(bi_scorer, data, out, chunk_size=CHUNK)

    written = read_table(out)
    if suffix != ".tsv":  # typed formats keep the scores as numbers
        assert written[SCORE].dtype == np.float64
    assert_same_scores(written, read_text(expected))


def broken(rows_path: Path, tmp_path: Path, change) -> Path:
    frame = read_text(rows_path)
    path = tmp_path / "broken.csv"
    change(frame).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda f: f.drop(columns=[QUERY]),
            r"broken\.csv: missing required column\(s\) query; found group, item",
            id="no query",
        ),
        pytest.param(
            lambda f: f.rename(columns={ITEM: "title"}),
            r"missing required column\(s\) item; .*rename or add",
            id="no item",
        ),
        pytest.param(
            lambda f: f.assign(score="1"),
            r"already has a 'score' column, which the scores would replace; rename",
            id="a score column already",
        ),
    ],
)
def test_a_file_without_its_columns_is_refused(
    bi_scorer, rows_path: Path, tmp_path: Path, change, message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        score_file(bi_scorer, broken(rows_path, tmp_path, change), tmp_path / "scores.csv", chunk_size=CHUNK)


def test_a_bad_row_in_a_later_chunk_is_named_by_its_row_in_the_file(bi_scorer, rows_path: Path, tmp_path: Path) -> None:
    data = broken(rows_path, tmp_path, lambda f: f.assign(**{QUERY: f[QUERY].where(f.index != 200, "")}))
    with pytest.raises(ContractError, match=r"column 'query' is empty at row\(s\) 201; every row needs") as error:
        score_file(bi_scorer, data, tmp_path / "scores.csv", chunk_size=CHUNK)
    assert error.value.rows == (201,)


@pytest.mark.parametrize(
    ("data", "out", "message"),
    [
        ("missing.csv", "scores.csv", r"missing\.csv: no such file"),
        ("rows", "no-such-folder/scores.csv", r"the folder '.*no-such-folder' does not exist; create"),
        ("rows", "scores.xlsx", r"unknown output type '\.xlsx'; name it ending in one of \.csv"),
        ("rows", "rows", r"is the input file; write the scores to another file"),
    ],
)
def test_bad_paths_are_refused_before_the_model_loads(
    rows_path: Path, tmp_path: Path, data: str, out: str, message: str
) -> None:
    paths = {"rows": rows_path}
    with pytest.raises(ContractError, match=message):
        # The model does not exist either: the paths are checked first.
        score_file(str(tmp_path / "no-model"), paths.get(data, tmp_path / data), paths.get(out, tmp_path / out))


def test_a_chunk_size_below_one_is_refused(bi_scorer, rows_path: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--chunk-size must be at least 1, not 0"):
        score_file(bi_scorer, rows_path, tmp_path / "scores.csv", chunk_size=0)


def test_a_failed_run_leaves_no_file_under_the_outputs_name(bi_scorer, rows_path: Path, tmp_path: Path) -> None:
    """Chunks 0 to 2 are scored and written before chunk 3 fails: none of it is under the output's name."""
    data = broken(rows_path, tmp_path, lambda f: f.assign(**{ITEM: f[ITEM].where(f.index != 3 * CHUNK, "nan")}))
    out = tmp_path / "scores.csv"
    with pytest.raises(ContractError, match=rf"column 'item' is empty at row\(s\) {3 * CHUNK + 1} \('nan' read as"):
        score_file(bi_scorer, data, out, chunk_size=CHUNK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]

    out.write_text("the previous scores\n")
    with pytest.raises(ContractError):
        score_file(bi_scorer, data, out, chunk_size=CHUNK)
    assert out.read_text() == "the previous scores\n"


@pytest.mark.slow
def test_two_processes_write_the_file_that_one_writes(
    accelerate_launch, tiny_model_dir: Path, rows_path: Path, tmp_path: Path
) -> None:
    single, merged = tmp_path / "single.csv", tmp_path / "merged.csv"
    main(["--model", str(tiny_model_dir), "--data", str(rows_path), "--out", str(single), "--chunk-size", str(CHUNK)])
    args = ["--model", str(tiny_model_dir), "--data", str(rows_path), "--out", str(merged), "--chunk-size", str(CHUNK)]
    launched = accelerate_launch("recsys.scoring.bulk", *args)

    assert launched.returncode == 0, launched.stderr[-3000:]
    assert f"{ROWS} rows scored in 5 chunks by 2 process(es)" in launched.stdout  # said once, by process 0
    assert launched.stdout.count("rows scored") == 1
    assert_same_scores(read_text(merged), read_text(single))
    assert not parts_folder(merged).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.csv", "single.csv"]


@pytest.mark.slow
def test_a_bad_row_in_the_other_processs_share_fails_the_run_and_writes_nothing(
    accelerate_launch, tiny_model_dir: Path, rows_path: Path, tmp_path: Path
) -> None:
    """Chunk 1 is process 1's: its error ends the launch, and process 0, waiting to merge, writes no output."""
    data = broken(rows_path, tmp_path, lambda f: f.assign(**{QUERY: f[QUERY].where(f.index != CHUNK + 5, "")}))
    out = tmp_path / "scores.csv"
    args = ["--model", str(tiny_model_dir), "--data", str(data), "--out", str(out), "--chunk-size", str(CHUNK)]
    launched = accelerate_launch("recsys.scoring.bulk", *args)

    assert launched.returncode != 0
    assert f"error: {data}: column 'query' is empty at row(s) {CHUNK + 6}" in launched.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_type_change_in_a_parquet_output_names_the_output_not_its_hidden_partial_file(
    bi_scorer, tmp_path: Path
) -> None:
    data = tmp_path / "rows.jsonl"
    lines = ['{"query": "q", "item": "a", "extra": 1}'] * 3 + ['{"query": "q", "item": "b", "extra": "text"}']
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.parquet"
    with pytest.raises(UserError, match="other types of values") as refused:
        score_file(bi_scorer, data, out, chunk_size=3)
    assert str(refused.value).startswith(f"{out}: ") and "partial" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
