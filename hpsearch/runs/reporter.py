"""``from hpsearch import report``: what a sim calls to report intermediate results.

Standard library only, so a sim imports it without the driver's dependencies, on a compute
node with no network::

    from hpsearch import report

    for epoch in range(epochs):
        ...
        report(step=epoch, val_loss=loss, val_acc=acc)
        if report.should_stop():      # the search pruned this run
            save_checkpoint(); break  # exit cleanly (a status of 0 is fine)

``report(step=..., **metrics)`` appends one JSON line to ``hpsearch_report.jsonl`` in the
run's output directory (``$HPSEARCH_OUT_DIR``, which hpsearch sets for every run)::

    {"step": 3, "t": 1732350000.25, "val_loss": 0.41, "val_acc": 0.88}

The step must be a finite whole number (``3`` or ``3.0``; ``1.5``, ``inf`` and ``nan`` raise
ValueError); a metric must be a number (NaN and infinities included: a diverged run says so).
The driver reads such lines written by any means, and ignores, with one warning per run, a
line whose step is not a whole number (:func:`step_problem`).

``report.should_stop()`` is True once the driver has written ``hpsearch_stop`` there, or
once the run got SIGTERM: the first call of ``should_stop()`` turns SIGTERM into that flag
(a sim that asks whether to stop is one that stops cleanly when told), so the driver's
SIGTERM to a pruned run no longer kills it mid-epoch. The first time it says True it leaves
``hpsearch_stop_seen`` beside the reports: the run saw its stop, so its end is a prune even
when it then writes ``finished 1`` (a run that never saw it and finished is finished). A sim
that never calls it keeps the default: SIGTERM ends it. Run outside hpsearch (no
``$HPSEARCH_OUT_DIR``), both do nothing and ``should_stop()`` is False.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time

__all__ = ["OUT_DIR_VARIABLE", "REPORT_FILE", "STOP_FILE", "STOP_SEEN_FILE", "report",
           "step_problem"]

REPORT_FILE = "hpsearch_report.jsonl"
STOP_FILE = "hpsearch_stop"
#: left by ``should_stop()`` the first time it says True (the run saw its stop)
STOP_SEEN_FILE = "hpsearch_stop_seen"
OUT_DIR_VARIABLE = "HPSEARCH_OUT_DIR"


def _out_dir() -> str | None:
    return os.environ.get(OUT_DIR_VARIABLE) or None


def step_problem(step: object) -> str | None:
    """What is wrong with ``step`` as a step, such as ``"inf is not a finite whole number"``
    (None: it is one)."""
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return f"{step!r} is not a number"
    if isinstance(step, float) and not (math.isfinite(step) and step.is_integer()):
        return f"{step!r} is not a finite whole number"
    return None


def _step(step: object) -> int:
    """``step`` as an int (``3.0`` -> 3; numpy integers too); ValueError for anything else
    (text too: a step is a number)."""
    if not isinstance(step, (bool, int, float, str)):
        with contextlib.suppress(TypeError, ValueError):
            step = float(step)  # type: ignore[arg-type]  # numpy scalars, 0-d tensors
    problem = step_problem(step)
    if problem is not None:
        raise ValueError(f"report(step={step!r}): the step must be a finite whole number, "
                         "such as the epoch (3 or 3.0)")
    return int(step)  # type: ignore[call-overload]


def _number(name: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, torch 0-d tensors
        except (TypeError, ValueError):
            raise TypeError(f"report({name}=...) needs a number, not {value!r}") from None
    return value if math.isfinite(value) or isinstance(value, int) else float(value)


class _Report:
    """The callable ``report`` with its ``should_stop`` method (see the module docstring)."""

    def __init__(self) -> None:
        self._terminated = False
        self._handling = False
        self._seen = False  # should_stop() said True once (STOP_SEEN_FILE is there)

    def _on_term(self, _signum: int, _frame: object) -> None:
        self._terminated = True

    def __call__(self, step: int | float, **metrics: object) -> None:
        out_dir = _out_dir()
        if out_dir is None:
            return
        line = {"step": _step(step), "t": round(time.time(), 3)}
        line.update((name, _number(name, value)) for name, value in metrics.items())
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, REPORT_FILE), "a") as f:
            f.write(json.dumps(line) + "\n")

    def should_stop(self) -> bool:
        out_dir = _out_dir()
        if out_dir is None:
            return False
        if not self._handling:
            self._handling = True
            with contextlib.suppress(ValueError):  # not the main thread: keep the default
                signal.signal(signal.SIGTERM, self._on_term)
        stop = self._terminated or os.path.exists(os.path.join(out_dir, STOP_FILE))
        if stop and not self._seen:
            self._seen = True
            with contextlib.suppress(OSError):  # the driver then reads its end as a prune
                open(os.path.join(out_dir, STOP_SEEN_FILE), "w").close()
        return stop


report = _Report()
