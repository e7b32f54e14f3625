"""A search as reports and exports see it: every run with its times, GPUs and learning curve.

Built on :func:`hpsearch.inspect.collect.read_search` (one reader of the journal and the run
directories, one verdict on each run), plus what each run directory says about time
(:mod:`hpsearch.runs.files`):

* a **span** is one start of a run's command: ``started_at`` (its mtime is the start;
  ``host=`` and ``cuda_visible_devices=`` lines) to ``exit_code`` (its mtime is the end) --
  the current start in ``runs/<id>/``, earlier ones in ``runs/<id>/attempts/<n>/``. A run
  whose files are gone falls back to the journal (``end`` time minus ``wall``);
* the **GPUs** of a span: the devices listed in its ``cuda_visible_devices`` -- for a
  local search only once a run of it has a ``gpu`` result column (the GPU backend placed
  it; CPU slots inherit the user's variable) --, else 0;
* the **curve**: :func:`hpsearch.runs.curves.read_curve`.

Parameters are described from ``search.json``'s ``parameters`` (a list, or a distribution
in its search-file spelling), with the values the runs really got added to a list's
choices (a condition may set values the list does not hold) and the keys only conditions
set as lists of what the runs got.
"""

from __future__ import annotations

import math
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import RunState
from hpsearch.inspect.collect import HYPNETTORCH_COMMAND, SearchRecord, read_search
from hpsearch.runs.curves import read_curve
from hpsearch.runs.files import ATTEMPTS_DIR, read_exit, read_run_record, read_start
from hpsearch.runs.summary import is_number
from hpsearch.spec.distributions import Distribution, parse_distribution
from hpsearch.spec.hydra import HYDRA_RUN_DIR
from hpsearch.spec.values import render_args, render_value

#: what ``cuda_visible_devices`` holds when a job got no GPU
_NO_DEVICES = ("", "-1", "NoDevFiles")


@dataclass(frozen=True)
class Span:
    """One start of a run's command; ``end`` is None while it runs."""

    start: float
    end: float | None
    host: str
    devices: str  # cuda_visible_devices
    gpus: int
    job: str
    last: bool  # the run's current start (earlier ones were retried)

    def seconds(self, now: float) -> float:
        return max(0.0, (now if self.end is None else self.end) - self.start)


@dataclass
class RunView:
    """One run: its journal state, its directory, its spans and its curve."""

    state: RunState
    run_dir: Path
    spans: list[Span]
    curve: list[dict[str, Any]]

    def value(self, key: str) -> float | None:
        """The run's number for metric ``key`` (None when it has none, or NaN)."""
        value = self.state.metrics.get(key)
        return float(value) if is_number(value) and value == value else None

    def scored(self, objectives: list[str]) -> bool:
        """Finished, with a number for every objective."""
        return self.state.status == "finished" and all(
            self.value(k) is not None for k in objectives)

    def last_step(self) -> float | None:
        """The last step the run reported: the driver's record (the ``steps`` column), else
        its curve's last point (None when it reported none)."""
        steps = (self.state.extra or {}).get("steps")
        if is_number(steps):
            return float(steps)
        return float(self.curve[-1]["step"]) if self.curve else None

    def value_at(self, key: str, step: float) -> float | None:
        """The run's ``key`` when it got to ``step``: its first point at or past ``step``
        with a finite number for ``key`` (None when its curve never got there). Not ASHA's
        rule, which scores a rung with the last point at or before it: a report asks what a
        run had reached, a rung must not see a later value."""
        for point in self.curve:
            value = point.get(key)
            if point["step"] >= step and is_number(value) and math.isfinite(value):
                return float(value)
        return None


@dataclass(frozen=True)
class Parameter:
    """A configuration key: a list of ``choices`` (declared, then the others runs got) or a
    ``distribution``; ``values`` are what the runs got, shown as argv shows them."""

    name: str
    choices: list[Any] | None
    distribution: Distribution | None
    values: list[Any]

    @property
    def varies(self) -> bool:
        """Runs got more than one value (a fixed value is not plotted)."""
        return len(set(map(repr, self.values))) > 1


@dataclass
class SearchView:
    """What a report or an export shows; runs are in trial order."""

    record: SearchRecord
    runs: list[RunView]
    parameters: list[Parameter]
    now: float = field(default_factory=time.time)

    @property
    def out_dir(self) -> Path:
        return self.record.out_dir

    @property
    def objectives(self) -> list[str]:
        return self.record.objectives

    @property
    def directions(self) -> list[str]:
        return self.record.directions

    @property
    def meta(self) -> dict[str, Any]:
        return self.record.meta or {}

    @property
    def metrics(self) -> list[str]:
        """Every summary keyword but ``finished``, objectives first."""
        keywords = [k for k in self.record.layout.keywords if k != "finished"]
        return self.objectives + [k for k in keywords if k not in self.objectives]

    def scored(self) -> list[RunView]:
        """Finished runs with a number for every objective."""
        return [r for r in self.runs if r.scored(self.objectives)]


