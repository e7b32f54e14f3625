"""A sim with a learning curve (standard library only): "trains" for --epochs epochs and
reports its validation loss after each one, so an early-stopping search can stop it.

The curve of a configuration is synthetic but depends on it the way real ones do: the
final loss is a smooth function of the learning rate (best near 0.03), the width (wider
is better, with diminishing returns) and the dropout (some helps); the loss falls from
1.5 towards that final value at a speed set by the learning rate, with a little noise
seeded by the configuration, so a run that is bad after a few epochs stays bad::

    final = 0.1 + 0.5 * log10(lr / 0.03)**2 + 8 / width + 0.6 * (dropout - 0.2)**2
    loss(epoch) = final + (1.5 - final) * exp(-epoch * lr**0.5 * 2)   (+ noise)

Each epoch takes --epoch_seconds (default 0.1). It reports with ``hpsearch.report`` and
stops cleanly when ``report.should_stop()`` says the search pruned it; at the end it writes
``performance_overview.txt`` (``val_loss``, ``epoch``, ``finished 1``).
"""

import argparse
import math
import os
import random
import time

from hpsearch import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--epoch_seconds", type=float, default=0.1)
    args = parser.parse_args()

    final = (0.1 + 0.5 * math.log10(args.lr / 0.03) ** 2 + 8 / args.width
             + 0.6 * (args.dropout - 0.2) ** 2)
    speed = 2 * math.sqrt(args.lr)
    rng = random.Random(f"{args.lr}-{args.width}-{args.dropout}")
    loss = 1.5
    epoch = 0
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.epoch_seconds)
        loss = final + (1.5 - final) * math.exp(-epoch * speed) + rng.gauss(0, 0.005)
        report(step=epoch, val_loss=loss)
        if report.should_stop():
            break  # pruned: a real sim would save a checkpoint here
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"val_loss {loss}\nepoch {epoch}\nfinished 1\n")


if __name__ == "__main__":
    main()
