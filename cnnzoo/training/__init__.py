"""How a network is trained: the LightningModule, its metrics, Keras' optimizers, callbacks, faults.

Why this package exists: everything here needs Lightning, and nothing outside training does, so
the entry points that only read a model (``summary``, ``export``) need not import it.  Modules:
``module`` (``ClassifierModule``), ``metrics`` (``ClassCounts``: the one metrics path),
``optim`` (Keras' optimizers and LR schedules), ``callbacks`` + ``figures`` (what a run shows),
``faults`` (signals, non-finite losses, atomic checkpoints), ``checkpoints`` (reading them back),
``sweep`` (the multirun summary), ``precision`` (the ``precision`` key: fp32, bf16, auto),
``reuse`` (test metrics from the last validation when it evaluated the test file).
"""