def display(value: Any) -> Any:
    """A configuration value as the run's argv shows it (``'"sgd"'`` -> ``sgd``)."""
    return render_value(value) if isinstance(value, str) else value


def _gpus(devices: str, gpu_mode: bool) -> int:
    devices = devices.strip()
    return 0 if not gpu_mode or devices in _NO_DEVICES else len(devices.split(","))


def _span(folder: Path, state: RunState, gpu_mode: bool, last: bool) -> Span | None:
    start = read_start(folder)
    if start is None:
        return None
    ended = read_exit(folder, start.launch, start)
    running = last and state.status in ("running", "launching")
    end = None if ended is None and running else (
        ended.ended_at if ended is not None else start.started_at)
    devices = start.cuda_visible_devices
    return Span(start.started_at, end, start.host, devices, _gpus(devices, gpu_mode),
                start.job, last)


def _spans(state: RunState, run_dir: Path, gpu_mode: bool) -> list[Span]:
    spans: list[Span] = []
    try:
        earlier = sorted((int(e.name), e.path) for e in os.scandir(run_dir / ATTEMPTS_DIR)
                         if e.name.isdigit())
    except OSError:
        earlier = []
    for _n, path in earlier:
        span = _span(Path(path), state, gpu_mode, last=False)
        if span is not None:
            spans.append(span)
    current = _span(run_dir, state, gpu_mode, last=True)
    if current is None and state.ended_at is not None and state.wall_time is not None:
        devices = str((state.extra or {}).get("gpu", ""))
        current = Span(state.ended_at - state.wall_time, state.ended_at, "", devices,
                       _gpus(devices, gpu_mode), state.job_id or "", True)
    if current is not None:
        spans.append(current)
    return spans


def _parameters(record: SearchRecord, runs: list[RunView]) -> list[Parameter]:
    declared: dict[str, Any] = {}
    if record.meta is not None:
        declared = dict(record.meta.get("parameters") or {})
    elif record.spec is not None:
        declared = {k: v.to_json() if isinstance(v, Distribution) else v
                    for k, v in record.spec.parameters.items()}
    keys = list(dict.fromkeys([*record.layout.config_keys, *declared]))
    for run in runs:
        keys.extend(k for k in run.state.config if k not in keys)
    parameters = []
    for key in keys:
        values = [display(r.state.config[key]) for r in runs if key in r.state.config]
        raw = declared.get(key)
        if isinstance(raw, dict):
            parameters.append(Parameter(key, None, parse_distribution(key, raw), values))
            continue
        choices = [display(v) for v in raw] if isinstance(raw, list) else []
        seen = set(map(repr, choices))
        extra = {repr(v): v for v in values if repr(v) not in seen}
        parameters.append(Parameter(key, choices + _sorted(list(extra.values())), None, values))
    return parameters


def _sorted(values: list[Any]) -> list[Any]:
    """Numbers by value, then everything else by its text."""
    numbers = sorted(v for v in values if is_number(v))
    return numbers + sorted((v for v in values if not is_number(v)), key=str)


def load_view(out_dir: Path, grid_module: str | None = None) -> SearchView:
    """Read the search in ``out_dir`` (UsageError when it holds none)."""
    record = read_search(out_dir, grid_module)
    backend = (record.meta or {}).get("backend", "local")
    gpu_mode = backend != "local" or any("gpu" in (s.extra or {}) for s in record.states.values())
    runs = []
    for state in sorted(record.states.values(), key=lambda s: (s.trial, s.run_id)):
        run_dir = record.run_dir(state)
        runs.append(RunView(state, run_dir, _spans(state, run_dir, gpu_mode),
                            read_curve(run_dir)))
    return SearchView(record, runs, _parameters(record, runs))


def rerun_command(view: SearchView, run: RunView) -> str:
    """A shell line that runs ``run``'s configuration again by hand, its output going to a
    new ``rerun_<run id>`` folder (the search's own run directory stays as it is)::

        cd /abs/sims/logreg && /usr/bin/python3 logreg.py --out_dir=rerun_3f2a9c0d1b7e --lr=0.1

    (a Hydra app's ``hydra.run.dir=`` likewise).
    """
    out_arg = view.meta.get("out_arg") or (
        view.record.spec.out_arg if view.record.spec else "out_dir")
    record = read_run_record(run.run_dir)
    if record and isinstance(record.get("argv"), list):
        out_words = (f"--{out_arg}=", HYDRA_RUN_DIR)
        argv = [next((f"{w}rerun_{run.state.run_id}" for w in out_words
                      if str(a).startswith(w)), str(a)) for a in record["argv"]]
        return f"cd {shlex.quote(str(record.get('cwd') or '.'))} && {shlex.join(argv)}"
    try:  # hypnettorch: the last line of hpsearch_command.sh
        lines = (run.run_dir / HYPNETTORCH_COMMAND).read_text().splitlines()
        return [ln for ln in lines if ln.strip() and not ln.startswith("#")][-1]
    except (OSError, IndexError):
        return shlex.join(render_args(run.state.config))
