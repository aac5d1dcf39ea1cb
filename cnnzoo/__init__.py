"""cnnzoo: the classic Keras teaching CNNs, rebuilt on PyTorch Lightning + Hydra.

The package is split by job: ``cnnzoo.data`` (readers and DataModules), ``cnnzoo.models``
(Keras-equivalent layers, the architecture registry, summaries), ``cnnzoo.training.module`` (the
LightningModule that trains any registered network) and thin Hydra entry points
(``python -m cnnzoo.train`` / ``cnnzoo.summary``).
"""

__version__ = "0.1.0"
