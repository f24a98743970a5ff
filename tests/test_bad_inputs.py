"""The bad-input corpus: broken files, flags and requests, each driven through every entry point that takes it.

Every case is refused with a message that names what to fix, or read correctly. The entry points:
the click-log reader (``read_clicks``) behind training (``finetune.train.main``) and evaluation (the
``recsys.evaluation.evaluator`` command line); the candidate readers (``read_candidates``,
``recsys.serving.inputs.read_candidate_input``); the app's handlers; the API through ``gradio_client``
against one launched app, which must answer after every refusal; and the command lines, run in
process as ``python -m`` runs them (their ``__main__`` block, through ``runpy``) and, for a few, as real
subprocesses: a non-zero exit status, one ``error:`` line, no traceback.

The messages that tests/test_contract.py pins for the readers themselves are driven through the entry points here
by one case of each kind: the file (``empty``, ``unknown-type``), its columns (``missing-column``,
``no-item-column``), its cells (``nan-text``, ``jsonl-list``) and a limit (``too-many-items``). A few more are
read by the reader alone, for the words of their fix, which test_contract.py does not pin. The other cases are
read, or refused with a message, or from an input (a bare carriage return, a comma-separated .tsv, a null group),
that test_contract.py does not try.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from gradio_client import Client, handle_file

from clicktune_app.handlers import Handlers
from recsys.data.candidates import read_candidates
from recsys.data.contract import CLICKED, ITEM, QUERY, read_clicks
from recsys.errors import ContractError, UserError
from recsys.feedback.store import FeedbackStore
from recsys.scoring.loading import load_scorer
from recsys.scoring.scorer import Scorer
from recsys.serving.evaluations import Evaluations
from recsys.serving.inputs import read_candidate_input
from recsys.serving.service import ServedModels
from recsys.serving.settings import Limits

REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(max_items=20, max_upload_mb=2.0, max_text_chars=2000)
CONTEXT = "nba playoffs and new phones"
HEADER = "query,item,clicked"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20
BOM = b"\xef\xbb\xbf"
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1:A9)", "\t=1+1"]
LONG_ITEM = "breaking news " * 80_000  # a line of about a megabyte


def text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def quoted(value: str) -> str:
    """A CSV field, quoted as a spreadsheet writes one that holds quotes, separators or line breaks."""
    return '"' + value.replace('"', '""') + '"'


def folder(path: Path) -> None:
    path.mkdir()


@dataclass(frozen=True)
class Case:
    """One bad input: a file (its name gives its format) and what must come of it.

    ``error`` is the message a reader gives (a regular expression); ``None`` means that the file is
    read, and ``check`` says what it must read as. ``rank_error`` is for a candidate list that reads
    but cannot be ranked; ``api_error`` for what Gradio itself refuses before a handler runs.
    """

    id: str
    name: str
    content: bytes | Callable[[Path], None]
    error: str | None = None
    check: Callable[[pd.DataFrame], bool] | None = None
    item_column: str = ITEM
    rank_error: str | None = None
    api_error: str | None = None

    def write(self, root: Path) -> Path:
        path = root / self.id / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(self.content):
            self.content(path)
        else:
            path.write_bytes(self.content)
        return path

    @property
    def refused(self) -> str | None:
        return self.error or self.rank_error


def params(cases: list[Case]) -> list:
    return [pytest.param(case, id=case.id) for case in cases]


def items_are(*items: str) -> Callable[[pd.DataFrame], bool]:
    return lambda frame: frame[ITEM].tolist() == list(items)


LATIN_LIST = "red shoes\nblue hat\ncafé au lait\n".encode("latin-1")
LATIN_LIST_OFFSET = LATIN_LIST.index(b"\xe9")

CLICK_LOGS = [
    Case("empty", "clicks.csv", b"", r"the file is empty; it needs a header row and at least one data row"),
    Case("header-only", "clicks.csv", text(HEADER), r"the file has no data rows; add at least one row"),
    Case("blank-lines-only", "clicks.csv", b"\n\n  \n", r"the file has no header row; it needs a header row"),
    Case("binary", "clicks.csv", PNG, r"this looks like a binary file; give UTF-8 text"),
    Case("utf-16", "clicks.csv", text(HEADER, "q,a,1").decode().encode("utf-16"), r"binary file; give UTF-8 text"),
    Case("bom-csv", "clicks.csv", BOM + text(HEADER, "q,a,1"), check=lambda f: f.columns[0] == QUERY),
    Case("bom-jsonl", "clicks.jsonl", BOM + text('{"query": "q", "item": "a", "clicked": 1}'), check=items_are("a")),
    Case("bom-tsv", "clicks.tsv", BOM + text("query\titem\tclicked", "q\ta\t1"), check=items_are("a")),
    Case(
        "repeated-jsonl-key",
        "clicks.jsonl",
        text('{"query": "q", "item": "a", "item": "b", "clicked": 1}'),
        r"line 1 has the key\(s\) 'item' more than once; give each key once",
    ),
    Case(
        "jsonl-list",
        "clicks.jsonl",
        text('{"query": "q", "item": ["a", "b"], "clicked": 1}'),
        r"column 'item' must hold text, but holds a list at row\(s\) 1; make each cell one plain string",
    ),
    Case(
        "nan-text",
        "clicks.csv",
        text(HEADER, "q,a,1", "q,NaN,0"),
        r"column 'item' is empty at row\(s\) 2 \('NaN' read as a missing value\); every row needs non-empty item",
    ),
    Case(
        "null-none-text",
        "clicks.csv",
        text(HEADER, "null,a,1", "None,b,0"),
        r"column 'query' is empty at row\(s\) 1, 2 \('None', 'null' read as missing values\)",
    ),
    Case(
        "json-null-group",
        "clicks.jsonl",
        text('{"group": null, "query": "q", "item": "a", "clicked": 1}'),
        r"column 'group' is empty at row\(s\) 1",
    ),
    Case(
        "label-float-jsonl", "clicks.jsonl", text('{"query": "q", "item": "a", "clicked": 1.0}'), check=items_are("a")
    ),
    Case(
        "carriage-return-quoted",
        "clicks.csv",
        text(HEADER, "q," + quoted("first line\rsecond") + ",1"),
        check=items_are("first line\rsecond"),
    ),
    # An unquoted carriage return ends the row, as a spreadsheet would read it: the halves miss their labels.
    Case("carriage-return-bare", "clicks.csv", text(HEADER, "q,first\rsecond,1"), r"'clicked' must be 0 or 1"),
    Case(
        "spreadsheet-formulas",
        "clicks.csv",
        text(HEADER, *(f"q,{quoted(f)},{i % 2}" for i, f in enumerate(FORMULAS))),
        check=items_are(*FORMULAS),  # a click log is data for training: kept exactly
    ),
    Case("very-long-line", "clicks.csv", text(HEADER, f"q,{LONG_ITEM},1"), check=items_are(LONG_ITEM)),
    Case(
        "missing-column",
        "clicks.csv",
        text("query,title,clicked", "q,a,1"),
        r"missing required column\(s\) item; found query, title, clicked; rename or add",
    ),
    Case(
        "wrong-separator",
        "clicks.tsv",
        text(HEADER, "q,a,1"),
        r"missing required column\(s\) query, item, clicked; found query,item,clicked",
    ),
    Case("unknown-extension", "clicks.xlsx", PNG, r"unknown extension '\.xlsx'; save the file as one of \.csv"),
    Case("a-folder", "clicks.csv", folder, r"is a folder, not a file; give the path of a file in it"),
    Case("not-parquet", "clicks.parquet", text(HEADER, "q,a,1"), r"could not be read as parquet"),
    Case(
        "unnamed-index-column",
        "clicks.csv",
        text("," + HEADER, "0,q,a,1"),
        check=lambda f: "Unnamed: 0" in f.columns and f[ITEM].tolist() == ["a"],
    ),
    Case(
        "numbers-as-text",
        "clicks.jsonl",
        text('{"query": 2024, "item": 1984, "clicked": 1}', '{"query": 2024, "item": 1985, "clicked": 0}'),
        check=lambda f: f[ITEM].tolist() == ["1984", "1985"] and f[QUERY].tolist() == ["2024", "2024"],
    ),
]
# Refused for a problem that test_contract.py pins for read_clicks; here for the words of the fix, by the reader alone.
LOG_FIXES = ("header-only", "repeated-jsonl-key", "jsonl-list", "unknown-extension")
REFUSED_LOGS = [case for case in CLICK_LOGS if case.error and case.id not in LOG_FIXES]

# A click log that holds every oddity the contract accepts, for a training run to go all the way through.
MESSY_LOG = BOM + text(
    ",group,query,item,clicked,position",
    *(f"{i},u1,nba playoffs,{quoted(f)},{i % 2},{i + 1}" for i, f in enumerate(FORMULAS)),
    "5,u2,apple macbook pro," + quoted("microsoft surface\rstudio") + ",1,1",
    "6,u2,apple macbook pro,apple macbook pro deals,0,2",
)

CANDIDATES = [
    Case(
        "latin-1",
        "items.txt",
        LATIN_LIST,
        rf"not UTF-8 text \(byte 0xe9 at offset {LATIN_LIST_OFFSET}, line 3: .*\); re-save it as UTF-8 with one item",
    ),
    Case("bom-txt", "items.txt", BOM + text("red shoes", "blue hat"), check=items_are("red shoes", "blue hat")),
    Case(
        "bom-jsonl",
        "items.jsonl",
        BOM + text('{"item": "red shoes"}', '{"item": "blue hat"}'),
        check=items_are("red shoes", "blue hat"),
    ),
    Case(
        "rank-and-input-rank",
        "items.csv",
        text("item,rank,input_rank", "red shoes,1,2", "blue hat,2,1"),
        rank_error=r"columns 'rank' and 'input_rank' would both be called 'input_rank' .* rename or drop one",
    ),
    Case(
        "jsonl-list",
        "items.jsonl",
        text('{"item": ["red", "shoes"]}'),
        r"column 'item' must hold text, but holds a list",
    ),
    Case(
        "nan-none-text",
        "items.csv",
        text("item,price", "red shoes,1", "NaN,2", "None,3"),
        r"column 'item' is empty at row\(s\) 2, 3 \('NaN', 'None' read as missing values\)",
    ),
    Case(
        "no-item-column", "items.csv", text("title,price", "red shoes,1"), r"missing required column\(s\) item; found"
    ),
    Case(
        "too-many-items", "items.txt", text(*(f"item {i}" for i in range(21))), r"21 items, more than the limit of 20"
    ),
    Case(
        "unknown-type",
        "items.xlsx",
        PNG,
        r"unknown file type '\.xlsx'; give one of \.csv, \.tsv, \.jsonl",
        api_error=r"Invalid file type\. Please upload a file that is one of these formats: \['\.csv'",
    ),
    Case("spreadsheet-formulas", "items.csv", text("item", *map(quoted, FORMULAS)), check=items_are(*FORMULAS)),
    Case(
        "carriage-return-quoted",
        "items.csv",
        text("item", quoted("red\rshoes"), "blue hat"),
        check=items_are("red\rshoes", "blue hat"),
    ),
    Case(
        "unnamed-index-column",
        "items.csv",
        text(",item", "0,red shoes", "1,blue hat"),
        check=lambda f: f["Unnamed: 0"].tolist() == ["0", "1"],
    ),
]

# As LOG_FIXES, for read_candidates.
CANDIDATE_FIXES = ("latin-1",)
ENTRY_CANDIDATES = [case for case in CANDIDATES if case.id not in CANDIDATE_FIXES]


def expect(error: str | None, action: Callable[[], object], kind: type[BaseException] = ContractError) -> object:
    """Run ``action``: it must raise ``kind`` matching ``error``, or, where ``error`` is None, return."""
    if error is None:
        return action()
    with pytest.raises(kind, match=error):
        action()
    return None


# -- the click-log readers: read_clicks, training, evaluation -----------------------------------------------


@pytest.mark.parametrize("case", params(CLICK_LOGS))
@pytest.mark.slow
def test_the_click_log_reader(case: Case, tmp_path: Path) -> None:
    clicks = expect(case.error, lambda: read_clicks(case.write(tmp_path)))
    assert clicks is None or case.check(clicks)


@pytest.mark.parametrize("case", params(REFUSED_LOGS))
@pytest.mark.slow
def test_training_refuses_a_bad_train_file_before_it_loads_a_model(
    case: Case, tmp_path: Path, tiny_model_dir: Path, clicks_path: Path, reset_accelerate: None
) -> None:
    from finetune.train import main as train

    out = tmp_path / "model"
    argv = ["--train-file", str(case.write(tmp_path)), "--eval-file", str(clicks_path), "--output-dir", str(out)]
    argv += ["--model-name-or-path", "no-such-model-is-loaded", "--max-steps", "1", "--report-to", "none"]
    with pytest.raises(ContractError, match=case.error):
        train(argv)
    assert not (out / "model.safetensors").exists()


@pytest.mark.slow
def test_training_reads_every_oddity_the_contract_accepts(
    tmp_path: Path, tiny_model_dir: Path, clicks_path: Path, reset_accelerate: None
) -> None:
    from finetune.train import main as train

    train_file = tmp_path / "messy.csv"
    train_file.write_bytes(MESSY_LOG)
    assert read_clicks(train_file)[ITEM].tolist()[: len(FORMULAS)] == FORMULAS
    out = tmp_path / "model"
    argv = ["--train-file", str(train_file), "--eval-file", str(clicks_path), "--output-dir", str(out)]
    argv += ["--model-name-or-path", str(tiny_model_dir), "--max-steps", "1", "--report-to", "none"]
    train(argv)
    assert load_scorer(str(out)).metadata.fine_tuned


@pytest.mark.parametrize("case", params(REFUSED_LOGS))
@pytest.mark.slow
def test_the_evaluation_command_refuses_a_bad_click_log_in_one_line(case: Case, tmp_path: Path, capsys) -> None:
    path = case.write(tmp_path)
    status, _, err = run_module("recsys.evaluation.evaluator", ["--data", str(path)], capsys)
    assert status == 2
    assert_one_error_line(err, case.error)


def test_an_eval_file_without_a_usable_group_is_refused_before_training(
    tmp_path: Path, tiny_model_dir: Path, clicks_path: Path, capsys, reset_accelerate: None
) -> None:
    every_click = tmp_path / "every-click.csv"
    every_click.write_bytes(text(HEADER, "nba,lakers win,1", "nba,warriors trade,1", "apple,new iphone,0"))
    out = tmp_path / "model"
    argv = ["--train-file", str(clicks_path), "--eval-file", str(every_click), "--output-dir", str(out)]
    argv += ["--model-name-or-path", str(tiny_model_dir), "--max-steps", "1", "--report-to", "none"]
    status, _, err = run_module("finetune.train", argv, capsys)
    assert status == 2
    assert_one_error_line(err, r"no group holds both a click and a non-click.*; give a click log whose groups")
    assert not out.exists() or not any(out.rglob("*.safetensors"))  # refused before a step was trained
    status, _, err = run_module(
        "recsys.evaluation.evaluator", ["--data", str(every_click), "--model", str(tiny_model_dir)], capsys
    )
    assert status == 2
    assert_one_error_line(err, r"no group holds both a click and a non-click.*; give a click log whose groups")


def test_evaluation_of_items_without_a_word_of_two_letters_ends_in_one_line(
    tmp_path: Path, tiny_model_dir: Path, capsys
) -> None:
    short = tmp_path / "short.csv"
    short.write_bytes(text(HEADER, "q,a,1", "q,b,0"))  # a valid log: one group with a click and a non-click
    status, out, _ = run_module(
        "recsys.evaluation.evaluator", ["--data", str(short), "--model", str(tiny_model_dir)], capsys
    )
    assert status == 0 and "| tfidf |" in out


# -- the command lines ---------------------------------------------------------------------------------------


def run_module(module: str, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``python -m module argv`` in this process (its ``__main__`` block); its exit status, stdout, stderr."""
    capsys.readouterr()
    saved = sys.argv
    sys.argv = [module, *argv]
    status = 0  # a command that succeeds returns without SystemExit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before
            runpy.run_module(module, run_name="__main__", alter_sys=False)
    except SystemExit as exit_:
        status = exit_.code
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(stderr: str, message: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if "error:" in line]
    assert len(lines) == 1, stderr
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--loss", "hinge", r"argument --loss: invalid choice: 'hinge' \(choose from 'pointwise', 'listwise'\)"),
        ("--architecture", "rnn", r"argument --architecture: invalid choice: 'rnn' \(choose from 'bi', 'cross'\)"),
        ("--report-to", "stdout", r"argument --report-to: invalid choice: 'stdout' \(choose from 'none', "),
        ("--batch-size", "0", r"^error: --batch-size must be at least 1$"),
        ("--batch-size", "many", r"argument --batch-size: invalid int value: 'many'"),
        ("--wise-alpha", "1.5", r"^error: --wise-alpha must be in \(0, 1\], got 1\.5$"),
    ],
)
def test_training_refuses_a_bad_flag_in_one_line(flag: str, value: str, message: str, capsys) -> None:
    status, _, err = run_module("finetune.train", [flag, value], capsys)
    assert status == 2
    assert_one_error_line(err, message)


