"""The seeds search: a search's best configurations again with several seeds, summarised.

``hpsearch seeds OUT_DIR --top K --seeds N [--seed_arg random_seed] [search flags]`` reruns
the K best finished configurations of the search in OUT_DIR (by its first objective) with
the seeds 0 .. N-1, as an ordinary grid search in ``OUT_DIR/seeds/``, then summarises them.
The grid is written next to the search as ``OUT_DIR/seeds_search.json`` (a search file;
``OUT_DIR/seeds_grid.py``, a grid module, when the search reads its summaries with a custom
``_SUMMARY_PARSER_HANDLE``, which it imports from the search's copy of its grid module).
It walks "configuration x seed" without a new strategy: one key every
configuration has gets K placeholder values, and condition k replaces placeholder k by
configuration k's values::

    grid = {"lr": ["<hpsearch seeds: configuration 1>", "<... 2>"], "random_seed": [0, 1, 2]}
    conditions = [({"lr": ["<hpsearch seeds: configuration 1>"]}, {"lr": [0.1], "l2": [0.0]}),
                  ({"lr": ["<hpsearch seeds: configuration 2>"]}, {"lr": [1.0], "l2": [0.01]})]

It is started with the search's recorded command (``search.json``'s ``command``, run from
its ``cwd``): the same backend flags, minus what names the search (grid module or search
file, algorithm, ``--num_searches``, seeds and order, ``--out_dir``), plus ``--out_dir=
OUT_DIR/seeds --deterministic_search`` and the flags given here (which win). Running
``hpsearch seeds`` again resumes that search like any other; a changed ``--top``/``--seeds``
adds the new runs and keeps the finished ones. The configurations are chosen again each time
(the same ones once the search has ended). This module writes the grid
(:func:`prepare_seeds`) and the summary (:func:`finish_seeds`); the command line
(:mod:`hpsearch.cli.seeds`) reads the recorded command's flags and runs the search between.

``OUT_DIR/seeds/seed_summary.csv`` (``,``-separated) has one row per configuration::

    rank,lr,l2,seeds,failed,acc_mean,acc_std,loss_mean,loss_std
    1,0.1,0.0,3,0,0.9312,0.0041,0.2101,0.0122

``rank`` is the configuration's place in the original search (empty if it is no longer
among the K best), ``seeds`` how many seeds finished, ``std`` the sample standard deviation
(n - 1; empty for fewer than 2 seeds). The same table is printed.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import JOURNAL_FILE, RunState
from hpsearch.engine.searchdir import read_description
from hpsearch.errors import UsageError
from hpsearch.inspect.collect import best_finished, read_search
from hpsearch.inspect.toptable import number
from hpsearch.runs.summary import is_number
from hpsearch.spec.values import canonical_config, render_value

SEEDS_DIR = "seeds"
SEARCH_FILE = "seeds_search.json"
GRID_MODULE = "seeds_grid.py"
SUMMARY_FILE = "seed_summary.csv"

GRID_MODULE_TEXT = '''"""Written by hpsearch seeds: {k} configurations of {out_dir} x {n} seeds."""
import importlib.util
import json

_spec = importlib.util.spec_from_file_location("_hpsearch_seeds_parent", {parent!r})
_parent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_parent)
_SETTINGS = json.loads({settings!r})
grid = _SETTINGS["grid"]
conditions = [tuple(c) for c in _SETTINGS["conditions"]]
_SCRIPT_NAME = _SETTINGS["script"]
_SUMMARY_FILENAME = _SETTINGS["summary_file"]
_SUMMARY_KEYWORDS = _SETTINGS["keywords"]
_OUT_ARG = _SETTINGS["out_arg"]
_PERFORMANCE_KEY = _SETTINGS["objective"]
_PERFORMANCE_SORT_ASC = _SETTINGS["ascending"]
_SUMMARY_PARSER_HANDLE = _parent._SUMMARY_PARSER_HANDLE
'''


def _check(top: int, num_seeds: int, seed_arg: str) -> None:
    if top < 1:
        raise UsageError(f"--top={top} is out of range; give a count >= 1")
    if num_seeds < 1:
        raise UsageError(f"--seeds={num_seeds} is out of range; give a count >= 1")
    if not seed_arg or seed_arg.startswith("-") or any(c in seed_arg for c in "= \t"):
        raise UsageError(f"--seed_arg={seed_arg!r} is not a flag name; give the name the sim "
                         "takes without dashes, e.g. --seed_arg=random_seed")


def chosen_configs(out_dir: Path, meta: dict[str, Any], top: int, seed_arg: str
                   ) -> list[dict[str, Any]]:
    """The ``top`` best finished configurations, without ``seed_arg`` (best first)."""
    record = read_search(out_dir, None)
    key = record.objectives[0]
    best = best_finished(record.states.values(), key, record.directions[0] == "minimize",
                         record.layout.constraints)
    if not best:
        raise UsageError(f"{out_dir} has no finished run with a number for {key}; let the "
                         "search finish some runs first (hpsearch status shows them)")
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    for state in best:
        config = {k: v for k, v in state.config.items() if k != seed_arg}
        if canonical_config(config) not in seen:
            seen.add(canonical_config(config))
            chosen.append(config)
        if len(chosen) == top:
            break
    return chosen


def seed_grid(chosen: list[dict[str, Any]], seeds: list[int], seed_arg: str
              ) -> tuple[dict[str, list[Any]], list[list[dict[str, list[Any]]]]]:
    """The grid and conditions that walk ``chosen`` x ``seeds`` (module docstring)."""
    common = [k for k in chosen[0] if all(k in c for c in chosen)]
    if not common:
        raise UsageError("the best configurations share no parameter besides the seed, so "
                         "hpsearch seeds cannot name them in a grid; rerun them by hand")
    key = common[0]
    placeholders = [f"<hpsearch seeds: configuration {k}>" for k in range(1, len(chosen) + 1)]
    grid = {key: placeholders, seed_arg: seeds}
    conditions = [[{key: [p]}, {k: [v] for k, v in config.items()}]
                  for p, config in zip(placeholders, chosen, strict=True)]
    return grid, conditions


def _write_source(out_dir: Path, meta: dict[str, Any], grid: dict[str, Any],
                  conditions: list[Any], count: tuple[int, int]) -> str:
    """Write the seeds search's grid; returns the flag that names it."""
    keywords = list(meta["summary_keywords"])
    if meta.get("custom_parser"):
        parent = out_dir / Path(meta.get("source_file") or "").name
        if not parent.is_file():
            parent = Path(meta.get("source_file") or "")
        settings = {"grid": grid, "conditions": conditions, "script": meta["script_name"],
                    "summary_file": meta["summary_filename"], "keywords": keywords,
                    "out_arg": meta["out_arg"], "objective": meta["performance_key"],
                    "ascending": bool(meta["performance_sort_asc"])}
        path = out_dir / GRID_MODULE
        path.write_text(GRID_MODULE_TEXT.format(k=count[0], n=count[1], out_dir=str(out_dir),
                                                parent=str(parent),
                                                settings=json.dumps(settings)))
        return f"--grid_module={path}"
    search = {"script": meta["script_name"], "summary_file": meta["summary_filename"],
              "metrics": keywords, "objective": list(meta["objectives"]),
              "direction": list(meta["directions"]), "out_arg": meta["out_arg"],
              "algorithm": "grid", "parameters": grid, "conditions": conditions}
    path = out_dir / SEARCH_FILE
    path.write_text(json.dumps(search, indent=1) + "\n")
    return f"--search_file={path}"


