"""The command lines' shared behaviour: output on stdout, a user error as one line on stderr and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import EXIT_USER_ERROR, run_cli, say
from recsys.contract import ContractError
from recsys.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def raising(error: BaseException):
    def main() -> None:
        raise error

    return main


@pytest.mark.parametrize(
    "error",
    [
        UserError("--loss must be one of pointwise, listwise"),
        ContractError("clicks.csv", "no such file"),
        FileNotFoundError("models/clicktune: no such folder"),
        PermissionError("models/clicktune: not writable"),
        UserError("push needs a Hugging Face token: run `hf auth login`"),
    ],
)
def test_a_user_error_is_one_line_on_stderr_and_exit_status_2(capsys: pytest.CaptureFixture, error: Exception) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(raising(error))
    assert exit_.value.code == EXIT_USER_ERROR == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {error}\n"


@pytest.mark.parametrize(
    "error",
    [KeyError("item"), TypeError("bad call"), ZeroDivisionError(), ValueError("shapes differ"), RuntimeError("CUDA")],
)
def test_other_exceptions_pass_through(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        run_cli(raising(error))
    assert raised.value is error


def test_a_main_that_returns_a_result_ends_normally(capsys: pytest.CaptureFixture) -> None:
    def main() -> dict:
        say("done")
        return {"steps": 3}

    run_cli(main)  # no SystemExit
    assert capsys.readouterr() == ("done\n", "")


@pytest.mark.parametrize("status", [0, 1, 3])
def test_a_main_that_returns_an_int_sets_the_exit_status(status: int) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: status)
    assert exit_.value.code == status


def test_a_true_or_false_result_is_not_an_exit_status() -> None:
    run_cli(lambda: True)
    run_cli(lambda: False)


def test_say_writes_one_line_to_stdout(capsys: pytest.CaptureFixture) -> None:
    say("| auc | 0.7 |\n\n")
    say("url")
    assert capsys.readouterr() == ("| auc | 0.7 |\nurl\n", "")


def test_a_command_with_a_missing_file_ends_with_one_error_line(tmp_path: Path) -> None:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "recsys.evaluate", "--data", "missing.csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines == ["error: missing.csv: no such file"], result.stderr
    assert result.stdout == ""
