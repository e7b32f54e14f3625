"""``hpsearch collect``, ``status`` and ``cancel``: act on a search directory from outside.

``collect`` rebuilds the table from the run directories (``runs/<id>/`` of ours, or
hypnettorch's ``sim_*`` folders with their ``hpsearch_command.sh``) and the journal when
there is one; it needs no driver. ``status`` reads the journal only, so it is cheap while a
driver runs. ``cancel`` stops this host's driver and every run or job the journal lists as
running.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.journal import JOURNAL_FILE, LOCK_FILE, RunState, replay
from hpsearch.results import RESULTS_FILE, TableLayout, build_table, row_of, write_table
from hpsearch.runfiles import RUNS_DIR, SIM_OUT_DIR, read_exit, read_run_record
from hpsearch.searchdir import config_keys, layout_of, read_description
from hpsearch.spec import SearchSpec, load_spec
from hpsearch.summary import judge_run

HYPNETTORCH_COMMAND = "hpsearch_command.sh"


def _require_dir(out_dir: Path) -> None:
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir} is not a directory; pass a search directory (--out_dir)")


def _spec_for(out_dir: Path, grid_module: str | None) -> SearchSpec | None:
    """The grid module named, or the copy of it a search left in its directory."""
    if grid_module:
        return load_spec(grid_module, Path.cwd(), check_script=False)
    meta = read_description(out_dir)
    candidates = []
    if meta and meta.get("module_file"):
        candidates.append(Path(meta["module_file"]))
    candidates += sorted(out_dir.glob("*.py"))
    for path in candidates:
        if path.is_file():
            try:
                return load_spec(str(path), Path.cwd(), check_script=False)
            except UsageError:
                continue
    return None


def _layout(out_dir: Path, spec: SearchSpec | None) -> TableLayout:
    meta = read_description(out_dir)
    if meta is not None:
        return layout_of(meta)
    if spec is None:
        raise UsageError(f"{out_dir} has no search.json and no grid module copy; pass "
                         "--grid_module=<the search's grid module>")
    return TableLayout(config_keys(spec), spec.summary_keywords, spec.performance_key,
                       spec.performance_sort_asc)


def _judge(state: RunState, sim_out_dir: Path, exit_code: int | None,
           layout: TableLayout, spec: SearchSpec | None, summary_filename: str) -> None:
    verdict = judge_run(sim_out_dir, summary_filename, layout.keywords,
                        layout.performance_key, exit_code,
                        spec.summary_parser if spec else None, state.index)
    state.metrics = verdict.metrics
    state.status = "failed" if verdict.failure else "finished"
    state.reason = verdict.failure


def _our_runs(out_dir: Path, states: dict[str, RunState], layout: TableLayout,
              spec: SearchSpec | None, summary_filename: str) -> None:
    """Bring every ``runs/<id>`` directory into ``states`` (the journal's view first)."""
    runs_dir = out_dir / RUNS_DIR
    if not runs_dir.is_dir():
        return
    for entry in os.scandir(runs_dir):
        state = states.get(entry.name)
        if state is not None and state.status in ("finished", "failed"):
            continue  # the journal already judged it
        run_dir = Path(entry.path)
        if state is None:
            record = read_run_record(run_dir)
            if record is None:
                continue
            state = states[entry.name] = RunState(entry.name, record.get("index", -1),
                                                  record.get("config", {}), attempts=1)
        ended = read_exit(run_dir)
        if ended is None:
            state.status = "running"
            continue
        _judge(state, run_dir / SIM_OUT_DIR, ended.exit_code, layout, spec, summary_filename)
        state.exit_code = ended.exit_code
        state.wall_time = ended.wall_time


def parse_hypnettorch_command(text: str, out_arg: str) -> dict[str, Any]:
    """Config from hypnettorch's ``hpsearch_command.sh``::

        #!/bin/sh
        python3 train.py --out_dir=out/sim_2019_01 --lr=0.001 --use_bn

    ``--k=v`` -> ``{"k": v}`` (numbers as numbers), a bare ``--k`` -> True.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    config: dict[str, Any] = {}
    for token in shlex.split(lines[-1]) if lines else []:
        if not token.startswith("--"):
            continue
        name, eq, value = token[2:].partition("=")
        if name == out_arg:
            continue
        if not eq:
            config[name] = True
            continue
        try:
            config[name] = int(value)
        except ValueError:
            try:
                config[name] = float(value)
            except ValueError:
                config[name] = value
    return config


def _hypnettorch_runs(out_dir: Path, states: dict[str, RunState], layout: TableLayout,
                      spec: SearchSpec | None, summary_filename: str, out_arg: str) -> None:
    values = [] if spec is None else [*spec.grid.items()] + [
        item for _match, replace in spec.conditions for item in replace.items()]
    flag_keys = [k for k, vals in values if any(isinstance(v, bool) for v in vals)]
    for index, run_dir in enumerate(sorted(p for p in out_dir.glob("sim_*") if p.is_dir())):
        try:
            config = parse_hypnettorch_command(
                (run_dir / HYPNETTORCH_COMMAND).read_text(), out_arg)
        except OSError:
            config = {}
        for key in flag_keys:  # hypnettorch omits a False flag from the command
            config.setdefault(key, False)
        state = states[run_dir.name] = RunState(run_dir.name, index, config, attempts=1)
        _judge(state, run_dir, None, layout, spec, summary_filename)


def collect(out_dir: Path, grid_module: str | None, stream: Any = None) -> Path:
    """Rebuild and write ``search_results.csv``; returns its path."""
    _require_dir(out_dir)
    meta = read_description(out_dir)
    needs_spec = meta is None or meta.get("custom_parser") or grid_module
    spec = _spec_for(out_dir, grid_module) if needs_spec else None
    layout = _layout(out_dir, spec)
    summary_filename = meta["summary_filename"] if meta else spec.summary_filename
    out_arg = meta["out_arg"] if meta else spec.out_arg
    states = replay(out_dir / JOURNAL_FILE)
    _our_runs(out_dir, states, layout, spec, summary_filename)
    hypnettorch = meta is None and any(out_dir.glob("sim_*"))
    if hypnettorch:
        _hypnettorch_runs(out_dir, states, layout, spec, summary_filename, out_arg)
    if not states:
        raise UsageError(f"{out_dir} holds no runs (no runs/<id>/ nor sim_*/ folders); "
                         "pass the search directory")
    rows = [row_of(s, out_dir) for s in states.values()]
    if hypnettorch:
        for row in rows:
            row["run_dir"] = str(out_dir / row["run_id"])
    table = build_table(rows, layout)
    path = out_dir / RESULTS_FILE
    if path.exists() and meta is None:
        backup = path.with_name(RESULTS_FILE + ".orig")
        if not backup.exists():
            os.replace(path, backup)
    write_table(table, path)
    stream = stream or sys.stdout
    counts = Counter(row["status"] for row in rows)
    stream.write(f"{path}: {len(rows)} runs ("
                 + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")\n")
    return path


def print_status(out_dir: Path, top: int, stream: Any = None) -> None:
    """Counts by state and the ``top`` best finished runs, from the journal."""
    _require_dir(out_dir)
    meta = read_description(out_dir)
    if meta is None:
        raise UsageError(f"{out_dir} is not an hpsearch search directory (no search.json); "
                         "pass the --out_dir of a search")
    stream = stream or sys.stdout
    states = replay(out_dir / JOURNAL_FILE)
    counts = {"finished": 0, "failed": 0, "running": 0, "pending": 0}
    for state in states.values():
        counts[state.status] = counts.get(state.status, 0) + 1
    counts["pending"] += max(0, int(meta.get("size_hint", 0)) - len(states))
    driver = _driver_holder(out_dir)
    stream.write(f"search {out_dir}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + (f"; driver pid {driver['pid']} on {driver['host']}" if driver
                    else "; no driver running") + "\n")
    key, ascending = meta["performance_key"], bool(meta["performance_sort_asc"])
    finished = [s for s in states.values() if s.status == "finished"
                and isinstance(s.metrics.get(key), (int, float))
                and not math.isnan(s.metrics[key])]
    finished.sort(key=lambda s: s.metrics[key], reverse=not ascending)
    if finished:
        stream.write(f"best {min(top, len(finished))} by {key} "
                     f"({'ascending' if ascending else 'descending'}):\n")
    for state in finished[:top]:
        config = " ".join(f"{k}={v}" for k, v in state.config.items())
        stream.write(f"  {key}={state.metrics[key]:.6g}  {state.run_id}  {config}\n")


def _driver_holder(out_dir: Path) -> dict[str, Any] | None:
    try:
        with open(out_dir / LOCK_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cancel_search(out_dir: Path, stream: Any = None) -> None:
    """SIGTERM this host's driver, then cancel every run the journal lists as running."""
    from hpsearch.backends import cancel_jobs

    _require_dir(out_dir)
    stream = stream or sys.stdout
    holder = _driver_holder(out_dir)
    if holder and holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), signal.SIGTERM)
            stream.write(f"sent SIGTERM to driver pid {holder['pid']}\n")
            give_up = time.monotonic() + 30
            while (out_dir / LOCK_FILE).exists() and time.monotonic() < give_up:
                time.sleep(0.1)
        except (ProcessLookupError, ValueError):
            pass
    states = replay(out_dir / JOURNAL_FILE)
    job_ids = [s.job_id for s in states.values() if s.status == "running" and s.job_id]
    meta = read_description(out_dir) or {}
    cancelled = cancel_jobs(meta.get("backend", "local"), job_ids)
    stream.write(f"cancelled {cancelled} run(s) of {out_dir}\n")