@dataclass(frozen=True)
class SeedsSearch:
    """The seeds search of a search directory, its grid written: what the CLI runs."""

    #: where the original search was started: its recorded command runs from there
    cwd: Path
    #: the original search's recorded command (its flags say how the seeds search runs)
    command: list[str]
    #: the flags that name the seeds search (its grid, ``--out_dir``, ``--run_cwd``, order)
    argv: list[str]
    seeds_dir: Path
    #: the configurations rerun, best first
    chosen: list[dict[str, Any]]


def prepare_seeds(out_dir: Path, top: int, num_seeds: int, seed_arg: str) -> SeedsSearch:
    """Check the flags, choose the configurations and write the seeds search's grid."""
    _check(top, num_seeds, seed_arg)
    meta = read_description(out_dir)
    if meta is None or not isinstance(meta.get("command"), list):
        raise UsageError(f"{out_dir} holds no search that hpsearch can run again (no "
                         "search.json with its command); pass the --out_dir of an hpsearch "
                         "search")
    cwd = Path(meta.get("cwd") or ".")
    if not cwd.is_dir():
        raise UsageError(f"the search was started in {cwd}, which is gone; recreate it or "
                         "run the seeds by hand")
    chosen = chosen_configs(out_dir, meta, top, seed_arg)
    if len(chosen) < top:
        print(f"hpsearch: warning: {out_dir} has {len(chosen)} finished configurations, not "
              f"{top}; rerunning those", file=sys.stderr)
    grid, conditions = seed_grid(chosen, list(range(num_seeds)), seed_arg)
    source = _write_source(out_dir, meta, grid, conditions, (len(chosen), num_seeds))
    seeds_dir = out_dir / SEEDS_DIR
    argv = [source, f"--out_dir={seeds_dir}", f"--run_cwd={meta['run_cwd']}",
            "--deterministic_search"]
    return SeedsSearch(cwd, list(meta["command"]), argv, seeds_dir, chosen)


