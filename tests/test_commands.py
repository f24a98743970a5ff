"""The `simulate` command (recsys.loop.commands): its report, its output and the flags and logs it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.errors import ContractError, UserError
from recsys.feedback.interleave import NONE, sign_test
from recsys.loop.commands import main

REPORT_KEYS = {
    "winner",
    "wins",
    "losses",
    "ties",
    "sessions",
    "p_value",
    "champion",
    "challenger",
    "click_model",
    "seed",
    "data",
    "sessions_to_decision",
}


def run(tmp_path: Path, champion: str, challenger: str, data: Path, *flags: str) -> dict:
    out = tmp_path / "loop.json"
    argv = ["simulate", "--champion", champion, "--challenger", challenger, "--data", str(data), "--json", str(out)]
    main([*argv, *flags])
    return json.loads(out.read_text())


def test_a_champion_against_itself_ties_every_session(
    tmp_path: Path, tiny_model_dir: Path, clicks_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = str(tiny_model_dir)
    report = run(tmp_path, model, model, clicks_path, "--click-model", "cascade", "--seed", "0")
    assert set(report) == REPORT_KEYS
    assert (report["winner"], report["wins"], report["losses"]) == (NONE, 0, 0)
    assert report["ties"] == report["sessions"] == 12
    assert (report["p_value"], report["sessions_to_decision"]) == (1.0, None)
    parameters = {"name": "cascade", "p_click_relevant": 0.9, "p_click_irrelevant": 0.05, "p_stop": 0.5}
    assert report["click_model"] == parameters
    assert (report["champion"], report["challenger"], report["seed"]) == (model, model, 0)
    assert report["data"] == str(clicks_path)
    shown = capsys.readouterr().out
    assert "the challenger won 0 of 0 decided lists (0 lost, 12 ties), p = 1.000: no winner at alpha 0.05" in shown
    assert "cascade: the user reads top-down" in shown


@pytest.mark.slow
def test_two_different_models_report_counts_that_add_up(
    tmp_path: Path, tiny_model_dir: Path, cross_dir: Path, clicks_path: Path
) -> None:
    flags = ("--click-model", "position", "--seed", "1", "--max-sessions", "10")
    report = run(tmp_path, str(tiny_model_dir), str(cross_dir), clicks_path, *flags)
    assert set(report) == REPORT_KEYS
    assert report["sessions"] == 10 == report["wins"] + report["losses"] + report["ties"]
    assert report["p_value"] == sign_test(report["wins"], report["losses"])
    assert report["click_model"]["name"] == "position"
    again = run(tmp_path, str(tiny_model_dir), str(cross_dir), clicks_path, *flags)
    assert again == report  # seeded


def test_bad_flags_and_logs_are_refused_by_name(tmp_path: Path, tiny_model_dir: Path, clicks_path: Path) -> None:
    model = str(tiny_model_dir)
    base = ["simulate", "--champion", model, "--challenger", model, "--click-model", "cascade"]
    with pytest.raises(UserError, match="--max-sessions must be at least 1, not 0"):
        main([*base, "--data", str(clicks_path), "--seed", "0", "--max-sessions", "0"])
    with pytest.raises(UserError, match="--seed must be 0 or more"):
        main([*base, "--data", str(clicks_path), "--seed", "-1"])
    with pytest.raises(ContractError, match="is the input file"):
        main([*base, "--data", str(clicks_path), "--seed", "0", "--json", str(clicks_path)])
    unranked = tmp_path / "unranked.csv"
    all_clicked = pd.DataFrame({"group": ["a", "a"], "query": ["q", "q"], "item": ["x", "y"], "clicked": [1, 1]})
    all_clicked.to_csv(unranked, index=False)
    with pytest.raises(ContractError, match="no group holds both a click and a non-click"):
        main([*base, "--data", str(unranked), "--seed", "0"])
    with pytest.raises(SystemExit, match="2"):  # argparse: not one of the click models
        main([*base[:-1], "dbn", "--data", str(clicks_path), "--seed", "0"])
