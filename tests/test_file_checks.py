"""Checks on the files a command reads and writes (recsys.data.file_checks)."""

from __future__ import annotations

from pathlib import Path

from recsys.data.file_checks import check_not_an_input_folder


def test_a_folder_beside_or_inside_an_input_is_fine(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "clicks.csv").write_text("x")
    for out in (tmp_path / "model", tmp_path / "logs" / "model", tmp_path / "not-yet" / "model"):
        check_not_an_input_folder(out, [tmp_path / "logs" / "clicks.csv"], "fix")
    check_not_an_input_folder(tmp_path / "logs" / "inside", [tmp_path / "logs"], "fix")  # inside is not over
