"""Optuna's samplers as a strategy: the catalog, the strategy, the space and the sampler process."""
