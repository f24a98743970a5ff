"""Requests a script may send that the page never would, through the real API of one launched app.

Each is refused with one message that says what to fix (never Gradio's "upstream Gradio app has raised an
exception", which a script sees when a component or a handler fails with a bug), and the app answers after it.
The files the replies name lie in Gradio's own cache, and nothing else of the server is served.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import Client, handle_file

from recsys.defaults import ROOT
from recsys.scoring.loading import load_scorer
from recsys.serving.service import ServedModels
from recsys.serving.settings import Limits

LIMITS = Limits(max_items=20, max_upload_mb=1.0, max_text_chars=2000)
RANK = {"context": "nba playoffs", "pasted": "", "item_column": "item", "api_name": "/rank"}
WEIGHTS = {"headers": ["feature", "weight"], "data": [["price", 1.0]]}


@pytest.fixture(scope="module")
def client(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, launch_app: Callable
) -> Iterator[tuple[Client, Path]]:
    scorer = load_scorer(str(tiny_model_dir))
    data_dir = tmp_path_factory.mktemp("hostile-feedback")
    with launch_app(ServedModels(scorer, scorer), data_dir, LIMITS) as served:
        yield served, data_dir


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hostile-items") / "items.csv"
    path.write_text("item,price\nred shoes,-5\nblue hat,3\nnba finals,7\n", encoding="utf-8")
    return str(path)


def refused(client: Client, message: str, **request: object) -> None:
    with pytest.raises(Exception, match=message) as error:
        client.predict(**request)
    assert "upstream Gradio app" not in str(error.value)


@pytest.mark.parametrize(
    ("top_k", "message"),
    [("abc", r"Top k must be a number, not 'abc'"), ([3], r"not \[3\]"), (True, "not True"), (0, "minimum")],
)
@pytest.mark.slow
def test_a_top_k_that_is_no_number_is_refused_in_words(client: tuple, items: str, top_k: object, message: str) -> None:
    served, _ = client
    refused(served, message, file=handle_file(items), top_k=top_k, **RANK)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({**WEIGHTS, "data": [["price", [1, 2]]]}, r"a list or an object in the row \('price', \[1, 2\]\)"),
        ({**WEIGHTS, "data": [["price", 1], ["price", 2]]}, "names 'price' more than once"),
        ([1, 2], r"A table must be \{'headers'"),
        ("price=1", r"A table must be \{'headers'"),
    ],
)
@pytest.mark.slow
def test_a_weights_table_that_is_no_table_of_numbers_is_refused_in_words(
    client: tuple, items: str, weights: object, message: str
) -> None:
    served, _ = client
    refused(served, message, file=handle_file(items), weights=weights, top_k=3, **RANK)


@pytest.mark.slow
def test_feedback_without_marks_is_refused_in_words_and_the_app_answers_after(client: tuple, items: str) -> None:
    served, _ = client
    fresh = Client(served.src, verbose=False)  # a session that ranked nothing
    refused(fresh, "Rank a list first", marks=None, api_name="/feedback")
    table, _, _ = served.predict(file=handle_file(items), top_k=3, **RANK)
    assert len(table["data"]) == 3
    for marks in (None, "true", {"headers": ["mark"], "data": [[True]]}, [[True, False, False]]):
        refused(served, "marks do not match the 3 items this list was ranked with", marks=marks, api_name="/feedback")


@pytest.mark.slow
def test_a_blend_of_a_feature_near_the_float_limit_ranks_by_it(client: tuple, tmp_path: Path) -> None:
    """±1e308 overflowed the z-score's std, and the feature was silently left out of the blend."""
    served, _ = client
    path = tmp_path / "huge.csv"
    path.write_text("item,boost\nred shoes,-1e308\nblue hat,1e308\nnba finals,0\n", encoding="utf-8")
    weights = {**WEIGHTS, "data": [["boost", 1000.0]]}
    table, _, _ = served.predict(file=handle_file(str(path)), weights=weights, top_k=3, **RANK)
    assert [row[2] for row in table["data"]] == ["blue hat", "nba finals", "red shoes"]


@pytest.mark.slow
def test_the_ranked_download_keeps_numbers_and_names_only_gradios_cache(client: tuple, items: str) -> None:
    served, data_dir = client
    raw = Client(served.src, verbose=False, download_files=False)  # the reply as the server sends it
    _, download, _ = raw.predict(file=handle_file(items), top_k=3, **RANK)
    cache = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio")).resolve()
    assert Path(download["path"]).resolve().is_relative_to(cache) and Path(download["path"]).name == "ranked.csv"
    assert str(data_dir) not in str(download) and str(ROOT) not in str(download)
    _, local_copy, _ = served.predict(file=handle_file(items), top_k=3, **RANK)
    assert sorted(pd.read_csv(local_copy, dtype=str)["price"]) == ["-5", "3", "7"]  # -5 is a number, not '-5


@pytest.mark.parametrize("inside", ["README.md", "tests/test_hostile_requests.py"])
def test_the_server_serves_no_file_outside_gradios_cache(client: tuple, inside: str) -> None:
    served, _ = client
    for path in (ROOT / inside, Path(tempfile.gettempdir())):
        url = f"{served.src.rstrip('/')}/gradio_api/file={path}"
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url, timeout=10)
        assert error.value.code in (403, 404)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"item": "a", "big": 123456789012345678901234567890}'], "outside the 64-bit range; quote it as a string"),
        (['{"item": "a", "deep": ' + "[" * 3000 + "]" * 3000 + "}"], "nested more than 32 deep"),
    ],
    ids=["30-digit integer", "nested 3000 deep"],
)
@pytest.mark.parametrize("endpoint", ["/rank", "/compare"])
@pytest.mark.slow
def test_a_jsonl_line_that_json_cannot_carry_is_refused_in_words(
    client: tuple, tmp_path: Path, lines: list[str], message: str, endpoint: str
) -> None:
    """A 30-digit integer was ranked and then could not be serialised (the connection was cancelled with no
    message); a line nested 3,000 deep was a RecursionError."""
    served, _ = client
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join([*lines, '{"item": "b", "big": 1, "deep": []}']) + "\n", encoding="utf-8")
    request = {**RANK, "api_name": endpoint, "file": handle_file(str(path))}
    if endpoint == "/rank":
        request["top_k"] = 3
    refused(served, message, **request)
