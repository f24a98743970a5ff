"""The command lines' shared behaviour: output on stdout, a user error as one line on stderr and exit status 2."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR, describe, network_errors, run_cli, say
from recsys.errors import ContractError, UserError

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
    ("error", "line"),
    [
        (IsADirectoryError(errno.EISDIR, "Is a directory", "out"), "out: Is a directory; give a file's path, not a"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/x.csv"), "/srv/x.csv: Permission denied; choose a"),
        (
            FileExistsError(errno.EEXIST, "File exists", "clicks.csv"),
            "clicks.csv: File exists; something is in the way",
        ),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "a.csv/b"), "a.csv/b: Not a directory; part of the path"),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/p"),
            "/p: No such file or directory; check the",
        ),
        (OSError(errno.ENOSPC, "No space left on device", "out.csv"), "out.csv: No space left on device; free some"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", ".out.partial", None, "out"), "out: Is a directory; give"),
    ],
)
def test_a_file_the_system_refused_is_its_path_its_reason_and_the_fix(
    capsys: pytest.CaptureFixture, error: OSError, line: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(raising(error))
    assert exit_.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"error: {line}") and err.count("\n") == 1


def test_a_message_over_several_lines_is_shown_on_one() -> None:
    # transformers' OSError for an unreachable model spans lines; a command ends in one line.
    error = OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your internet connection\n")
    assert describe(error) == "We couldn't connect to 'https://huggingface.co'. Check your internet connection"
    assert describe(UserError("two  spaces kept")) == "two  spaces kept"
    assert describe(FileNotFoundError()) == "FileNotFoundError"


def test_a_network_failure_of_the_hub_client_is_a_user_error(capsys: pytest.CaptureFixture) -> None:
    (base,) = network_errors()  # huggingface_hub's HTTP client's base error, whichever client it uses
    connect = next(kind for kind in _subclasses(base) if kind.__name__ == "ConnectError")
    with pytest.raises(SystemExit) as exit_:
        run_cli(raising(connect("[Errno 111] Connection refused")))
    assert exit_.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err == (
        "error: cannot reach the network ([Errno 111] Connection refused); check the connection and try again\n"
    )


def _subclasses(kind: type) -> list[type]:
    return [kind] + [sub for child in kind.__subclasses__() for sub in _subclasses(child)]


def test_ctrl_c_ends_with_one_line_and_status_130(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(raising(KeyboardInterrupt()))
    assert exit_.value.code == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "error: interrupted\n"


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


@pytest.mark.parametrize("result", [True, False])
def test_a_true_or_false_result_is_not_an_exit_status(result: bool, capsys: pytest.CaptureFixture) -> None:
    try:
        run_cli(lambda: result)
    except SystemExit as exit_:  # bool is an int: a True taken for status 1 would land here
        pytest.fail(f"{result} ended the command with exit status {exit_.code}")
    assert capsys.readouterr() == ("", "")


def test_say_writes_one_line_to_stdout(capsys: pytest.CaptureFixture) -> None:
    say("| auc | 0.7 |\n\n")
    say("url")
    assert capsys.readouterr() == ("| auc | 0.7 |\nurl\n", "")


@pytest.mark.slow
def test_a_command_with_a_missing_file_ends_with_one_error_line(tmp_path: Path) -> None:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "recsys.evaluation.evaluator", "--data", "missing.csv"],
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
