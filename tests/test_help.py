"""Every command line explains itself: each flag's help, its default and its choices are in ``--help``.

The checks read each parser's actions, not the rendered text: a new flag without help, a default that
``--help`` does not show, or a fixed set of values without ``choices`` fails here. The console scripts of
pyproject.toml are checked to point at callables that answer ``--help``, without installing the package.
Each command's ``--help``, run as a user runs it, loads none of the heavy libraries, so it answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from accelerate.utils import LoggerType
from huggingface_hub import SpaceHardware
from test_build import build as space_build

import app
import finetune.config
import finetune.train
import recsys.data.mind
import recsys.evaluation.evaluator
import recsys.feedback.store
import recsys.publish.hub
import recsys.scoring.bulk
import recsys.scoring.catalog
import recsys.scoring.onnx_export
from finetune.config import ARCHITECTURES, LOSSES, REPORT_TO
from recsys.defaults import Env

REPO = Path(__file__).resolve().parents[1]


PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "python -m finetune.train": finetune.config.build_parser,
    "python -m recsys.evaluation.evaluator": recsys.evaluation.evaluator.build_parser,
    "python -m recsys.feedback.store": recsys.feedback.store.build_parser,
    "python -m recsys.publish.hub": recsys.publish.hub.build_parser,
    "python -m recsys.scoring.catalog": recsys.scoring.catalog.build_parser,
    "python -m recsys.data.mind": recsys.data.mind.build_parser,
    "python -m recsys.scoring.onnx_export": recsys.scoring.onnx_export.build_parser,
    "python -m recsys.scoring.bulk": recsys.scoring.bulk.build_parser,
    "python spaces/build.py": space_build.build_parser,
    "python app.py": app.build_parser,
}
# What `--help` runs: each command, and each subcommand.
HELP_RUNS = [
    (finetune.train.main, []),
    (recsys.evaluation.evaluator.main, []),
    (recsys.feedback.store.main, []),
    (recsys.feedback.store.main, ["export"]),
    (recsys.publish.hub.main, []),
    (recsys.publish.hub.main, ["plan"]),
    (recsys.publish.hub.main, ["push"]),
    (recsys.scoring.catalog.main, []),
    (recsys.scoring.catalog.main, ["build"]),
    (recsys.scoring.catalog.main, ["query"]),
    (recsys.data.mind.main, []),
    (recsys.scoring.onnx_export.main, []),
    (recsys.scoring.onnx_export.main, ["export"]),
    (recsys.scoring.bulk.main, []),
    (space_build.main, []),
    (app.serve, []),
]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SCRIPTS = PYPROJECT["project"]["scripts"]


def options(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser, argparse.Action]]:
    """Every action of ``parser`` and of its subcommands' parsers, with the parser it belongs to; not ``-h``."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        yield parser, action
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from options(subparser)


def shown_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The action's line in ``--help``, as the parser's formatter expands it (its default added, if it adds one)."""
    return parser._get_formatter()._expand_help(action) if action.help else ""


def is_switch(action: argparse.Action) -> bool:
    """``store_true``/``store_false``: the flag's absence is its default, which ``--help`` need not repeat."""
    return isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)


