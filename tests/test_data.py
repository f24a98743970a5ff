"""Click logs to training examples and batches: the pointwise and listwise data sets, the collator, in-batch masks."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from finetune.data import Collator, Example, ListwiseDataset, PointwiseDataset, in_batch_mask
from finetune.train import logits_of
from recsys.data.contract import CLICKED, GROUP, ITEM, QUERY
from recsys.model.architectures import BiEncoder, CrossEncoder, load_model
from recsys.model.artifact import BI
from recsys.model.relevance_model import RelevanceModel

MAX_LENGTH = 32


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> PreTrainedTokenizerBase:
    """The tiny BERT's tokenizer, loaded the way training loads it."""
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def click_log(groups: dict[str, list[tuple[str, int]]]) -> pd.DataFrame:
    """A click log from ``{group: [(item, clicked), ...]}``; each group's query is ``"q-" + group``."""
    rows = [(group, f"q-{group}", item, clicked) for group, shown in groups.items() for item, clicked in shown]
    return pd.DataFrame(rows, columns=[GROUP, QUERY, ITEM, CLICKED])


def examples_of(dataset: PointwiseDataset | ListwiseDataset) -> list[Example]:
    return [dataset[i] for i in range(len(dataset))]


def token_rows(ids: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
    """Each row's token ids without its padding."""
    return [row[keep.bool()].tolist() for row, keep in zip(ids, mask, strict=True)]


# Pointwise: one example per row, in a seeded order.

POINTWISE = pd.DataFrame(
    {
        QUERY: [f"query {n % 3}" for n in range(20)],
        ITEM: [f"item {n}" for n in range(20)],
        CLICKED: [n % 2 for n in range(20)],
    }
)


def test_pointwise_has_one_example_per_row() -> None:
    dataset = PointwiseDataset(POINTWISE, seed=0)
    assert len(dataset) == len(POINTWISE)
    rows = zip(POINTWISE[QUERY], POINTWISE[ITEM], POINTWISE[CLICKED], strict=True)
    expected = sorted((query, (item,), (float(clicked),)) for query, item, clicked in rows)
    assert sorted((e.query, e.items, e.labels) for e in examples_of(dataset)) == expected


def test_pointwise_order_is_seeded_and_changes_with_the_epoch() -> None:
    dataset = PointwiseDataset(POINTWISE, seed=3)
    epoch_0 = [e.items for e in examples_of(dataset)]
    assert epoch_0 == [e.items for e in examples_of(PointwiseDataset(POINTWISE, seed=3))]
    assert epoch_0 != [(item,) for item in POINTWISE[ITEM]], "the rows are not shuffled"
    assert epoch_0 != [e.items for e in examples_of(PointwiseDataset(POINTWISE, seed=4))]

    dataset.set_epoch(1)
    epoch_1 = [e.items for e in examples_of(dataset)]
    assert epoch_1 != epoch_0
    assert sorted(epoch_1) == sorted(epoch_0)
    dataset.set_epoch(0)
    assert [e.items for e in examples_of(dataset)] == epoch_0


def test_pointwise_without_shuffle_keeps_the_row_order() -> None:
    dataset = PointwiseDataset(POINTWISE, seed=3, shuffle=False)
    in_order = [(item,) for item in POINTWISE[ITEM]]
    assert [e.items for e in examples_of(dataset)] == in_order
    dataset.set_epoch(5)
    assert [e.items for e in examples_of(dataset)] == in_order


# Listwise: each click with non-clicks drawn from its own group.

# Four groups of two clicks and six non-clicks each.
LISTWISE = click_log(
    {f"u{g}": [(f"click {g}.{c}", 1) for c in range(2)] + [(f"other {g}.{n}", 0) for n in range(6)] for g in range(4)}
)


def negatives_by_click(dataset: ListwiseDataset) -> dict[str, tuple[str, ...]]:
    return {e.items[0]: e.items[1:] for e in examples_of(dataset)}


def test_listwise_examples_are_a_click_and_non_clicks_of_its_own_group() -> None:
    frame = click_log({"u1": [("a", 1), ("b", 0), ("c", 0)], "u2": [("d", 1), ("e", 0)]})
    examples = examples_of(ListwiseDataset(frame, negatives=2, seed=0))
    assert len(examples) == 2
    by_group = {e.group: e for e in examples}
    assert by_group["u1"].query == "q-u1"
    assert by_group["u1"].items[0] == "a" and sorted(by_group["u1"].items[1:]) == ["b", "c"]
    assert by_group["u2"].items == ("d", "e", "e")  # too few non-clicks: drawn with replacement
    assert by_group["u2"].labels == (1.0, 0.0, 0.0)


def test_listwise_negatives_come_from_the_own_group_without_replacement_when_it_has_enough() -> None:
    dataset = ListwiseDataset(LISTWISE, negatives=4, seed=0)
    clicks = LISTWISE[LISTWISE[CLICKED] == 1]
    assert len(dataset) == len(clicks)
    non_clicks = LISTWISE[LISTWISE[CLICKED] == 0].groupby(GROUP)[ITEM].agg(set)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        examples = examples_of(dataset)
        assert sorted(e.items[0] for e in examples) == sorted(clicks[ITEM]), "each click is one example"
        for example in examples:
            negatives = example.items[1:]
            assert example.query == f"q-{example.group}"
            assert example.items[0].startswith(f"click {example.group[1:]}.")
            assert set(negatives) <= non_clicks[example.group], f"{example} has another group's items"
            assert len(set(negatives)) == len(negatives) == 4, f"{example} repeats a negative"
            assert example.labels == (1.0, 0.0, 0.0, 0.0, 0.0)


def test_listwise_negatives_are_redrawn_each_epoch_and_reproducible_with_the_seed() -> None:
    dataset, twin = ListwiseDataset(LISTWISE, negatives=2, seed=0), ListwiseDataset(LISTWISE, negatives=2, seed=0)
    draws = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        twin.set_epoch(epoch)
        assert examples_of(dataset) == examples_of(twin)
        draws.append(negatives_by_click(dataset))
    assert draws[0] != draws[1] and draws[1] != draws[2]
    assert draws[0] != negatives_by_click(ListwiseDataset(LISTWISE, negatives=2, seed=1))
    dataset.set_epoch(0)
    assert negatives_by_click(dataset) == draws[0]


def test_listwise_order_changes_with_the_epoch() -> None:
    dataset = ListwiseDataset(LISTWISE, negatives=2, seed=0)
    epoch_0 = [e.items[0] for e in examples_of(dataset)]
    dataset.set_epoch(1)
    epoch_1 = [e.items[0] for e in examples_of(dataset)]
    assert epoch_0 != epoch_1 and sorted(epoch_0) == sorted(epoch_1)


def test_listwise_leaves_out_and_logs_clicks_in_groups_without_a_non_click(caplog: pytest.LogCaptureFixture) -> None:
    frame = click_log(
        {
            "u1": [("a", 1), ("b", 0)],
            "u2": [("c", 1), ("d", 1)],  # only clicks: no list to form
            "u3": [("e", 0), ("f", 0)],  # no click: nothing to pick
        }
    )
    with caplog.at_level(logging.WARNING, logger="finetune.data"):
        dataset = ListwiseDataset(frame, negatives=1, seed=0)
    assert examples_of(dataset) == [Example("q-u1", ("a", "b"), (1.0, 0.0), "u1")]
    assert "listwise: 2 clicks are in groups without a non-click" in caplog.text


def test_listwise_of_a_log_without_a_usable_group_is_an_error() -> None:
    frame = click_log({"u1": [("a", 1), ("b", 1)], "u2": [("c", 0)]})
    with pytest.raises(ValueError, match="listwise training needs groups with both a click and a non-click"):
        ListwiseDataset(frame, negatives=1)


# The collator: examples to a model class's batch, with labels.

EXAMPLES = [
    Example("microsoft windows", ("windows revenue", "tautog bite"), (1.0, 0.0), "u1"),
    Example("nba playoffs", ("lakers win", "windows revenue"), (0.0, 1.0), "u2"),
    Example("microsoft windows", ("bruce springsteen song", "tautog bite coming strong"), (1.0, 0.0), "u1"),
]
ITEMS = [item for e in EXAMPLES for item in e.items]


def test_bi_encoder_batch_tokenizes_each_distinct_query_once(tokenizer: PreTrainedTokenizerBase) -> None:
    batch = Collator(tokenizer, BiEncoder, MAX_LENGTH)(EXAMPLES)
    assert set(batch) == {
        "query_input_ids", "query_attention_mask", "item_input_ids", "item_attention_mask", "query_index", "labels"
    }  # fmt: skip
    queries = token_rows(batch["query_input_ids"], batch["query_attention_mask"])
    assert queries == [tokenizer("microsoft windows")["input_ids"], tokenizer("nba playoffs")["input_ids"]]
    assert batch["query_index"].tolist() == [0, 0, 1, 1, 0, 0]  # every item's row in the query batch
    items = token_rows(batch["item_input_ids"], batch["item_attention_mask"])
    assert items == [tokenizer(item)["input_ids"] for item in ITEMS]
    assert batch["labels"].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_cross_encoder_batch_has_one_pair_row_per_item(tokenizer: PreTrainedTokenizerBase) -> None:
    batch = Collator(tokenizer, CrossEncoder, MAX_LENGTH)(EXAMPLES)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    pairs = [(e.query, item) for e in EXAMPLES for item in e.items]
    rows = token_rows(batch["input_ids"], batch["attention_mask"])
    assert rows == [tokenizer(query, item)["input_ids"] for query, item in pairs]
    assert batch["labels"].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(("model_class", "ids"), [(BiEncoder, "query_input_ids"), (CrossEncoder, "input_ids")])
def test_the_collator_truncates_to_max_length(
    tokenizer: PreTrainedTokenizerBase, model_class: type[RelevanceModel], ids: str
) -> None:
    long = Example(" ".join(["microsoft windows"] * 20), ("windows revenue",), (1.0,))
    assert Collator(tokenizer, model_class, 8)([long])[ids].shape == (1, 8)


@pytest.mark.parametrize("model_class", [BiEncoder, CrossEncoder])
def test_the_in_batch_mask_is_in_the_batch_only_when_asked(
    tokenizer: PreTrainedTokenizerBase, model_class: type[RelevanceModel]
) -> None:
    assert "in_batch_mask" not in Collator(tokenizer, model_class, MAX_LENGTH)(EXAMPLES)
    batch = Collator(tokenizer, model_class, MAX_LENGTH, in_batch=True)(EXAMPLES)
    assert torch.equal(batch["in_batch_mask"], in_batch_mask(EXAMPLES, ITEMS))


# In-batch negatives.


def test_in_batch_mask_keeps_other_groups_items_and_masks_the_own_groups_and_copies_of_the_click() -> None:
    examples = [
        Example("q1", ("a", "x"), (1.0, 0.0), "u1"),
        Example("q1b", ("b", "y"), (1.0, 0.0), "u1"),  # the same user: its click is no negative for u1
        Example("q2", ("c", "a"), (1.0, 0.0), "u2"),  # shows u1's click "a" as a non-click
    ]
    items = [item for e in examples for item in e.items]
    mask = in_batch_mask(examples, items)
    assert mask.shape == (3, 6)
    assert mask[0].tolist() == [True, True, False, False, True, False]  # own list; u2's "c" but not u2's "a"
    assert mask[1].tolist() == [False, False, True, True, True, True]
    assert mask[2].tolist() == [True, True, True, True, True, True]


def test_in_batch_mask_of_one_group_is_each_examples_own_list() -> None:
    examples = [Example(f"q{n}", (f"click {n}", f"other {n}"), (1.0, 0.0), "u1") for n in range(3)]
    mask = in_batch_mask(examples, [item for e in examples for item in e.items])
    assert torch.equal(mask, torch.block_diag(*[torch.ones(1, 2, dtype=torch.bool)] * 3))


def test_in_batch_mask_of_distinct_groups_and_texts_keeps_every_item() -> None:
    examples = [Example(f"q{n}", (f"click {n}", f"other {n}"), (1.0, 0.0), f"u{n}") for n in range(3)]
    assert in_batch_mask(examples, [item for e in examples for item in e.items]).all()


def test_in_batch_logits_are_the_per_item_logits_for_each_examples_own_list(tiny_model_dir: Path) -> None:
    model, tokenizer = load_model(BI, str(tiny_model_dir))
    model.eval()
    examples = [
        Example("microsoft windows", ("windows revenue", "tautog bite"), (1.0, 0.0), "u1"),
        Example("nba playoffs", ("lakers win", "windows revenue"), (1.0, 0.0), "u2"),
    ]
    with torch.no_grad():
        own = logits_of(model, Collator(tokenizer, type(model), MAX_LENGTH)(examples))
        every = logits_of(model, Collator(tokenizer, type(model), MAX_LENGTH, in_batch=True)(examples))
    assert every.shape == (2, 4)
    # Row n, columns n * 2 + j: example n's query against its own list, as the per-item logits.
    torch.testing.assert_close(every[0, :2], own[:2])
    torch.testing.assert_close(every[1, 2:], own[2:])
    # u2's "windows revenue" copies u1's click: masked for u1; u2's click stands against u1's items.
    assert every[0, 3] == -torch.inf and torch.isfinite(every[1, :2]).all()


# Weights in the loss (--position-weights ips): one per row of the log, carried by each example into the batch.


def test_pointwise_examples_carry_their_rows_weights() -> None:
    dataset = PointwiseDataset(POINTWISE, seed=0, weights=[float(n + 1) for n in range(20)])
    assert {e.items[0]: e.weight for e in examples_of(dataset)} == {f"item {n}": float(n + 1) for n in range(20)}
    assert {e.weight for e in examples_of(PointwiseDataset(POINTWISE, seed=0))} == {1.0}


def test_a_listwise_example_weighs_what_its_clicks_row_does() -> None:
    frame = click_log({"a": [("a1", 1), ("a2", 0), ("a3", 1)], "b": [("b1", 0), ("b2", 1)]})
    weights = [3.0, 99.0, 5.0, 99.0, 7.0]  # the non-clicks' weights are never a list's
    dataset = ListwiseDataset(frame, negatives=1, seed=0, weights=weights)
    assert {e.items[0]: e.weight for e in examples_of(dataset)} == {"a1": 3.0, "a3": 5.0, "b2": 7.0}
    dataset.set_epoch(1)  # a new order and new negatives keep each click's weight
    assert {e.items[0]: e.weight for e in examples_of(dataset)} == {"a1": 3.0, "a3": 5.0, "b2": 7.0}


def test_weights_must_be_one_per_row() -> None:
    with pytest.raises(ValueError, match="3 weights for 20 rows"):
        PointwiseDataset(POINTWISE, weights=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("model_class", [BiEncoder, CrossEncoder])
def test_the_collator_adds_the_examples_weights_only_when_asked(
    tokenizer: PreTrainedTokenizerBase, model_class: type[RelevanceModel]
) -> None:
    examples = [Example("q1", ("a", "x"), (1.0, 0.0), "u1", weight=2.5), Example("q2", ("b", "y"), (1.0, 0.0), "u2")]
    assert "weights" not in Collator(tokenizer, model_class, MAX_LENGTH)(examples)
    batch = Collator(tokenizer, model_class, MAX_LENGTH, weighted=True)(examples)
    assert batch["weights"].tolist() == [2.5, 1.0]  # one per example (list), not per item
