"""Training examples: listwise lists, in-batch negatives and the losses over them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from finetune.data import Example, ListwiseDataset, in_batch_mask
from finetune.train import compute_loss


def test_listwise_examples_are_a_click_and_non_clicks_of_its_own_group() -> None:
    frame = pd.DataFrame(
        {
            "group": ["u1", "u1", "u1", "u2", "u2"],
            "query": ["q1"] * 3 + ["q2"] * 2,
            "item": ["a", "b", "c", "d", "e"],
            "clicked": [1, 0, 0, 1, 0],
        }
    )
    examples = [ListwiseDataset(frame, negatives=2, seed=0)[i] for i in range(2)]
    by_group = {e.group: e for e in examples}
    assert by_group["u1"].items[0] == "a" and set(by_group["u1"].items[1:]) == {"b", "c"}
    assert by_group["u2"].items == ("d", "e", "e")  # too few non-clicks: drawn with replacement
    assert by_group["u2"].labels == (1.0, 0.0, 0.0)


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


def test_listwise_loss_targets_each_lists_click() -> None:
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    right = torch.tensor([5.0, 0.0, 0.0, 5.0, 0.0, 0.0])
    wrong = torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0, 5.0])
    assert compute_loss(right, labels, "listwise", 3) < 0.05 < compute_loss(wrong, labels, "listwise", 3)


def test_in_batch_loss_targets_each_examples_click_among_all_items() -> None:
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    # Example 0's click is item 0, example 1's is item 2; -inf entries are masked out.
    right = torch.tensor([[5.0, 0.0, 0.0, -torch.inf], [0.0, 0.0, 5.0, 0.0]])
    wrong = torch.tensor([[0.0, 0.0, 5.0, -torch.inf], [5.0, 0.0, 0.0, 0.0]])
    assert compute_loss(right, labels, "listwise", 2) == pytest.approx(
        -torch.log_softmax(right, 1)[[0, 1], [0, 2]].mean().item()
    )
    assert compute_loss(right, labels, "listwise", 2) < 0.05 < compute_loss(wrong, labels, "listwise", 2)


def test_in_batch_logits_are_the_per_item_logits_for_each_examples_own_list(tiny_model_dir) -> None:
    from finetune.data import Collator
    from finetune.train import forward
    from recsys.models import BI, load_encoder

    model, tokenizer = load_encoder(BI, str(tiny_model_dir))
    model.eval()
    examples = [
        Example("microsoft windows", ("windows revenue", "tautog bite"), (1.0, 0.0), "u1"),
        Example("nba playoffs", ("lakers win", "windows revenue"), (1.0, 0.0), "u2"),
    ]
    with torch.no_grad():
        own = forward(model, Collator(tokenizer, BI, 32)(examples))
        every = forward(model, Collator(tokenizer, BI, 32, in_batch=True)(examples))
    assert every.shape == (2, 4)
    # Row n, columns n * 2 + j: example n's query against its own list, as the per-item logits.
    torch.testing.assert_close(every[0, :2], own[:2])
    torch.testing.assert_close(every[1, 2:], own[2:])
    # u2's "windows revenue" copies u1's click: masked for u1; u2's click stands against u1's items.
    assert every[0, 3] == -torch.inf and torch.isfinite(every[1, :2]).all()
