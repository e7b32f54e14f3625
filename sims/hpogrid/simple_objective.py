"""hpogrid's simple objective as a function objective: ``my_objective(config, reporter)``.

hpsearch calls it through ``python -m hpsearch.objective_runner`` with the trial's values in
``config`` (``height``, ``width``, and ``epochs`` from the project's ``model_config.param``);
each ``reporter(loss=...)`` is an intermediate report, the last one the run's result.
"""


def calculate_loss(height: float, width: float) -> float:
    return (height - 14) ** 2 - abs(width - 3)


def my_objective(config, reporter):
    height, width = config["height"], config["width"]
    if config.get("fail"):
        raise ValueError(f"asked to fail at height={height:.3g}")
    epochs = int(config["epochs"])
    for epoch in range(1, epochs + 1):
        # a "training" that approaches the final loss epoch by epoch
        reporter(loss=calculate_loss(height, width) * (1 + (epochs - epoch) / epochs))
