"""Run a Python function as a search's objective (``script: train.py:my_objective``).

hpsearch starts this runner as the run's command, in ``--run_cwd``, like any script::

    python -m hpsearch.objective_runner train.py:my_objective performance_overview.txt \\
        --out_dir=<search>/runs/<run_id>/out --height=3.2 --width=7

The first word names the file and the function, the second the summary file to write, the
third is the run's output directory; the flags after it are for people reading the command:
the configuration comes from ``<run_dir>/run.json`` (``"config"``, the journaled values with
their JSON types), where ``<run_dir>`` holds the output directory. A text value wrapped in
one pair of quotes loses them, as on a command line.

The runner imports the file (its folder first on ``sys.path``, as ``python train.py`` would
have it) and calls the function the way hpogrid's does::

    def my_objective(config, reporter):       # hpogrid / Ray Tune's function API
        for epoch in range(10):
            ...
            reporter(loss=loss, acc=acc)      # -> hpsearch.report(step=<call number>, ...)
            if reporter.should_stop():        # the search pruned this run
                return

    def my_objective(config):                 # or: return the metrics
        return {"loss": loss, "acc": acc}

``reporter(**metrics)`` feeds :func:`hpsearch.report` (``step=`` when given, otherwise the
number of the call: 1, 2, ...; Ray's ``done`` flag is dropped). The summary file then holds
each metric's last reported value, updated by the returned dict, one ``<key> <value>`` line
each, and ``finished 1``; a value that is not a number (or a list of numbers) is left out.

An exception in the function prints its traceback to stderr, writes its last line
(``ValueError: lr must be > 0``) to the run's ``reason`` file and exits 1, so the run fails
with the reason ``exit status 1: ValueError: lr must be > 0``. A function that returns
something other than a dict or None, or reports nothing, fails the same way (exit 1); a
runner called wrongly exits 2. Standard library only, besides what the function imports.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from hpsearch.runs.files import REASON_FILE, RUN_FILE
from hpsearch.runs.reporter import OUT_DIR_VARIABLE, report
from hpsearch.spec.values import strip_wrapping_quotes

USAGE = ("usage: python -m hpsearch.objective_runner FILE.py:FUNCTION SUMMARY_FILE "
         "--out_dir=<run_dir>/out [flags shown for reading only]")


class RunnerError(Exception):
    """A failure the runner explains in one line (no traceback); ``status`` is the exit."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Reporter:
    """``reporter(**metrics)`` for the function; remembers each metric's last value."""

    def __init__(self) -> None:
        self.calls = 0
        self.last: dict[str, Any] = {}

    def __call__(self, **metrics: Any) -> None:
        metrics.pop("done", None)
        self.calls += 1
        step = metrics.pop("step", self.calls)
        report(step=step, **metrics)
        self.last.update(metrics)

    @staticmethod
    def should_stop() -> bool:
        return report.should_stop()


def read_config(run_dir: Path) -> dict[str, Any]:
    """The run's configuration from ``run.json``, text values unquoted as on a command line."""
    try:
        with open(run_dir / RUN_FILE) as f:
            config = json.load(f)["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunnerError(f"cannot read the configuration from {run_dir / RUN_FILE} ({exc}); "
                          "the runner runs inside a run directory hpsearch prepared", 2) \
            from None
    if not isinstance(config, dict):
        raise RunnerError(f"{run_dir / RUN_FILE}: config is not a mapping", 2)
    return {k: strip_wrapping_quotes(v) if isinstance(v, str) else v for k, v in config.items()}


def import_target(target: str) -> ModuleType:
    """Import the file of ``target`` (``FILE.py:FUNCTION``), its folder first on ``sys.path``."""
    file_name = target.rpartition(":")[0]
    path = Path(file_name).resolve()
    if not path.is_file():
        raise RunnerError(f"{file_name} not found in {Path.cwd()}", 2)
    module_name = path.stem if path.stem not in sys.modules else f"_hpsearch_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    sys.argv = [str(path)]
    spec.loader.exec_module(module)
    return module


