"""``python -m cnnzoo.predict ckpt_path=<ckpt> inputs=[a.png] | index=[0,1]``: class probabilities.

Keras' ``model.predict`` for a trained checkpoint: each image (a user's PNG/JPEG, converted to what
the network takes, or a test-set image by index) gets its top-k classes with probabilities, printed
as a table and written to ``predictions.json`` in the Hydra run dir.  Preprocessing is the one the
model was trained with (the checkpoint's data config), so predictions match ``evaluate``.
"""

from __future__ import annotations

from cnnzoo.startup import begin

begin(__name__)  # before torch: --help answered without it; threads and OpenMP wait policy chosen

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hydra  # noqa: E402
import torch  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from cnnzoo.atomic import write_json_atomic  # noqa: E402
from cnnzoo.cli import also_callable, apply_threads, run, user_errors  # noqa: E402
from cnnzoo.data.config import DataSpec, checkpoint_data  # noqa: E402
from cnnzoo.data.images import load_image  # noqa: E402
from cnnzoo.errors import ConfigError, ModelError  # noqa: E402
from cnnzoo.models.checkpoint import CheckpointNetwork, load_network  # noqa: E402

LISTED = {"inputs": (str, "an image path or a list of them, like inputs=[a.png,b.png]"),
          "index": (int, "a test-set index or a list of them, like index=[0,1]")}


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """Top-k predictions for ``cfg.inputs`` then ``cfg.index``; also written to ``predictions.json``."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    apply_threads(cfg)
    inputs, indices = _listed(cfg, "inputs"), _listed(cfg, "index")
    if not inputs and not indices:
        raise ConfigError("nothing to predict: give inputs=[a.png,b.png] or index=[0,1,...]")
    module = load_network(cfg.ckpt_path)  # torch.load and cnnzoo.models: no Lightning
    top_k = _check_top_k(cfg.get("top_k", 3), module.hparams["num_classes"])
    datamodule = checkpoint_data(module.hparams)
    records: list[dict[str, Any]] = []
    batches: list[torch.Tensor] = []  # files are already at the network's size, test images not
    if inputs:
        loaded = [load_image(path, tuple(module.hparams["input_shape"])) for path in inputs]
        batches.append(torch.stack([image for image, _ in loaded]))
        records += [{"input": str(path), "notes": notes} for path, (_, notes) in zip(inputs, loaded)]
    if indices:
        images, labels = _test_images(datamodule, indices)
        batches.append(images)
        records += [{"input": f"{datamodule.name} test #{i}", "expected": module.class_names[int(y)], "notes": []}
                    for i, y in zip(indices, labels)]
    probabilities = torch.cat([_probabilities(module, datamodule, batch) for batch in batches])
    _check_finite(probabilities, module, records, cfg.ckpt_path)
    top = probabilities.topk(top_k, dim=1)
    for record, values, classes in zip(records, top.values.tolist(), top.indices.tolist()):
        record["top_k"] = [{"class": module.class_names[c], "index": c, "probability": round(p, 6)}
                           for c, p in zip(classes, values)]
    write_json_atomic(run_dir / "predictions.json", {"ckpt_path": str(cfg.ckpt_path), "predictions": records})
    print(format_table(records))
    print(f"Written: {run_dir / 'predictions.json'}")
    return records


def _listed(cfg: DictConfig, key: str) -> list:
    """``inputs``/``index``: one value (a path, an index) or a list of them."""
    kind, expected = LISTED[key]
    value = cfg.get(key)
    values = [] if value is None else list(value) if OmegaConf.is_list(value) else [value]
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        shown = OmegaConf.to_object(value) if OmegaConf.is_list(value) else value
        raise ConfigError(f"{key}={shown!r}: expected {expected}")
    return values


def _check_top_k(value: object, num_classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"top_k={value!r}: expected a positive integer")
    return min(value, num_classes)


def _test_images(datamodule: DataSpec, indices: list) -> tuple[torch.Tensor, torch.Tensor]:
    datamodule.setup("test")
    images, labels = datamodule.splits["test"]
    for i in indices:
        if not 0 <= i < len(images):  # an int: _listed
            raise ConfigError(f"index={i!r}: the {datamodule.name} test set has images 0..{len(images) - 1}")
    return images[indices], labels[indices]


@torch.no_grad()
def _probabilities(module: CheckpointNetwork, datamodule: DataSpec, images: torch.Tensor) -> torch.Tensor:
    return module.probabilities(datamodule.preprocess(images))


def _check_finite(probabilities: torch.Tensor, module: CheckpointNetwork, records: list, path: str) -> None:
    """``predictions.json`` must stay JSON, which has no NaN: non-finite probabilities are refused,
    naming the weights that cause them (a checkpoint of a diverged run) when there are any."""
    bad = (~torch.isfinite(probabilities)).any(dim=1)
    if not bad.any():
        return
    weights = [name for name, w in module.net.state_dict().items() if w.is_floating_point() and not w.isfinite().all()]
    if weights:
        more = f" and {len(weights) - 1} more" if len(weights) > 1 else ""
        raise ModelError(f"ckpt_path={path}: its weights are not finite ({weights[0]}{more} hold NaN or inf), "
                         "so it predicts NaN; use a checkpoint written before the training diverged")
    raise ModelError(f"ckpt_path={path}: its probabilities for {records[int(bad.nonzero()[0])]['input']} "
                     "are not finite (NaN or inf)")


def format_table(records: list[dict[str, Any]]) -> str:
    """One row per image: input, expected label (if known), top-k ``class (probability)``, notes."""
    rows = [["input", "expected", "top-k (probability)", "notes"]]
    for record in records:
        top = ", ".join(f"{p['class']} ({p['probability']:.3f})" for p in record["top_k"])
        rows.append([record["input"], record.get("expected", ""), top, "; ".join(record["notes"])])
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    with user_errors():
        predict(cfg)


if __name__ == "__main__":
    run(main)  # cnnzoo.cli: an unknown key gets one line naming the closest one
else:
    also_callable(__name__, "predict")  # cnnzoo.predict(...) is the Python API's predict