def test_training_help_lists_the_choices(capsys) -> None:
    status, out, _ = run_module("finetune.train", ["--help"], capsys)
    assert status == 0
    for choices in ("{pointwise,listwise}", "{bi,cross}", "{none,all,"):
        assert choices in out


def test_training_refuses_a_folder_that_is_no_model(tmp_path: Path, clicks_path: Path, capsys, reset_accelerate):
    argv = ["--train-file", str(clicks_path), "--eval-file", str(clicks_path), "--output-dir", str(tmp_path / "out")]
    argv += ["--model-name-or-path", str(tmp_path), "--max-steps", "1", "--report-to", "none"]
    status, _, err = run_module("finetune.train", argv, capsys)
    assert status == 2
    assert_one_error_line(err, rf"^error: {re.escape(str(tmp_path))}: .*config\.json")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "{clicks}", "--model", "{empty}"], r"^error: {empty}: .*config\.json"),
        (["--data", "{clicks}", "--model", "{model}", "--json", "{empty}", "--no-baselines"], r"^error: {empty}: Is a"),
        (["--data"], r"argument --data: expected one argument"),
    ],
    ids=["not-a-model", "json-into-a-folder", "no-value"],
)
@pytest.mark.slow
def test_evaluation_refuses_bad_arguments_in_one_line(
    argv: list[str], message: str, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path, capsys
) -> None:
    paths = {"clicks": clicks_path, "empty": tmp_path, "model": tiny_model_dir}
    status, _, err = run_module("recsys.evaluation.evaluator", [a.format(**paths) for a in argv], capsys)
    assert status == 2
    assert_one_error_line(err, message.format(**{name: re.escape(str(path)) for name, path in paths.items()}))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--model-dir", "{missing}"], r"^error: {missing}: no such folder"),
        (["plan", "--model-dir", "{clicks}"], r"^error: {clicks}: "),
        (["push", "--model-dir", "{model}", "--repo-id", "clicktune"], r"^error: repo id 'clicktune': give OWNER/NAME"),
        (["publish"], r"argument command: invalid choice: 'publish'"),
    ],
    ids=["no-folder", "a-file", "bad-repo-id", "unknown-command"],
)
def test_the_hub_command_refuses_bad_arguments_in_one_line(
    argv: list[str], message: str, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path, capsys
) -> None:
    paths = {"missing": tmp_path / "missing", "clicks": clicks_path, "model": tiny_model_dir}
    status, _, err = run_module("recsys.publish.hub", [a.format(**paths) for a in argv], capsys)
    assert status == 2
    assert_one_error_line(err, message.format(**{name: re.escape(str(path)) for name, path in paths.items()}))