def finish_seeds(out_dir: Path, search: SeedsSearch, seed_arg: str, status: int,
                 extra_args: list[str]) -> None:
    """After the seeds search ran: write and print its summary, unless it refused its
    input, was a dry run or wrote no journal."""
    if status != 2 and "--dry_run" not in extra_args and \
            (search.seeds_dir / JOURNAL_FILE).exists():
        write_summary(out_dir, search.seeds_dir, seed_arg, search.chosen, sys.stdout)


def _stats(values: list[float]) -> tuple[str, str]:
    if not values:
        return "", ""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return repr(mean), "" if math.isnan(std) else repr(std)


def write_summary(out_dir: Path, seeds_dir: Path, seed_arg: str,
                  chosen: list[dict[str, Any]], stream: Any) -> Path:
    """Write ``seed_summary.csv`` (module docstring) and print it; returns its path."""
    meta = read_description(seeds_dir) or {}
    metrics = [k for k in meta.get("summary_keywords", []) if k != "finished"]
    groups: dict[str, list[RunState]] = {}
    for state in sorted(read_search(seeds_dir, None).states.values(), key=lambda s: s.trial):
        config = {k: v for k, v in state.config.items() if k != seed_arg}
        groups.setdefault(canonical_config(config), []).append(state)
    ranks = {canonical_config(c): k for k, c in enumerate(chosen, 1)}
    keys = list(dict.fromkeys(k for states in groups.values() for k in states[0].config
                              if k != seed_arg))
    columns = ["rank", *keys, "seeds", "failed"] + [f"{m}_{s}" for m in metrics
                                                     for s in ("mean", "std")]
    order = sorted(groups, key=lambda g: ranks.get(g, len(ranks) + 1))
    path = seeds_dir / SUMMARY_FILE
    stream.write(f"{path}: mean \u00b1 std (sample, n-1) over the finished seeds\n")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for group in order:
            states = groups[group]
            done = [s for s in states if s.status == "finished"]
            failed = sum(1 for s in states if s.status == "failed")
            config = {k: v for k, v in states[0].config.items() if k != seed_arg}
            row: list[Any] = [ranks.get(group, ""),
                              *[render_value(config[k]) if k in config else "" for k in keys],
                              len(done), failed]
            shown = []
            for m in metrics:
                mean, std = _stats([float(s.metrics[m]) for s in done if is_number(
                    s.metrics.get(m)) and math.isfinite(s.metrics[m])])
                row += [mean, std]
                if mean:
                    shown.append(f"{m} {number(float(mean))}" + (
                        f" \u00b1 {number(float(std))}" if std else ""))
            writer.writerow(row)
            label = " ".join(f"{k}={render_value(v)}" for k, v in config.items())
            stream.write(f"#{ranks.get(group, '-')} {label}  ({len(done)}/{len(states)} "
                         f"seeds finished{f', {failed} failed' if failed else ''})\n")
            stream.write(f"    {'   '.join(shown) if shown else 'no finished seed yet'}\n")
    return path
