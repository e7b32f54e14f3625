"""A sim where a schedule of learning rates beats any constant one (standard library
only), for population based training: trains from step ``s0`` to --total_steps with --lr,
continuing from ``checkpoint.json`` in ``$HPSEARCH_RESUME_FROM`` when it is set.

The loss of SGD on a noisy quadratic, deterministic::

    loss(0) = 1;   loss(t + 1) = (1 - lr)**2 * loss(t) + lr**2

A large rate falls fast to a high floor (about lr / 2), a small one slowly to a low one:
over 60 steps the best constant rate (about 0.04) ends near 0.027, a falling schedule
(0.12, 0.04, 0.02 for 20 steps each) near 0.019. It writes ``checkpoint.json``
(``{"step": t, "loss": ...}``) and ``performance_overview.txt`` (``loss``, ``step``,
``trained``: the steps this run took, ``finished 1``).
"""

import argparse
import json
import os


def resumed() -> tuple[int, float]:
    """``(step, loss)`` of the checkpoint in $HPSEARCH_RESUME_FROM, else ``(0, 1.0)``."""
    source = os.environ.get("HPSEARCH_RESUME_FROM")
    if source:
        try:
            with open(os.path.join(source, "checkpoint.json")) as f:
                state = json.load(f)
            return int(state["step"]), float(state["loss"])
        except (OSError, ValueError, KeyError):
            pass
    return 0, 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--total_steps", type=int, required=True)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    step, loss = resumed()
    start = step
    while step < args.total_steps:
        loss = (1 - args.lr) ** 2 * loss + args.lr ** 2
        step += 1
    with open(os.path.join(args.out_dir, "checkpoint.json"), "w") as f:
        json.dump({"step": step, "loss": loss}, f)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"loss {loss}\nstep {step}\ntrained {step - start}\nfinished 1\n")


if __name__ == "__main__":
    main()