# -- the candidate readers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", params(CANDIDATES))
def test_the_candidate_reader(case: Case, tmp_path: Path) -> None:
    sizes = {"max_items": LIMITS.max_items, "max_text_chars": LIMITS.max_text_chars}
    candidates = expect(case.error, lambda: read_candidates(case.write(tmp_path), case.item_column, **sizes))
    assert candidates is None or case.check is None or case.check(candidates)


@pytest.mark.parametrize("case", params(ENTRY_CANDIDATES))
def test_the_uploaded_candidate_input(case: Case, tmp_path: Path) -> None:
    path = case.write(tmp_path)
    read = expect(case.error, lambda: read_candidate_input(str(path), "", case.item_column, LIMITS), UserError)
    if read is not None:
        candidates, source = read
        assert source == path.name
        assert case.check is None or case.check(candidates)


@pytest.mark.parametrize(
    ("pasted", "error"),
    [
        ("  \n\t\n", r"No items: upload a file"),
        ("red shoes\nNone\nnull", r"column 'item' is empty at row\(s\) 2, 3 \('None', 'null' read as missing"),
        ("\n".join(f"item {i}" for i in range(21)), r"21 items, more than the limit of 20"),
    ],
    ids=["blank", "missing-value-markers", "too-many"],
)
def test_the_pasted_candidate_input(pasted: str, error: str) -> None:
    with pytest.raises(UserError, match=error):
        read_candidate_input(None, pasted, ITEM, LIMITS)


