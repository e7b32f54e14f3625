"""The Optuna sweeper's config node, so that this example composes without the plugin.

Hydra composes ``hydra.sweeper`` on every run, also a single one, so an app whose config says
``override hydra/sweeper: optuna`` needs the hydra-optuna-sweeper plugin installed. Its
release on PyPI requires optuna < 3 and hpsearch a current optuna, so this example
registers the node itself (the keys the plugin's config has). An app of yours that has the
plugin installed needs none of this.
"""

from hydra.core.config_store import ConfigStore

ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node={
    "_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    "sampler": {"_target_": "optuna.samplers.TPESampler", "seed": None},
    "direction": "minimize", "study_name": None, "storage": None, "n_trials": 20,
    "n_jobs": 2, "search_space": None, "params": None, "custom_search_space": None})
