"""recsys/serving/settings.py: the app's settings, read from the environment."""

from __future__ import annotations

import pytest

from recsys.defaults import FEEDBACK_DIR, HOST, PORT
from recsys.errors import UserError
from recsys.serving.settings import AppConfig, Limits

REPO_ID = "me/clicktune-feedback"


def test_config_defaults_are_the_repositorys_paths() -> None:
    config = AppConfig.from_env({})
    assert config == AppConfig()
    assert (config.model_dir, config.data_dir) == (None, str(FEEDBACK_DIR))  # None: each bundled log's model
    assert (config.host, config.port, config.limits) == (HOST, PORT, Limits())


def test_config_reads_every_variable() -> None:
    env = {
        "MODEL_DIR": "me/clicktune-news",
        "FEEDBACK_DIR": "/x",
        "EVAL_FILE": "/data/eval.csv",
        "TRAIN_FILE": "/data/train.csv",
        "CATALOG_DIR": "/catalogs/news",
        "MAX_ITEMS": "50",
        "MAX_UPLOAD_MB": "1.5",
        "MAX_TEXT_CHARS": "300",
        "HOST": "localhost",
        "PORT": "9000",
    }
    config = AppConfig.from_env(env)
    assert (config.model_dir, config.data_dir) == ("me/clicktune-news", "/x")
    assert (config.eval_file, config.train_file) == ("/data/eval.csv", "/data/train.csv")
    assert config.catalog_dir == "/catalogs/news"
    assert config.limits == Limits(max_items=50, max_upload_mb=1.5, max_text_chars=300)
    assert (config.host, config.port) == ("localhost", 9000)


def test_config_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_ITEMS", "7")
    monkeypatch.setenv("FEEDBACK_DIR", "/from/env")
    config = AppConfig.from_env()
    assert config.limits.max_items == 7 and config.data_dir == "/from/env"


def test_gradios_own_server_variables_are_honoured() -> None:
    assert AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0"}).host == "0.0.0.0"  # as on a Space
    assert AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0", "HOST": ""}).host == "0.0.0.0"
    assert AppConfig.from_env({"GRADIO_SERVER_PORT": "7999"}).port == 7999
    agreeing = AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0", "HOST": "0.0.0.0", "PORT": "80"})
    assert (agreeing.host, agreeing.port) == ("0.0.0.0", 80)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HOST": "localhost", "GRADIO_SERVER_NAME": "0.0.0.0"},
            "HOST=localhost and GRADIO_SERVER_NAME=0.0.0.0 disagree",
        ),
        ({"PORT": "8000", "GRADIO_SERVER_PORT": "7999"}, "PORT=8000 and GRADIO_SERVER_PORT=7999 disagree"),
    ],
)
def test_our_name_and_gradios_name_for_one_setting_must_agree(env: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=f"{message}; set one of them"):
        AppConfig.from_env(env)


def test_feedback_browsing_is_off_unless_the_operator_turns_it_on() -> None:
    assert AppConfig.from_env({}).feedback_browsing is False
    assert AppConfig.from_env({"FEEDBACK_BROWSING": "1"}).feedback_browsing is True
    assert AppConfig.from_env({"FEEDBACK_BROWSING": "false"}).feedback_browsing is False
    with pytest.raises(UserError, match=r"FEEDBACK_BROWSING must be 1 or 0 \(true/false\), got 'maybe'"):
        AppConfig.from_env({"FEEDBACK_BROWSING": "maybe"})


@pytest.mark.parametrize(
    "name", ["MAX_ITEMS", "MAX_UPLOAD_MB", "MAX_TEXT_CHARS", "PORT", "GRADIO_SERVER_PORT", "FEEDBACK_PUSH_MINUTES"]
)
@pytest.mark.parametrize("value", ["many", "0", "-3", "nan", "inf"])
def test_config_refuses_a_setting_that_is_not_a_positive_number(name: str, value: str) -> None:
    shown = "PORT" if name == "GRADIO_SERVER_PORT" else name  # the one setting, by either of its names
    with pytest.raises(UserError, match=rf"{shown}='{value}' must be (a whole number|a number) above 0"):
        AppConfig.from_env({name: value})


def test_an_upload_limit_too_large_to_serve_is_refused_at_start() -> None:
    with pytest.raises(UserError, match=r"MAX_UPLOAD_MB='1e308' is over the most this app takes, 1024"):
        AppConfig.from_env({"MAX_UPLOAD_MB": "1e308"})  # it passed, then ended the start in an OverflowError
    assert AppConfig.from_env({"MAX_UPLOAD_MB": "1024"}).limits.max_upload_mb == 1024


def test_the_mirror_is_off_unless_a_dataset_repo_is_set() -> None:
    assert AppConfig.from_env({}).feedback_repo == ""
    config = AppConfig.from_env({"FEEDBACK_REPO": REPO_ID, "FEEDBACK_PUSH_MINUTES": "2.5"})
    assert (config.feedback_repo, config.feedback_push_minutes) == (REPO_ID, 2.5)
    with pytest.raises(UserError, match="FEEDBACK_REPO='not a repo': give the dataset repo as OWNER/NAME"):
        AppConfig.from_env({"FEEDBACK_REPO": "not a repo"})
