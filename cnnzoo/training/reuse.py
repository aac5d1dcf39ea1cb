"""No second evaluation of a split with the same weights: test metrics from the last validation.

Why this module exists: the Sign-MNIST recipes validate on the test file (``data.validation=test``,
as the ASL course does), so after ``fit`` a test pass would evaluate the same images with the same
weights that the last validation just evaluated.  When that validation saw the final weights and
the whole file, its metrics, confusion matrix and mistakes are the test stage's: they are logged
and drawn as ``test/*`` (PNGs included) and the test pass is skipped.  Otherwise (validation every
n epochs, a partial ``limit_val_batches``, a stop between validations, no ``PredictionReport``),
``None``: the caller runs ``trainer.test``.
"""

from __future__ import annotations

from typing import Any

from cnnzoo.training.callbacks import PredictionReport


def test_from_last_validation(trainer, module, datamodule) -> dict[str, Any] | None:
    """``test/<name>`` metrics taken from the last validation, its figures reported as test ones;
    None when a test pass is needed."""
    report = next((c for c in trainer.callbacks if isinstance(c, PredictionReport)), None)
    val = module.epoch_results.get("val")
    if (getattr(datamodule, "validation", None) != "test" or report is None or val is None
            or report.validated_step != trainer.global_step):
        return None
    if int(val["confusion_matrix"].sum()) != len(datamodule.splits["test"][1]):
        return None  # a partial validation (limit_val_batches)
    metrics = {f"test/{name}": value for name, value in val.items() if name != "confusion_matrix"}
    report.report_validation_as_test(trainer, module)
    module.epoch_results["test"] = val
    if trainer.logger is not None and trainer.is_global_zero:
        trainer.logger.log_metrics({k: float(v) for k, v in metrics.items()}, step=trainer.global_step)
    return metrics
