"""Optuna's samplers by algorithm name, with no Optuna import: what a search may name.

:mod:`hpsearch.strategies.optuna.samplers` (the strategy, in the driver) and
:mod:`hpsearch.strategies.optuna.strategy` (the study, where Optuna is imported) read it.
"""

#: the algorithm -> its Optuna sampler class (in ``optuna.samplers``)
SAMPLERS = {"tpe": "TPESampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
            "nsga2": "NSGAIISampler"}
#: the constructor argument that says how many first trials are drawn without results
RESULT_FREE = {"tpe": "n_startup_trials", "gp": "n_startup_trials",
               "cmaes": "n_startup_trials", "nsga2": "population_size"}
