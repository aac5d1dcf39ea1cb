"""cnnzoo's model side: Keras-equivalent layers, the notebook architectures, summaries.

Why this package exists: every network cnnzoo trains is a Keras ``Sequential`` layer list
(:mod:`.layers` specs) built into a PyTorch module that returns logits by one builder
(:mod:`.sequential`); the notebook architectures live, by name, in :mod:`.zoo` /
:mod:`.registry`; :mod:`.summary_table` prints them as Keras' ``model.summary()`` does.

    >>> from cnnzoo.models import create, summary
    >>> net = create("asl_cnn")                     # (N, 1, 28, 28) -> (N, 24) logits
    >>> summary(net).total
    264049
"""

from cnnzoo.models import zoo as _zoo  # noqa: F401  (registers the notebook architectures)
from cnnzoo.models.layers import (
    Activation,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LayerSpec,
    MaxPool2D,
    MaxPooling2D,
    layer_configs,
    specs_from_configs,
)
from cnnzoo.models.registry import (
    ModelInfo,
    create,
    default_input_shape,
    default_num_classes,
    list_models,
    model_info,
    register,
    specs,
)
from cnnzoo.models.sequential import KerasSequential, build_sequential
from cnnzoo.models.summary_table import ModelSummary, param_counts, summary

__all__ = [
    "Activation",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "KerasSequential",
    "LayerSpec",
    "MaxPool2D",
    "MaxPooling2D",
    "ModelInfo",
    "ModelSummary",
    "build_sequential",
    "layer_configs",
    "create",
    "default_input_shape",
    "default_num_classes",
    "list_models",
    "model_info",
    "param_counts",
    "register",
    "specs",
    "specs_from_configs",
    "summary",
]