# -- the app: its handlers and its API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def handlers(scorer: Scorer, tmp_path_factory: pytest.TempPathFactory) -> Handlers:
    """The handlers as build_demo wires them, serving the tiny model as 'fine-tuned' over itself (for Compare)."""
    data_dir = tmp_path_factory.mktemp("handler-feedback")
    models = ServedModels(scorer, scorer)
    return Handlers(models, FeedbackStore(data_dir), Evaluations(models, data_dir, None, None), LIMITS)


@pytest.fixture(scope="module")
def served(scorer: Scorer, tmp_path_factory: pytest.TempPathFactory, launch_app: Callable) -> Iterator[tuple]:
    data_dir = tmp_path_factory.mktemp("served-feedback")
    with launch_app(ServedModels(scorer, scorer), data_dir, LIMITS) as client:
        yield client, data_dir


def still_answers(client: Client) -> None:
    probability, label = client.predict(context=CONTEXT, item="lakers win game 7", api_name="/classify")
    assert 0 <= probability <= 1 and label in ("clicked", "not clicked")


def api_rank(client: Client, file: Path | None = None, pasted: str = "", **inputs: object) -> tuple:
    upload = handle_file(str(file)) if file else None
    return client.predict(context=CONTEXT, file=upload, pasted=pasted, api_name="/rank", **inputs)


