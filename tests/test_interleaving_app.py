"""A challenger in the app: interleaved lists in the Rank tab, their teams and outcomes in the feedback store, the
Comparison panel, and the served model reloaded after a promotion without a restart."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import pytest
import torch
from gradio_client import handle_file
from test_app import CONTEXT, CSV, LIMITS  # a held-out user's list, within the limits the app tests use

from clicktune_app.display import RANK_HEADERS
from clicktune_app.handlers import Handlers
from clicktune_app.layout import build_demo, create_app
from recsys.data.candidates import read_candidates
from recsys.data.contract import ITEM, ITEM_ID, POSITION
from recsys.errors import UserError
from recsys.feedback.interleave import CHALLENGER, CHAMPION, SHARED, Comparison
from recsys.feedback.ranked_lists import Interleaving
from recsys.feedback.store import FeedbackStore
from recsys.loop.promotion import promote
from recsys.loop.versions import served_version
from recsys.model.artifact import ModelMetadata
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates
from recsys.scoring.scorer import Scorer
from recsys.serving.evaluations import Evaluations
from recsys.serving.service import LiveModels, ServedModels, load_challenger, load_served_models
from recsys.serving.settings import AppConfig
from recsys.serving.shown_lists import interleave

CHAMPION_VERSION, CHALLENGER_VERSION = "clicktune@aaaa1111", "clicktune-next@bbbb2222"


@pytest.fixture
def scorer(bi_scorer: Scorer) -> Scorer:
    """The champion: the tiny bi-encoder (interleaving needs no cross-encoder run)."""
    return bi_scorer


@pytest.fixture
def models(scorer: Scorer, reversed_scorer: Scorer) -> ServedModels:
    challenger = ServedModels(reversed_scorer, version=CHALLENGER_VERSION)
    return ServedModels(scorer, challenger=challenger, version=CHAMPION_VERSION)


def make_handlers(models: ServedModels, data_dir: Path, browsing: bool = False) -> Handlers:
    store = FeedbackStore(data_dir)
    return Handlers(models, store, Evaluations(models, data_dir, None, None), LIMITS, feedback_browsing=browsing)


def rankings(models: ServedModels) -> tuple[list[str], list[str]]:
    """The champion's and the challenger's own rankings of the example list, as item ids."""
    candidates = read_candidates(CSV)
    return (
        rank_candidates(models.scorer, CONTEXT, candidates)[ITEM_ID].tolist(),
        rank_candidates(models.challenger.scorer, CONTEXT, candidates)[ITEM_ID].tolist(),
    )


def marked(table: pd.DataFrame, positions: set[int]) -> list[bool]:
    """The marks of the ranked table with the items at ``positions`` ticked, as the page sends them."""
    return [n in positions for n in range(1, len(table) + 1)]


def positions_of(teams: tuple[str, ...], team: str) -> set[int]:
    return {n for n, t in enumerate(teams, start=1) if t == team}


# -- ranking an interleaved list ---------------------------------------------------------------------------------


def test_an_interleaved_list_shows_both_rankings_blind_and_is_drawn_again_from_its_id(
    models: ServedModels, tmp_path: Path
) -> None:
    handlers = make_handlers(models, tmp_path)
    champion, challenger = rankings(models)
    assert champion != challenger  # the two models disagree, so the draft mixes them

    table, download, status, ranked = handlers.rank(CONTEXT, CSV, "", "item", None, None, False, True)
    assert list(table.columns)[: len(RANK_HEADERS)] == RANK_HEADERS and "team" not in table.columns
    assert table["rank"].tolist() == list(range(1, len(champion) + 1))
    assert table[ITEM_ID].is_unique and set(table[ITEM_ID]) == set(champion)  # the union, each item once
    assert table[["score", "click_probability"]].isna().all().all()  # no model's scores: they would tell teams apart
    assert table["match"].eq("").all() and table["log popularity"].eq("").all()
    saved = pd.read_csv(download, dtype=str)
    assert saved[ITEM_ID].tolist() == table[ITEM_ID].tolist()
    assert not {"score", "click_probability", "match_to_context", "team"} & set(saved.columns)
    assert "interleaved the two rankings" in status and f"challenger `{CHALLENGER_VERSION}`" in status

    teams = ranked.interleaving.teams
    assert ranked.version == CHAMPION_VERSION and ranked.interleaving.challenger == CHALLENGER_VERSION
    assert {CHAMPION, CHALLENGER} <= set(teams) and len(teams) == len(table)
    drawn = interleave(ranked.list_id, champion, challenger, None)  # the same list id draws the same list
    assert [s.item for s in drawn] == table[ITEM_ID].tolist() and tuple(s.team for s in drawn) == teams

    # The top 4 of an interleaved list come from the top 4 of one ranking or the other.
    table, _, _, ranked = handlers.rank(CONTEXT, CSV, "", "item", None, 4, False, True)
    assert len(table) == 4 and table[ITEM_ID].is_unique
    assert set(table[ITEM_ID]) <= set(champion[:4]) | set(challenger[:4])
    assert len(ranked.interleaving.teams) == 4


def test_saving_marks_stores_each_items_team_and_position(models: ServedModels, tmp_path: Path) -> None:
    handlers = make_handlers(models, tmp_path)
    table, _, _, ranked = handlers.rank(CONTEXT, CSV, "", "item", None, 6, False, True)
    status, _ = handlers.feedback(marked(table, {1, 3}), ranked)
    assert "Saved 2 of 6 items as clicked (an interleaved list" in status
    assert CHALLENGER_VERSION not in status and "won" not in status  # saving does not unblind the list
    rows = handlers.store.read()
    assert rows[ITEM].tolist() == table[ITEM].tolist() and rows[POSITION].tolist() == [1, 2, 3, 4, 5, 6]
    assert tuple(rows["team"]) == ranked.interleaving.teams
    assert set(rows["model_version"]) == {CHAMPION_VERSION}


@pytest.mark.parametrize(
    ("marked_teams", "wins", "losses", "ties"),
    [((CHALLENGER,), 1, 0, 0), ((CHAMPION,), 0, 1, 0), ((CHAMPION, CHALLENGER), 0, 0, 1)],
)
def test_saving_marks_credits_the_model_whose_items_were_marked(
    models: ServedModels, tmp_path: Path, marked_teams: tuple[str, ...], wins: int, losses: int, ties: int
) -> None:
    handlers = make_handlers(models, tmp_path)
    table, _, _, ranked = handlers.rank(CONTEXT, CSV, "", "item", None, None, False, True)
    teams = ranked.interleaving.teams
    # A wrong mark first: saving again replaces the list's marks, and its outcome with them.
    other = CHAMPION if marked_teams == (CHALLENGER,) else CHALLENGER
    handlers.feedback(marked(table, {min(positions_of(teams, other))}), ranked)
    # One mark on each marked team's first item (a tie marks one of each).
    chosen = {min(positions_of(teams, team)) for team in marked_teams}
    handlers.feedback(marked(table, chosen), ranked)
    assert handlers.store.comparison(CHAMPION_VERSION, CHALLENGER_VERSION) == Comparison(wins, losses, ties)
    assert handlers.store.summary() == {"lists": 1, "rows": len(table), "clicks": len(chosen)}


def test_ranking_interleaved_without_a_challenger_is_refused(scorer: Scorer, tmp_path: Path) -> None:
    handlers = make_handlers(ServedModels(scorer), tmp_path)
    with pytest.raises(gr.Error, match=r"serves no challenger to interleave with; .* CHALLENGER_DIR"):
        handlers.rank(CONTEXT, CSV, "", "item", None, 5, False, True)
    *_, error = handlers.rank_in_page(CONTEXT, CSV, "", "item", None, 5, False, True)
    assert "serves no challenger" in error


# -- the Comparison panel ----------------------------------------------------------------------------------------


def record_outcomes(store: FeedbackStore, challenger: str, outcomes: dict[str, int]) -> None:
    """Interleaved lists of three items (champion, challenger, shared) against ``challenger``, marked to give each
    outcome its count of times."""
    clicked = {CHALLENGER: {2}, CHAMPION: {1}, "tie": {3}}  # a mark on the shared item credits neither
    teams = Interleaving(challenger, (CHAMPION, CHALLENGER, SHARED))
    for outcome, count in outcomes.items():
        for n in range(count):
            shown = pd.DataFrame(
                {
                    ITEM: ["a", "b", "c"],
                    ITEM_ID: ["1", "2", "3"],
                    POSITION: [1, 2, 3],
                    "clicked": [int(p in clicked[outcome]) for p in (1, 2, 3)],
                }
            )
            store.record(f"{outcome} {n}", shown, CHAMPION_VERSION, interleaving=teams)


def test_the_comparison_panel_counts_this_pair_and_says_the_sign_test_in_words(
    models: ServedModels, scorer: Scorer, tmp_path: Path
) -> None:
    handlers = make_handlers(models, tmp_path)
    text, rows = handlers.comparison()
    assert "no interleaved list has marks yet" in text and rows.empty
    record_outcomes(handlers.store, CHALLENGER_VERSION, {CHALLENGER: 9, CHAMPION: 1, "tie": 2})
    record_outcomes(handlers.store, "clicktune-older@cccc3333", {CHAMPION: 5})  # another pair: not counted
    handlers.store.record("plain", pd.DataFrame({ITEM: ["a"], ITEM_ID: ["1"], POSITION: [1], "clicked": [1]}), "v")

    text, rows = handlers.comparison()
    assert f"Champion `{CHAMPION_VERSION}` against challenger `{CHALLENGER_VERSION}`, on 12 interleaved lists" in text
    assert "**9** won by the challenger, **1** by the champion, **2 ties**" in text
    # 9 wins against 1 loss: two-sided exact p = 2 · (1 + 10) / 2^10 = 0.021.
    assert "The challenger won 9 of 10 decided lists (1 lost, 2 ties), p = 0.021: the challenger is better" in text
    assert Comparison(9, 1, 2).sentence()[1:] in text
    assert rows.empty and "Browsing the lists is off on this server" in text  # private by default, like feedback

    handlers.feedback_browsing = True
    text, rows = handlers.comparison()
    assert "Browsing the lists is off" not in text and len(rows) == 12
    assert rows["outcome"].value_counts().to_dict() == {CHALLENGER: 9, CHAMPION: 1, "tie": 2}
    assert (rows["challenger_clicks"] > rows["champion_clicks"]).sum() == 9 and set(rows["items"]) == {3}
    assert rows.loc[rows["outcome"] == "tie", "shared_clicks"].eq(1).all()

    no_challenger = make_handlers(ServedModels(scorer), tmp_path)
    assert "serves no challenger" in no_challenger.comparison()[0]


@pytest.mark.slow
def test_the_switch_and_the_panel_show_only_with_a_challenger(
    models: ServedModels, scorer: Scorer, tmp_path: Path
) -> None:
    def blocks(served: ServedModels) -> dict[str, gr.blocks.Block]:
        demo = build_demo(served, tmp_path, limits=LIMITS, eval_file=None, train_file=None)
        return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}

    with_one = blocks(models)
    switch = with_one["rank-interleave"]
    assert switch.visible and switch.value is False and switch.label == "Interleave champion and challenger"
    assert "comparison-overview" in with_one and not with_one["comparison-table"].visible  # rows: browsing only
    without = blocks(ServedModels(scorer))
    assert not without["rank-interleave"].visible and "comparison-overview" not in without


def test_challenger_dir_is_read_from_the_environment_and_must_hold_a_model(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert AppConfig.from_env({"CHALLENGER_DIR": " models/next "}).challenger_dir == "models/next"
    assert AppConfig.from_env({}).challenger_dir == ""
    challenger = load_challenger(tiny_model_dir)
    assert challenger.model_dir == str(tiny_model_dir) and challenger.version == f"{tiny_model_dir.name} (zero-shot)"
    with pytest.raises(UserError, match=r"CHALLENGER_DIR=.*empty holds no model; set it to a folder"):
        load_challenger(tmp_path / "empty")
    config = AppConfig(model_dir=str(tiny_model_dir), data_dir=str(tmp_path), eval_file="", train_file="")
    demo = create_app(replace(config, challenger_dir=str(tiny_model_dir)))
    assert next(b for b in demo.blocks.values() if b.elem_id == "rank-interleave").visible


@pytest.mark.slow
def test_the_api_ranks_interleaved_and_saves_the_teams(
    models: ServedModels, tmp_path: Path, launch_app: Callable
) -> None:
    with launch_app(models, tmp_path, LIMITS) as client:
        table, _, status = client.predict(
            context=CONTEXT, file=handle_file(CSV), pasted="", item_column="item", top_k=5, interleaved=True,
            api_name="/rank",
        )  # fmt: skip
        assert "interleaved the two rankings" in status and len(table["data"]) == 5
        marks = [True, False, False, False, False]
        assert "Saved 1 of 5 items as clicked" in client.predict(marks=marks, api_name="/feedback")
    rows = FeedbackStore(tmp_path).read()
    assert rows["position"].tolist() == [1, 2, 3, 4, 5] and rows["team"].notna().all()
    credited = {CHAMPION: Comparison(0, 1, 0), CHALLENGER: Comparison(1, 0, 0), SHARED: Comparison(0, 0, 1)}
    expected = credited[rows["team"].iloc[0]]  # the one mark, on the first item
    assert FeedbackStore(tmp_path).comparison(CHAMPION_VERSION, CHALLENGER_VERSION) == expected


# -- reloading a promoted model ----------------------------------------------------------------------------------


def fine_tuned(tiny_model_dir: Path, folder: Path, seed: int) -> Path:
    """Another fine-tuned model: the tiny BERT with new random weights and its own metadata (so its own digest)."""
    from transformers import BertConfig, BertModel

    shutil.copytree(tiny_model_dir, folder)
    torch.manual_seed(seed)
    BertModel(BertConfig.from_pretrained(tiny_model_dir)).save_pretrained(folder)
    ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True, training={"seed": seed}).save(folder)
    (folder / "metrics.json").write_text(json.dumps({"best_step": seed}))  # training finished
    return folder


def test_the_app_serves_a_promoted_model_without_a_restart(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = fine_tuned(tiny_model_dir, tmp_path / "clicktune", seed=1)
    candidate = fine_tuned(tiny_model_dir, tmp_path / "clicktune-next", seed=2)
    old, new = served_version(served), served_version(candidate)
    handlers = make_handlers(load_served_models(served), tmp_path / "feedback")
    handlers.live.every = 0  # look at every request, not every few seconds
    pairs = [(CONTEXT, "warriors win game 7"), (CONTEXT, "new iphone released")]
    before = handlers.models.scorer.score_pairs(pairs)
    _, _, status, ranked_before = handlers.rank(CONTEXT, None, "a\nb\nc", "item", None, 3)
    assert f"clicktune@{old}" in status and handlers.serving() is handlers.models  # nothing new: nothing loaded

    promote(served, candidate, None, "promoted by the test")
    with caplog.at_level(logging.INFO, logger="recsys.serving.service"):
        _, _, status, ranked_after = handlers.rank(CONTEXT, None, "a\nb\nc", "item", None, 3)
    assert f"clicktune@{new}" in status and handlers.models.version == f"clicktune@{new}"
    assert f"now serving clicktune@{new} (was clicktune@{old})" in caplog.text
    after = handlers.models.scorer.score_pairs(pairs)
    assert np.allclose(after, load_scorer(str(candidate)).score_pairs(pairs)) and not np.allclose(after, before)
    assert handlers.evaluations.models is handlers.models  # evaluations are cached for the model now served

    # A list is stored with the model that ranked it, though the served model changed before its marks were saved.
    handlers.feedback([True, False, False], ranked_before)
    assert set(handlers.store.read()["model_version"]) == {f"clicktune@{old}"}
    assert ranked_after.version == f"clicktune@{new}"


def test_the_served_folder_is_looked_at_no_more_than_every_few_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    served = fine_tuned(tiny_model_dir, tmp_path / "clicktune", seed=1)
    challenger = ServedModels(load_scorer(str(tiny_model_dir)), version="challenger@x")
    loaded = replace(load_served_models(served), challenger=challenger)
    live = LiveModels(loaded, every=3600)
    promote(served, fine_tuned(tiny_model_dir, tmp_path / "clicktune-next", seed=2), None, "promoted by the test")
    assert live.current() is loaded  # within the hour: the old model, not a look at the folder
    live.every, heard = 0, []  # as if the hour were up
    live.on_reload = heard.append
    reloaded = live.current()
    assert reloaded is not loaded and heard == [reloaded] and reloaded.version.endswith(served_version(served))
    assert reloaded.challenger is challenger  # the challenger stays
    assert live.current() is reloaded  # the same digest again: nothing reloaded


def test_a_new_model_that_fails_to_load_leaves_the_old_one_served(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = fine_tuned(tiny_model_dir, tmp_path / "clicktune", seed=1)
    loaded = load_served_models(served)
    live = LiveModels(loaded, every=0)
    promote(served, fine_tuned(tiny_model_dir, tmp_path / "clicktune-next", seed=2), None, "promoted by the test")
    (served / "model.safetensors").write_bytes(b"not weights")  # damaged after the promotion
    with caplog.at_level(logging.INFO, logger="recsys.serving.service"):
        assert live.current() is loaded
    assert "could not load the new model" in caplog.text
    assert live.current() is loaded  # not tried again until the folder holds yet another model
    assert caplog.text.count("could not load the new model") == 1
