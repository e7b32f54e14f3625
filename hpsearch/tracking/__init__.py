"""Tracking sinks: each ended run of a search logged to MLflow, TensorBoard or W&B.

:data:`SINKS` names every sink (its ``--log_to`` word) and where its class lives; a sink's
module (and its library) is imported only when a search or an export uses it. A sink class
is built with the search directory (``MlflowSink(out_dir)``), writes nothing until it is
opened, and follows :class:`~hpsearch.tracking.record.Sink`. Its library is an extra of the
package of the same name (``pip install 'hpsearch[mlflow]'``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from hpsearch.errors import UsageError
from hpsearch.tracking.record import Sink

#: ``--log_to`` word -> ``"module:Class"`` of its sink; each one's extra bears its name
SINKS = {
    "mlflow": "hpsearch.tracking.mlflow:MlflowSink",
    "tensorboard": "hpsearch.tracking.tensorboard:TensorBoardSink",
    "wandb": "hpsearch.tracking.wandb:WandbSink",
}


def unknown_sink(name: str, where: str) -> str | None:
    """The one line refusing ``name`` (given in ``where``, e.g. ``--log_to``), or None when
    it names a sink."""
    if name in SINKS:
        return None
    return f"{where} {name!r} is not a tracking sink; use one of {', '.join(SINKS)}"


def check_names(names: Iterable[str]) -> None:
    """ValueError (one line) for the first ``--log_to`` value that names no sink."""
    for name in names:
        problem = unknown_sink(name, "--log_to")
        if problem is not None:
            raise ValueError(problem)


def make_sinks(names: Iterable[str], out_dir: Path) -> list[Sink]:
    """The sinks ``names`` name (each once, in order), built for the search in ``out_dir``
    and not opened: nothing is written yet. UsageError (one line) for a name that is no sink
    and for a sink whose library is missing (the extra to install)."""
    sinks = []
    for name in dict.fromkeys(names):
        problem = unknown_sink(name, "log_to")
        if problem is not None:
            raise UsageError(problem)
        module_name, _, class_name = SINKS[name].partition(":")
        try:
            sinks.append(getattr(importlib.import_module(module_name), class_name)(out_dir))
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.split(".")[0] == "hpsearch":
                raise
            raise UsageError(f"--log_to {name} needs the {exc.name or name} package, which "
                             f"is not installed: pip install 'hpsearch[{name}]'") from None
    return sinks