@pytest.mark.parametrize("case", params(ENTRY_CANDIDATES))
@pytest.mark.slow
def test_the_rank_and_compare_handlers(case: Case, handlers: Handlers, tmp_path: Path) -> None:
    path = str(case.write(tmp_path))
    ranked = expect(case.refused, lambda: handlers.rank(CONTEXT, path, "", case.item_column, None, None), gr.Error)
    if ranked is not None:
        table, download, _, _ = ranked
        assert sorted(table[ITEM]) == sorted(read_candidates(path, case.item_column)[ITEM])
        downloaded = pd.read_csv(download, dtype=str, keep_default_na=False)[ITEM]
        assert not downloaded.str.startswith(("=", "+", "-", "@", "\t", "\r")).any(), "a formula reached the download"
    compared = expect(case.refused, lambda: handlers.compare(CONTEXT, path, "", case.item_column), gr.Error)
    assert compared is None or len(compared[0]) == len(compared[1])


@pytest.mark.parametrize("case", params(ENTRY_CANDIDATES))
@pytest.mark.slow
def test_the_rank_api(case: Case, served: tuple, tmp_path: Path) -> None:
    client, _ = served
    path = case.write(tmp_path)
    refused = case.api_error or case.refused
    result = expect(refused, lambda: api_rank(client, path, item_column=case.item_column), Exception)
    if result is not None:
        table, _, status = result
        assert [row[1] for row in table["data"]] == list(range(1, len(table["data"]) + 1))
        assert f"from {path.name}" in status
    still_answers(client)


