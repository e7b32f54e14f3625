"""Tracking sinks: each ended run of a search logged to MLflow, TensorBoard or W&B."""
