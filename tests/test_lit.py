"""``ClassifierModule``'s epoch metrics stay independent of each other."""

from __future__ import annotations

import torch

from cnnzoo.lit import ClassifierModule


def test_top5_is_not_merged_into_accuracy_when_the_first_batch_is_all_correct():
    metrics = ClassifierModule("mnist_mlp", 24, [1, 28, 28]).test_metrics
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.nn.functional.one_hot(labels, 24).float()
    metrics.update(logits, labels)  # all correct: accuracy and top-5 states are equal here
    second_best = logits.clone()
    second_best[:, 23] = 2.0  # class 23 first, the true class second: wrong, but within the top 5
    metrics.update(second_best, labels)
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values["test/acc"] == 0.5 and values["test/top5"] == 1.0