@pytest.mark.parametrize(
    ("weights", "error"),
    [
        ({"feature": ["popularity"], "weight": [1e308]}, r"the weight of 'popularity' is 1e\+308; give a number from"),
        ({"feature": ["popularity"], "weight": ["a lot"]}, r"The weight of 'popularity' is 'a lot'; give a number"),
        ({"feature": ["price"], "weight": [1.0]}, r"no column 'price' to blend"),
        ({"feature": ["popularity"], "weight": [float("nan")]}, None),  # a blank cell: left out
    ],
    ids=["huge", "not-a-number", "unknown-feature", "blank"],
)
@pytest.mark.slow
def test_feature_weights(weights: dict, error: str | None, handlers: Handlers, served: tuple, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(text("item,popularity", "red shoes,3", "blue hat,1"))
    table = pd.DataFrame(weights)
    expect(error, lambda: handlers.rank(CONTEXT, str(path), "", ITEM, table, None), gr.Error)
    client, _ = served
    api_weights = {"headers": list(weights), "data": table.astype(object).where(table.notna(), None).values.tolist()}
    expect(error, lambda: api_rank(client, path, item_column=ITEM, weights=api_weights), Exception)
    still_answers(client)


def test_a_weights_table_of_one_column_is_refused_clearly(handlers: Handlers) -> None:
    with pytest.raises(gr.Error, match="The weights table needs two columns, feature and weight"):
        handlers.rank(CONTEXT, None, "red shoes\nblue hat", ITEM, pd.DataFrame({"feature": ["popularity"]}), None)


@pytest.mark.parametrize(
    ("inputs", "error", "api_error"),
    [
        ({"context": "", "pasted": "red shoes"}, r"Enter the context", None),
        ({"context": "x" * 2001, "pasted": "red shoes"}, r"The context has 2001 characters, more than the limit", None),
        # The API's number box checks its minimum before the handler runs, in Gradio's words.
        ({"pasted": "red shoes", "top_k": 0}, r"Top k must be 1 or more", r"Value 0 is less than minimum value 1"),
        ({"pasted": "red shoes", "top_k": -5}, r"Top k must be 1 or more", r"Value -5 is less than minimum value 1"),
        ({"pasted": "  \n  "}, r"No items: upload a file", None),
        ({"pasted": "red shoes\nNaN"}, r"column 'item' is empty at row\(s\) 2 \('NaN' read as a missing value\)", None),
        ({"pasted": "red shoes", "file": "items"}, r"either as a file or pasted, not both", None),
    ],
    ids=["no-context", "long-context", "top-k-0", "top-k-negative", "blank-paste", "nan-paste", "file-and-paste"],
)
@pytest.mark.slow
def test_rank_requests(
    inputs: dict, error: str, api_error: str | None, handlers: Handlers, served: tuple, tmp_path: Path
) -> None:
    request = {"context": CONTEXT, "pasted": "", "top_k": 10} | inputs
    file = None
    if request.pop("file", None):
        file = tmp_path / "items.txt"
        file.write_text("blue hat\n")
    with pytest.raises(gr.Error, match=error):
        handlers.rank(request["context"], file and str(file), request["pasted"], ITEM, None, request["top_k"])
    client, _ = served
    with pytest.raises(Exception, match=api_error or error):
        client.predict(**request, file=file and handle_file(str(file)), api_name="/rank")
    still_answers(client)


@pytest.mark.parametrize(
    ("context", "item", "error"),
    [("", "red shoes", "Enter the context"), (CONTEXT, "  ", "Enter the item"), (CONTEXT, "x" * 2001, "2001 char")],
    ids=["no-context", "blank-item", "long-item"],
)
@pytest.mark.slow
def test_classify_requests(context: str, item: str, error: str, handlers: Handlers, served: tuple) -> None:
    with pytest.raises(gr.Error, match=error):
        handlers.classify(context, item)
    client, _ = served
    with pytest.raises(Exception, match=error):
        client.predict(context=context, item=item, api_name="/classify")
    still_answers(client)


# -- feedback: marks only on the list this session ranked --------------------------------------------------------


RANKED_ITEMS = text("item", quoted(FORMULAS[0]), quoted("red\rshoes"), "blue hat")


# What a client might send as the marks of the 3 items it was shown; only the first item marked is what a user sends.
MARKS = {
    "": [True, False, False],
    "too-few": [True, False],
    "too-many": [True, False, False, True],
    "none": None,
    "empty": [],
    "text": "true, false, false",
    "object": {"1": True},
    "nothing-marked": [False, False, False],
    "mark-maybe": ["maybe", False, False],
    "mark-list": [[1], False, False],
}
NOT_THIS_LIST = r"marks do not match the 3 items this list was ranked with: rank again"
FEEDBACK_CASES = [
    *((how, NOT_THIS_LIST) for how in ("too-few", "too-many", "none", "empty", "text", "object")),
    ("nothing-marked", r"no item is marked; mark the items you would click"),
    ("mark-maybe", r"column 'mark' must be 0 or 1 .*'maybe'"),
    ("mark-list", r"column 'mark' must be 0 or 1"),
]


@pytest.mark.parametrize(("how", "error"), FEEDBACK_CASES, ids=[how for how, _ in FEEDBACK_CASES])
def test_feedback_handler_refuses_marks_that_are_not_the_ranked_lists(
    how: str, error: str, handlers: Handlers, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(RANKED_ITEMS)
    _, _, _, ranked = handlers.rank(CONTEXT, str(path), "", ITEM, None, None)
    before = handlers.store.summary()
    with pytest.raises(gr.Error, match=error):
        handlers.feedback(MARKS[how], ranked)
    assert handlers.store.summary() == before


def test_feedback_handler_refuses_marks_without_a_ranked_list(handlers: Handlers) -> None:
    with pytest.raises(gr.Error, match="Rank a list first"):
        handlers.feedback(MARKS[""], None)


def test_feedback_on_formulas_and_carriage_returns_exports_exactly_for_training(
    handlers: Handlers, tmp_path: Path
) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(RANKED_ITEMS)
    table, _, _, ranked = handlers.rank(CONTEXT, str(path), "", ITEM, None, None)
    status, _ = handlers.feedback(MARKS[""], ranked)
    assert "Saved 1 of 3 items as clicked" in status
    handlers.store.export(tmp_path / "clicks.csv")
    exported = read_clicks(tmp_path / "clicks.csv")  # read back as training reads it
    this_list = exported[exported["group"] == ranked.list_id]
    assert this_list[ITEM].tolist() == table[ITEM].tolist()  # in the order shown, each item exactly
    assert sorted(this_list[ITEM]) == sorted([FORMULAS[0], "red\rshoes", "blue hat"])


@pytest.mark.parametrize(("how", "error"), FEEDBACK_CASES, ids=[how for how, _ in FEEDBACK_CASES])
@pytest.mark.slow
def test_feedback_api_refuses_marks_that_are_not_the_ranked_lists(
    how: str, error: str, served: tuple, tmp_path: Path
) -> None:
    client, data_dir = served
    path = tmp_path / "items.csv"
    path.write_bytes(RANKED_ITEMS)
    api_rank(client, path, item_column=ITEM)
    before = FeedbackStore(data_dir).summary()
    with pytest.raises(Exception, match=error):
        client.predict(marks=MARKS[how], api_name="/feedback")
    assert FeedbackStore(data_dir).summary() == before
    still_answers(client)


@pytest.mark.slow
def test_feedback_api_from_a_session_that_ranked_nothing_is_refused(served: tuple) -> None:
    client, data_dir = served
    before = FeedbackStore(data_dir).summary()
    fresh = Client(client.src, verbose=False)
    with pytest.raises(Exception, match="Rank a list first"):
        fresh.predict(marks=[True] * 20_000, api_name="/feedback")
    assert FeedbackStore(data_dir).summary() == before
    still_answers(client)


def test_the_api_takes_feedback_after_all_of_the_above(served: tuple, tmp_path: Path) -> None:
    client, data_dir = served
    path = tmp_path / "items.csv"
    path.write_bytes(RANKED_ITEMS)
    api_rank(client, path, item_column=ITEM)
    status = client.predict(marks=MARKS[""], api_name="/feedback")
    assert "Saved 1 of 3 items as clicked" in status
    store = FeedbackStore(data_dir)
    assert store.summary() == {"lists": 1, "rows": 3, "clicks": 1}  # every refusal above stored nothing
    exported = store.export(tmp_path / "clicks.csv")
    assert sorted(exported[ITEM]) == sorted([FORMULAS[0], "red\rshoes", "blue hat"])
    assert read_clicks(tmp_path / "clicks.csv")[ITEM].tolist() == exported[ITEM].tolist()


# -- the command lines as real subprocesses (last: they have been running in the background) --------------


# Real subprocesses: what a user's shell sees. Started together before the module's first test (each
# imports torch for seconds), so that they run on the other core while the in-process tests run.


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None

    def start(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *self.argv], cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def result(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=180)
        return self.process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module", autouse=True)
def commands(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[dict[str, Command]]:
    root = tmp_path_factory.mktemp("commands")
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "HF_HOME": str(root / "empty-hf-home")}
    feedback = root / "feedback"
    store = FeedbackStore(feedback)  # one saved list, with items that a spreadsheet would take for formulas
    shown = pd.DataFrame({ITEM: [FORMULAS[0], "line\rbreak"], "item_id": ["a", "b"], "position": [1, 2]})
    store.record(CONTEXT, shown.assign(**{CLICKED: [1, 0]}), "v1")
    (root / "a-file").write_text("in the way")
    export = ["-m", "recsys.feedback.store", "export", "--data-dir", str(feedback), "--out"]
    found = {
        "train-loss": Command(["-m", "finetune.train", "--loss", "hinge"], env),
        "push-without-token": Command(
            ["-m", "recsys.publish.hub", "push", "--model-dir", str(tiny_model_dir), "--repo-id", "me/clicktune"], env
        ),
        "export-to-a-folder": Command([*export, str(root)], env),
        "export-under-a-file": Command([*export, str(root / "a-file" / "clicks.csv")], env),
        "export-unwritable": Command([*export, "/proc/clicktune/clicks.csv"], env),
        "export-without-a-store": Command(
            ["-m", "recsys.feedback.store", "export", "--data-dir", str(root), "--out", str(root / "x.csv")], env
        ),
        "export": Command([*export, str(root / "exported.csv")], env),
    }
    for command in found.values():
        command.start(root)
    yield found
    for command in found.values():
        if command.process.poll() is None:
            command.process.kill()
            command.process.wait()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("train-loss", r"python -m finetune\.train: error: argument --loss: invalid choice: 'hinge'"),
        ("push-without-token", r"^error: no Hugging Face token: set HF_TOKEN .* or run `hf auth login` once$"),
        ("export-to-a-folder", r"^error: .*: Is a directory; give a file's path, not a folder's$"),
        ("export-under-a-file", r"^error: .*a-file: (File exists|Not a directory); .*choose another path$"),
        ("export-unwritable", r"^error: /proc/clicktune: .*; "),
        ("export-without-a-store", r"error: no feedback database at .*; pass the app's FEEDBACK_DIR as --data-dir$"),
    ],
)
def test_a_command_ends_a_user_error_in_one_line_and_a_non_zero_status(
    commands: dict[str, Command], name: str, message: str
) -> None:
    status, out, err = commands[name].result()
    assert status == 2, err
    assert_one_error_line(err, message)
    assert out == ""


def test_the_feedback_export_for_training_round_trips_formulas_and_carriage_returns(
    commands: dict[str, Command],
) -> None:
    status, _, err = commands["export"].result()
    assert status == 0, err
    exported = Path(commands["export"].argv[-1])
    assert read_clicks(exported)[ITEM].tolist() == [FORMULAS[0], "line\rbreak"]
