"""``keras_model=<file>`` in ``cnnzoo.evaluate`` and ``cnnzoo.train``: a Keras file is evaluated like
a checkpoint (same metrics, same figures) and fine-tuned into a self-contained checkpoint."""

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnzoo.errors import ConfigError  # noqa: E402
from cnnzoo.evaluate import evaluate  # noqa: E402
from cnnzoo.models import specs  # noqa: E402
from cnnzoo.train import train  # noqa: E402
from tests.conftest import compose_run, write_idx_dataset  # noqa: E402
from tests.interop.conftest import randomize  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture
def keras_file(keras_model, tmp_path: Path) -> tuple[Path, object]:
    kmodel = keras_model(specs("fashion_cnn", num_classes=10), (1, 28, 28))
    randomize(kmodel, seed=3)
    path = tmp_path / "fashion_cnn.h5"
    kmodel.save(path)
    return path, kmodel


def test_evaluate_a_keras_file_like_a_checkpoint(data_dir: Path, tmp_path: Path, keras_file):
    path, kmodel = keras_file
    result = evaluate(compose_run("evaluate", tmp_path / "run", f"keras_model={path}", "data=mnist"))
    images, labels = write_idx_dataset(tmp_path / "same", seed=1)["t10k"]  # the data_dir fixture's MNIST
    keras_predictions = kmodel.predict(images[..., None].astype("float32") / 255, verbose=0).argmax(axis=1)
    assert result["metrics"]["test"]["accuracy"] == pytest.approx(float(np.mean(keras_predictions == labels)))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["keras_model"] == str(path.resolve())
    assert (tmp_path / "run" / "confusion_matrix.png").is_file() and (tmp_path / "run" / "misclassified.png").is_file()


def test_fine_tune_a_keras_file_into_a_checkpoint_that_stands_alone(data_dir: Path, tmp_path: Path, keras_file):
    path, _ = keras_file
    result = train(compose_run("train", tmp_path / "run", f"keras_model={path}", "data=mnist", "trainer.max_epochs=1"))
    assert result["status"] == "completed" and result["epochs"] == 1
    path.unlink()  # the checkpoint records the architecture itself
    again = evaluate(compose_run("evaluate", tmp_path / "eval", f"ckpt_path={result['checkpoints']['last']}"))
    assert again["metrics"]["test"]["accuracy"] == pytest.approx(result["metrics"]["test"]["accuracy"])


def test_a_keras_file_needs_data_to_be_evaluated_on(tmp_path: Path, keras_file):
    with pytest.raises(ConfigError, match="choose the data to evaluate on"):
        evaluate(compose_run("evaluate", tmp_path / "run", f"keras_model={keras_file[0]}"))
