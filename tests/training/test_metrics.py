"""``ClassCounts`` (every stage's metrics from one confusion-matrix update per step) gives the
numbers torchmetrics' own classes give: accuracy, macro F1, top-5 and the confusion matrix."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from cnnzoo.training.metrics import ClassCounts


@pytest.mark.parametrize(("num_classes", "absent"), [(10, ()), (24, (3, 17)), (4, ())])
def test_counts_match_torchmetrics(num_classes: int, absent: tuple[int, ...]):
    generator = torch.Generator().manual_seed(num_classes)
    counts = ClassCounts(num_classes)
    reference = {
        "accuracy": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        "confusion_matrix": MulticlassConfusionMatrix(num_classes),
    }
    for _ in range(5):
        labels = torch.randint(num_classes, (33,), generator=generator)
        logits = torch.randn(33, num_classes, generator=generator) + 2 * torch.nn.functional.one_hot(labels, num_classes)
        keep = ~torch.isin(labels, torch.tensor(absent, dtype=torch.long))
        logits, labels = logits[keep], labels[keep]
        logits[:, list(absent)] = -10.0  # never predicted either: left out of the macro average
        counts.update(logits, labels)
        for metric in reference.values():
            metric.update(logits, labels)
    values = counts.compute()
    assert sorted(values) == sorted([*reference, "loss"])
    assert torch.equal(values.pop("confusion_matrix"), reference.pop("confusion_matrix").compute())
    for name, metric in reference.items():
        assert values[name].item() == pytest.approx(metric.compute().item(), abs=1e-6), name


def test_counts_reset_and_state_round_trip():
    counts = ClassCounts(10)
    counts.update(torch.eye(10), torch.arange(10))
    copy = ClassCounts(10)
    copy.persistent(True)
    counts.persistent(True)
    copy.load_state_dict(counts.state_dict())
    assert copy.compute()["accuracy"].item() == 1.0 and copy.confusion.sum().item() == 10
    counts.reset()
    assert counts.confusion.sum().item() == 0 and counts.top_k_hits.item() == 0


def test_counts_average_the_loss_per_sample():
    counts = ClassCounts(10)
    counts.update(torch.eye(10)[:4], torch.arange(4), torch.tensor(2.0))
    counts.update(torch.eye(10)[:2], torch.arange(2), torch.tensor(5.0))
    assert counts.compute()["loss"].item() == pytest.approx((4 * 2.0 + 2 * 5.0) / 6)