def name(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.dest


@pytest.mark.parametrize("command", PARSERS)
def test_every_option_says_what_it_does(command: str) -> None:
    for _, action in options(PARSERS[command]()):
        assert action.help and action.help is not argparse.SUPPRESS, f"{command} {name(action)} has no help"
        restated = action.dest.replace("_", " ")
        assert action.help.strip().lower() != restated, f"{command} {name(action)}: its help only restates its name"


@pytest.mark.parametrize("command", PARSERS)
def test_every_default_is_shown(command: str) -> None:
    checked = 0
    for parser, action in options(PARSERS[command]()):
        if action.default is None or action.default is argparse.SUPPRESS or is_switch(action):
            continue
        assert str(action.default) in shown_help(parser, action), f"{command} {name(action)} hides its default"
        checked += 1
    if command in ("python -m finetune.train", "python -m recsys.data.mind", "python spaces/build.py"):
        assert checked >= 3  # the check saw the defaults these commands have


@pytest.mark.parametrize("command", PARSERS)
def test_every_choice_is_listed(command: str) -> None:
    for parser, action in options(PARSERS[command]()):
        if action.choices is None:
            continue
        values = [str(choice) for choice in action.choices]
        # As argparse lists them after the flag ({bi,cross}), or as %(choices)s expands in the help.
        in_usage = "{" + ",".join(values) + "}" in parser._get_formatter()._format_action_invocation(action)
        assert in_usage or ", ".join(values) in shown_help(parser, action), f"{command} {name(action)} hides {values}"


def test_the_options_with_a_fixed_set_of_values_have_choices() -> None:
    actions = {action.dest: action for _, action in options(finetune.config.build_parser()) if action.option_strings}
    assert tuple(actions["architecture"].choices) == ARCHITECTURES
    assert tuple(actions["loss"].choices) == LOSSES
    assert tuple(actions["report_to"].choices) == REPORT_TO
    # Written out in finetune.config, so that --help loads no accelerate: Accelerate's own list, with none.
    assert ("none", *LoggerType.list()) == REPORT_TO
    hardware = next(action for _, action in options(space_build.build_parser()) if action.dest == "hardware")
    assert list(hardware.choices) == [h.value for h in SpaceHardware]
    subcommands = {
        tuple(action.choices)
        for parser in (recsys.publish.hub.build_parser(), recsys.feedback.store.build_parser())
        for _, action in options(parser)
        if isinstance(action, argparse._SubParsersAction)
    }
    assert subcommands == {("plan", "push"), ("export",)}


@pytest.mark.parametrize(
    ("main", "argv"), HELP_RUNS, ids=[" ".join([main.__module__, *argv]) for main, argv in HELP_RUNS]
)
def test_help_runs_and_exits_0(main: Callable, argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: ") and err == ""


def test_the_console_scripts_are_the_commands() -> None:
    assert set(SCRIPTS) == {
        "clicktune-train",
        "clicktune-evaluate",
        "clicktune-app",
        "clicktune-feedback",
        "clicktune-hub",
        "clicktune-mind",
        "clicktune-index",
        "clicktune-onnx",
        "clicktune-score",
        "clicktune-loop",
    }
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    shipped = {name.removesuffix(".py") for name in wheel["only-include"]}
    for target in SCRIPTS.values():
        module = target.split(":")[0]
        assert module.split(".")[0] in shipped, f"{target}: its module is not in the package"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_console_script_answers_help(
    script: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, function = SCRIPTS[script].split(":")
    entry_point = getattr(importlib.import_module(module), function)
    monkeypatch.setattr(sys, "argv", [script, "--help"])  # as the installed script runs it: no arguments
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps at a hyphen too: "clicktune-" then "evaluate"
    with pytest.raises(SystemExit) as exit_:
        entry_point()
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    assert script in out  # the help names the installed command beside the `python -m` form


def test_the_apps_help_lists_every_setting_it_reads(capsys: pytest.CaptureFixture) -> None:
    """``python app.py --help`` printed its settings' heading and then nothing."""
    with pytest.raises(SystemExit):
        app.serve(["--help"])
    shown = capsys.readouterr().out
    names = [value for name, value in vars(Env).items() if not name.startswith("_")]
    assert names and [name for name in names if name not in shown] == []


# What `--help` must not load: each takes seconds to import, and only the work behind a command needs it.
HEAVY = (
    "torch",
    "transformers",
    "accelerate",
    "gradio",
    "faiss",
    "onnxruntime",
    "sentence_transformers",
    "peft",
    "sklearn",
    "matplotlib",
    "datasets",
)
# Runs one command as its user runs it (KIND is -m, a script's path, or a console script's module:function), with
# ARGS; prints its exit status, whether it printed a usage, and the heavy modules it loaded.
HELP_DRIVER = f"""
import contextlib, importlib, io, json, os, runpy, sys
kind, target, *args = sys.argv[1:]
sys.argv = [target, *args]
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        if kind == "-m":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        elif kind == "script":
            sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
        else:
            module, function = target.split(":")
            getattr(importlib.import_module(module), function)()
    code = None
except SystemExit as exit_:
    code = exit_.code
heavy = [name for name in {HEAVY!r} if name in sys.modules]
print(json.dumps({{"code": code, "usage": out.getvalue().startswith("usage: "), "heavy": heavy}}))
"""
HELP_COMMANDS = [
    pytest.param(("-m", "finetune.train"), id="python -m finetune.train"),
    pytest.param(("-m", "recsys.evaluation.evaluator"), id="python -m recsys.evaluation.evaluator"),
    pytest.param(("-m", "recsys.feedback.store"), id="python -m recsys.feedback.store"),
    pytest.param(("-m", "recsys.feedback.store", "export"), id="python -m recsys.feedback.store export"),
    pytest.param(("-m", "recsys.publish.hub"), id="python -m recsys.publish.hub"),
    pytest.param(("-m", "recsys.publish.hub", "plan"), id="python -m recsys.publish.hub plan"),
    pytest.param(("-m", "recsys.publish.hub", "push"), id="python -m recsys.publish.hub push"),
    pytest.param(("-m", "recsys.scoring.catalog"), id="python -m recsys.scoring.catalog"),
    pytest.param(("-m", "recsys.scoring.catalog", "build"), id="python -m recsys.scoring.catalog build"),
    pytest.param(("-m", "recsys.scoring.catalog", "query"), id="python -m recsys.scoring.catalog query"),
    pytest.param(("-m", "recsys.data.mind"), id="python -m recsys.data.mind"),
    pytest.param(("-m", "recsys.scoring.onnx_export"), id="python -m recsys.scoring.onnx_export"),
    pytest.param(("-m", "recsys.scoring.onnx_export", "export"), id="python -m recsys.scoring.onnx_export export"),
    pytest.param(("-m", "recsys.scoring.bulk"), id="python -m recsys.scoring.bulk"),
    pytest.param(("-m", "recsys.loop"), id="python -m recsys.loop"),
    pytest.param(("-m", "recsys.loop", "simulate"), id="python -m recsys.loop simulate"),
    pytest.param(("-m", "recsys.loop", "retrain"), id="python -m recsys.loop retrain"),
    pytest.param(("-m", "recsys.loop", "history"), id="python -m recsys.loop history"),
    pytest.param(("-m", "recsys.loop", "rollback"), id="python -m recsys.loop rollback"),
    pytest.param(("script", "spaces/build.py"), id="python spaces/build.py"),
    pytest.param(("script", "app.py"), id="python app.py"),
    *(pytest.param(("entry", SCRIPTS[script]), id=script) for script in sorted(SCRIPTS)),
]


def _run_help(kind: str, target: str, *args: str) -> dict:
    command = [sys.executable, "-c", HELP_DRIVER, kind, target, *args, "--help"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def help_runs() -> dict[tuple[str, ...], dict]:
    """Every command's ``--help``, each in a fresh interpreter, a few at a time."""
    runs = [param.values[0] for param in HELP_COMMANDS]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(runs, pool.map(lambda run: _run_help(*run), runs), strict=True))


@pytest.mark.parametrize("command", HELP_COMMANDS)
@pytest.mark.slow
def test_help_loads_no_heavy_library(command: tuple[str, ...], help_runs: dict[tuple[str, ...], dict]) -> None:
    run = help_runs[command]
    assert (run["code"], run["usage"]) == (0, True)
    assert run["heavy"] == [], f"--help loads {', '.join(run['heavy'])}"
