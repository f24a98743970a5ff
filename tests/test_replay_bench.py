"""bench/replay.py: its report, drawn from the rows of a run."""

from __future__ import annotations

from bench import replay


def row(seed: int, winner: str, stream_winner: str, decision: int | None) -> dict:
    return {
        "log": "movielens", "split": "test", "training_seed": 42, "click_model": "cascade", "seed": seed,
        "winner": winner, "wins": 9, "losses": 3, "ties": 1, "stream_winner": stream_winner,
        "sessions_to_decision": decision,
    }  # fmt: skip


def test_the_report_has_one_row_per_file_click_model_and_model_with_every_replay_seed() -> None:
    results = {
        "run": {"command": "python -m bench.replay --seeds 1 2", "date": "2026-01-01", "seconds": 3.0, "stream": 50},
        "rows": [row(1, "challenger", "challenger", 12), row(2, "none", "none", None)],
    }
    report = replay.render(results)
    assert "Command: `python -m bench.replay --seeds 1 2` (2026-01-01, 3 s, CPU only)." in report
    assert (
        "| movielens `test.csv` | cascade | 42 | challenger (9/3/1); none (9/3/1) | challenger after 12; none after — |"
        in report
    )
    assert "The stream draws 50 sessions with replacement" in report
