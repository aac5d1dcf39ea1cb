"""Hydra Sweeper plugin: Optuna search with the current Optuna (4.x) API.

Hydra finds it through the ``hydra_plugins`` namespace package (there is deliberately no
``hydra_plugins/__init__.py``).  ``optuna_sweeper`` registers the ``hydra/sweeper=optuna`` config and
stays import-light, because Hydra imports every plugin module on every run; ``_impl`` (skipped by
Hydra's plugin scan for its leading underscore) imports Optuna only when a sweep starts.

Why not the ``hydra-optuna-sweeper`` package: its latest release (1.3.0) still requires
``optuna>=2.10,<3`` and builds its search space from the Optuna 2 distribution classes that Optuna
has deprecated since 3.0, so it cannot be installed next to a current Optuna.
"""
