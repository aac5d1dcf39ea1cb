"""``ClassCounts``: the one metrics path, for training, validation and test alike.

Why this module exists: accuracy, macro F1, top-5 and the mean loss of an epoch, and the confusion
matrix the figures draw, all follow from one confusion matrix.  Each step adds
``bincount(target * C + predicted)``, one top-5 count and the batch's summed loss (a few small
kernels, no host sync); everything else is derived once per epoch.  It is a torchmetrics
``Metric``, so DDP sums it across ranks and a checkpoint carries the training counts through a
mid-epoch resume.  Names are Keras' (``loss``, ``accuracy``, ``f1``, ``top5``);
``tests/training/test_metrics.py`` checks the values against torchmetrics' own classes.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

TOP_K = 5


class ClassCounts(Metric):
    """Confusion matrix (rows: target, columns: predicted), top-5 hits and summed loss of the batches seen."""

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("confusion", torch.zeros(num_classes * num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("top_k_hits", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("loss_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor, mean_loss: torch.Tensor | None = None) -> None:
        """Counts of one batch; ``mean_loss``, the batch's mean loss, is summed weighted by its size."""
        c = self.num_classes  # in place (add_, not +=): no nn.Module attribute assignment per step
        if mean_loss is not None:
            self.loss_sum.add_(mean_loss.detach(), alpha=len(labels))  # summed in float64
        self.confusion.add_(torch.bincount(labels * c + logits.argmax(dim=1), minlength=c * c))
        top = logits.topk(min(TOP_K, c), dim=1).indices
        self.top_k_hits.add_((top == labels[:, None]).any(dim=1).sum())

    def compute(self) -> dict[str, torch.Tensor]:
        """``accuracy`` (micro), ``f1`` (macro over the classes that occur as target or prediction,
        as torchmetrics averages), ``top5`` (every class counts with 5 classes or fewer, as in
        Keras' top-k accuracy), ``loss`` (mean per sample) and the ``confusion_matrix`` itself."""
        matrix = self.confusion.view(self.num_classes, self.num_classes)
        cm = matrix.double()
        total = cm.sum().clamp(min=1)
        hits = cm.diagonal()
        support = cm.sum(dim=0) + cm.sum(dim=1)  # predicted + actual: F1's denominator is 2TP + FP + FN
        f1 = 2 * hits / support.clamp(min=1)
        values = {"accuracy": hits.sum() / total, "f1": f1[support > 0].mean() if (support > 0).any() else f1.sum(),
                  "top5": self.top_k_hits / total, "loss": self.loss_sum / total}
        return {**{name: value.float() for name, value in values.items()}, "confusion_matrix": matrix.clone()}
