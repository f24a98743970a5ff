"""Reading the model's config and the operator's settings about its weights (recsys.model.config_checks)."""

from __future__ import annotations

from recsys.defaults import Env
from recsys.model.config_checks import longest_input, pickle_allowed


def test_the_pickle_setting_reads_one_and_zero() -> None:
    assert pickle_allowed({}) is False and pickle_allowed({Env.ALLOW_PICKLE: "0"}) is False
    assert pickle_allowed({Env.ALLOW_PICKLE: "1"}) is True and pickle_allowed({Env.ALLOW_PICKLE: " True "}) is True


def test_roberta_positions_start_after_the_padding_id() -> None:
    assert longest_input({"model_type": "bert", "max_position_embeddings": 512, "pad_token_id": 0}) == 512
    assert longest_input({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}) == 512
