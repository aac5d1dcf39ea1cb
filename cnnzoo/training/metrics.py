"""``ClassCounts``: the training metrics of an epoch from one update per step.

Per step, torchmetrics' accuracy, macro F1 and top-5 each validate and reformat their inputs and
update their own state: about 0.8 ms on this CPU (an earlier ``scripts/bench.py --micro``; see
docs/performance.md) and a few dozen small kernels on a GPU, for numbers only read once per epoch.  A confusion matrix holds
all three: each step adds ``bincount(target * C + predicted)``, one top-5 count and the batch's
summed loss, and accuracy, macro F1, top-5 and the mean loss are derived at the epoch's end.  It is
a torchmetrics ``Metric``, so DDP sums it across ranks and checkpoints carry it through a mid-epoch
resume.  Validation and test keep torchmetrics' own classes; ``tests/test_metrics.py`` checks both
give the same numbers.
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
        c = self.num_classes
        if mean_loss is not None:
            self.loss_sum += mean_loss.detach().double() * len(labels)
        self.confusion += torch.bincount(labels * c + logits.argmax(dim=1), minlength=c * c)
        if c > TOP_K:
            self.top_k_hits += (logits.topk(TOP_K, dim=1).indices == labels[:, None]).any(dim=1).sum()

    def compute(self) -> dict[str, torch.Tensor]:
        """``acc`` (micro), ``f1`` (macro over the classes that occur as target or prediction, as
        torchmetrics averages), ``loss`` (mean per sample) and, with more than 5 classes, ``top5``."""
        cm = self.confusion.view(self.num_classes, self.num_classes).double()
        total = cm.sum().clamp(min=1)
        hits = cm.diagonal()
        support = cm.sum(dim=0) + cm.sum(dim=1)  # predicted + actual: F1's denominator is 2TP + FP + FN
        f1 = 2 * hits / support.clamp(min=1)
        values = {"acc": hits.sum() / total, "f1": f1[support > 0].mean() if (support > 0).any() else f1.sum(),
                  "loss": self.loss_sum / total}
        if self.num_classes > TOP_K:
            values["top5"] = self.top_k_hits / total
        return {name: value.float() for name, value in values.items()}