def load_function(target: str, module: ModuleType | None = None) -> Callable[..., Any]:
    """The ``FUNCTION`` of ``target`` (``FILE.py:FUNCTION``), from ``module`` when the file
    was imported already (a preloaded run: :mod:`hpsearch.runs.zygote`), else imported now."""
    file_name, _, name = target.rpartition(":")
    function = getattr(module or import_target(target), name, None)
    if not callable(function):
        raise RunnerError(f"{file_name} defines no function {name}")
    return function


def wants_reporter(function: Callable[..., Any]) -> bool:
    """Whether to call ``function(config, reporter)`` rather than ``function(config)``."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return (len(required) >= 2 or any(p.name == "reporter" for p in positional)
            or any(p.kind == p.VAR_POSITIONAL for p in params))


def summary_value(value: Any) -> str | None:
    """A metric as summary-file text (``0.25``, ``3``, ``[0.9, 0.8]``), or None."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)):
        items = [summary_value(v) for v in value]
        texts = [text for text in items if text is not None]
        return f"[{', '.join(texts)}]" if texts and len(texts) == len(items) else None
    try:
        number = float(value)  # numpy scalars, 0-d tensors
    except (TypeError, ValueError):
        return None
    return repr(number) if not math.isnan(number) else "nan"


def summary_text(metrics: dict[str, Any]) -> str:
    lines = []
    for key, value in metrics.items():
        if key == "finished":
            continue
        text = summary_value(value)
        if text is None:
            print(f"hpsearch: metric {key}={value!r} is not a number; left out of the summary",
                  file=sys.stderr)
            continue
        lines.append(f"{key} {text}\n")
    return "".join(lines) + "finished 1\n"


def run(target: str, config: dict[str, Any], module: ModuleType | None = None
        ) -> dict[str, Any]:
    """Call the function; its metrics (the returned dict over the last reported values)."""
    function = load_function(target, module)
    name = target.rpartition(":")[2]
    reporter = Reporter()
    try:
        result = function(config, reporter) if wants_reporter(function) else function(config)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RunnerError(f"{name} called sys.exit({exc.code!r})") from None
        result = None
    if result is not None and not isinstance(result, dict):
        raise RunnerError(f"{name} returned {type(result).__name__} {result!r}; return a dict "
                          "such as {'loss': 0.1} or call reporter(loss=0.1)")
    metrics = {**reporter.last, **(result or {})}
    if not metrics:
        raise RunnerError(f"{name} returned no metrics and called reporter() never; return "
                          "a dict such as {'loss': 0.1} or call reporter(loss=0.1)")
    return metrics


def leave_reason(run_dir: Path, text: str) -> None:
    try:
        with open(run_dir / REASON_FILE, "w") as f:
            f.write(" ".join(text.split()) + "\n")
    except OSError:
        pass


def main(argv: list[str] | None = None, loaded: ModuleType | None = None) -> int:
    """The runner's exit status; ``loaded``: the target's module, imported already."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or ":" not in args[0] or not args[2].startswith("--") \
            or "=" not in args[2]:
        print(USAGE, file=sys.stderr)
        return 2
    target, summary_file, out_word = args[:3]
    out_dir = Path(out_word.partition("=")[2]).resolve()
    run_dir = out_dir.parent
    os.environ.setdefault(OUT_DIR_VARIABLE, str(out_dir))
    try:
        config = read_config(run_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics = run(target, config, loaded)
        (out_dir / summary_file).write_text(summary_text(metrics))
    except RunnerError as exc:
        print(f"hpsearch: {exc}", file=sys.stderr)
        leave_reason(run_dir, str(exc))
        return exc.status
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the function's (or its module's) own error
        traceback.print_exc()
        leave_reason(run_dir, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
