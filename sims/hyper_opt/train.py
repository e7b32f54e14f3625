"""A toy trainer that takes one config file, as hyper_opt's models do (stdlib + PyYAML).

Fits ``y = 3 x + 1`` by SGD for ``trainer.epochs`` epochs with ``optimizer.learning_rate``;
``model.dropout`` drops gradient terms, ``model.activation: tanh`` squashes the inputs.
Writes ``performance_overview.txt`` into ``--out_dir``::

    val_loss 0.0123
    loss 0.0101
    finished 1
"""

import argparse
import math
import os
import random

import yaml

from hpsearch import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the model config (YAML)")
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        conf = yaml.safe_load(f)
    lr = float(conf["optimizer"]["learning_rate"])
    dropout = float(conf["model"]["dropout"])
    squash = math.tanh if conf["model"]["activation"] == "tanh" else (lambda v: v)
    rng = random.Random(conf["trainer"]["seed"])
    xs = [rng.uniform(-1, 1) for _ in range(64)]
    data = [(squash(x), 3 * x + 1 + rng.gauss(0, 0.1)) for x in xs]
    train, val = data[:48], data[48:]
    w = b = 0.0

    def mse(points: list) -> float:
        return sum((w * x + b - y) ** 2 for x, y in points) / len(points)

    for epoch in range(int(conf["trainer"]["epochs"])):
        for x, y in train:
            if rng.random() < dropout:
                continue
            err = w * x + b - y
            w -= lr * 2 * err * x
            b -= lr * 2 * err
        if not math.isfinite(w + b) or abs(w) + abs(b) > 1e6:
            w = b = 1e3  # diverged: a large, finite loss
            break
        report(step=epoch, val_loss=mse(val), loss=mse(train))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"val_loss {mse(val)!r}\nloss {mse(train)!r}\nfinished 1\n")


if __name__ == "__main__":
    main()
