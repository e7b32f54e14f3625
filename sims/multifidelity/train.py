"""A multi-fidelity sim (standard library only): trains --epochs epochs, continuing from a
checkpoint when ``HPSEARCH_RESUME_FROM`` names the output directory of an earlier run.

Its quality rises with the budget and is deterministic per configuration (no noise)::

    final = 0.1 + 0.5 * log10(lr / 0.03)**2 + 8 / width + 0.6 * (dropout - 0.2)**2
    val_loss(epoch) = final + (1.5 - final) * exp(-epoch * (0.3 + sqrt(lr)))

so early ranks mostly hold, but a fast learner (large lr) looks better early than it
ends and a careful one may overtake it later.
It writes ``checkpoint.json`` (``{"epoch": e}``) into --out_dir after each epoch and, at
the end, ``performance_overview.txt``: ``val_loss``, ``epoch`` (epochs trained in all),
``trained`` (epochs this run trained itself), ``resumed_from`` (the epoch its checkpoint
had; 0 when it started over) and ``finished 1``. Each epoch takes --epoch_seconds (0).
"""

import argparse
import json
import math
import os
import time


def val_loss(lr: float, width: int, dropout: float, epoch: int) -> float:
    final = 0.1 + 0.5 * math.log10(lr / 0.03) ** 2 + 8 / width + 0.6 * (dropout - 0.2) ** 2
    return final + (1.5 - final) * math.exp(-epoch * (0.3 + math.sqrt(lr)))


def resumed_epoch() -> int:
    """The epoch of the checkpoint in $HPSEARCH_RESUME_FROM (0: none)."""
    source = os.environ.get("HPSEARCH_RESUME_FROM")
    if not source:
        return 0
    try:
        with open(os.path.join(source, "checkpoint.json")) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--epoch_seconds", type=float, default=0.0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    start = min(resumed_epoch(), args.epochs)
    for epoch in range(start + 1, args.epochs + 1):
        time.sleep(args.epoch_seconds)
        with open(os.path.join(args.out_dir, "checkpoint.json"), "w") as f:
            json.dump({"epoch": epoch}, f)
    loss = val_loss(args.lr, args.width, args.dropout, args.epochs)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"val_loss {loss}\nepoch {args.epochs}\ntrained {args.epochs - start}\n"
                f"resumed_from {start}\nfinished 1\n")


if __name__ == "__main__":
    main()
