"""``ClassifierModule``'s epoch metrics stay independent of each other."""

from __future__ import annotations

import torch

from cnnzoo.training.module import ClassifierModule


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


def test_checkpoints_from_before_class_counts_still_load(tmp_path):
    """Earlier cnnzoo saved torchmetrics training states (``train_metrics.*``, ``train_loss.*``)."""
    from torchmetrics import MeanMetric

    from cnnzoo.training.checkpoints import load_classifier
    from cnnzoo.training.module import _metrics
    from tests.conftest import save_checkpoint

    module = ClassifierModule("mnist_mlp", 24, [1, 28, 28])
    path = save_checkpoint(module, tmp_path / "old.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    old_metrics, old_loss = _metrics(24, "train/"), MeanMetric()
    old_metrics.persistent(True)
    old_loss.persistent(True)
    state = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("train_counts.")}
    state.update(old_metrics.state_dict(prefix="train_metrics."))
    state.update(old_loss.state_dict(prefix="train_loss."))
    assert any(k.startswith("train_metrics.") for k in state) and "train_loss.mean_value" in state
    checkpoint["state_dict"] = state
    torch.save(checkpoint, path)

    restored = load_classifier(path)
    assert torch.equal(restored.net.state_dict()["dense.weight"], module.net.state_dict()["dense.weight"])
    assert restored.train_counts.confusion.sum() == 0
