"""``hpsearch collect``, ``status`` and ``cancel``: act on a search directory from outside.

``collect`` rebuilds the table from the journal and the run directories (``runs/<id>/`` of
ours, or hypnettorch's ``sim_*`` folders with their ``hpsearch_command.sh``), judging every
run the journal has not judged with the driver's own verdict; it needs no driver. ``status``
sees the runs as ``collect`` does (:func:`judged_runs`: a run the journal lists as active
whose ``exit_code`` is there is judged, also after ``kill -9`` of the driver), reads the
``started_at`` of the runs still active (queued or running) and, for packed runs, their
claims (which job holds them); it says whether the search's driver is alive, and (for a
cluster search, or one that used GPUs) the GPU- and CPU-hours the ended attempts took
(:mod:`hpsearch.backends.accounting`), and the failed runs' reasons with their counts
(:func:`~hpsearch.runs.summary.failure_groups`)::

    search out/q: 70 finished, 3 failed, 4 running, 0 pending (of 77); driver pid 4242 on login1
      job 4711_0 (node3) holds 3 run(s): 0c6a51f3ffeb 1dcd86438d06 54c1c375d5d1
    GPU-hours 12.4 (failed 0.5, pruned 1.25, preempted 0.3); CPU-hours 49.61 (failed 2)
    failed runs by reason, most common first:
      2 exit status 1: ValueError: lr must be positive, got #
      1 oom (exit status 1: torch.OutOfMemoryError: CUDA out of memory. Tried to ...)
    best val_loss=0.129 (trial 3, run 7f3a...); 5 best by val_loss (ascending), finished runs
    first, then pruned runs by their last report:
      val_loss=0.129  7f3a0c6a51f3  lr=0.03 ...
      val_loss=0.1149 @ step 3 (pruned)  0c6a51f3ffeb  lr=0.01 ...

The best runs are ranked as the results table is (:func:`hpsearch.engine.results.sort_key`):
finished runs first, then pruned runs by their last report, shown with its step (the line
above them is one line, wrapped here).

``cancel`` checks that the scheduler's commands are there, stops the driver, takes its lock,
cancels every run the journal lists as active and journals them as cancelled (they run again
on the next start).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends.accounting import describe, search_totals
from hpsearch.backends.cluster.claims import pack_dir, read_claim
from hpsearch.backends.ssh.options import STATUS_FILE as SSH_STATUS_FILE
from hpsearch.engine.journal import ENDED, JOURNAL_FILE, Journal, RunState, replay
from hpsearch.engine.lock import LOCK_FILE, DriverLock, liveness, read_holder
from hpsearch.engine.pareto import pareto_front
from hpsearch.engine.results import (
    RESULTS_FILE,
    TableLayout,
    build_table,
    row_of,
    sort_key,
    write_table,
)
from hpsearch.engine.searchdir import is_search_dir, layout_of, layout_of_spec, read_description
from hpsearch.errors import UsageError
from hpsearch.runs.files import (
    RUNS_DIR,
    SIM_OUT_DIR,
    printable,
    read_exit,
    read_run_record,
    read_start,
    split_launch,
)
from hpsearch.runs.summary import (
    SummaryFormat,
    failure_groups,
    is_number,
    judge,
    objective_values,
)
from hpsearch.spec.constraints import Constraint, feasible
from hpsearch.spec.gridmodule import SearchSpec, load_spec
from hpsearch.spec.values import render_value

HYPNETTORCH_COMMAND = "hpsearch_command.sh"
#: the most failure reasons ``hpsearch status`` lists
FAILURE_KINDS_SHOWN = 5


def _require_dir(out_dir: Path) -> None:
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir} is not a directory; pass a search directory (--out_dir)")


def _spec_for(out_dir: Path, grid_module: str | None) -> SearchSpec | None:
    """The grid module named, or the copy of it a search left in its directory."""
    if grid_module:
        return load_spec(grid_module, Path.cwd(), check_script=False)
    meta = read_description(out_dir)
    candidates = []
    if meta and meta.get("source_file") and meta.get("source_kind") == "grid_module":
        candidates.append(Path(meta["source_file"]))
    candidates += sorted(out_dir.glob("*.py"))
    for path in candidates:
        if path.is_file():
            try:
                return load_spec(str(path), Path.cwd(), check_script=False)
            except UsageError:
                continue
    return None


def _format(meta: dict[str, Any] | None, spec: SearchSpec | None) -> SummaryFormat:
    if meta is not None:
        return SummaryFormat(meta["summary_filename"], list(meta["summary_keywords"]),
                             list(meta.get("objectives") or [meta["performance_key"]]),
                             spec.summary_parser if spec else None)
    assert spec is not None
    return SummaryFormat(spec.summary_filename, spec.summary_keywords, spec.objectives,
                         spec.summary_parser)


def _judge_dir(state: RunState, run_dir: Path, sim_out_dir: Path, fmt: SummaryFormat,
               exit_code: int | None, reason: str | None = None) -> None:
    verdict = judge(run_dir, sim_out_dir, fmt, exit_code, reason, state.trial)
    state.metrics, state.status, state.reason = verdict.metrics, verdict.status, verdict.reason
    state.exit_code = exit_code


def _our_runs(out_dir: Path, states: dict[str, RunState], fmt: SummaryFormat) -> None:
    """Bring every ``runs/<id>`` directory into ``states`` (the journal's view first)."""
    runs_dir = out_dir / RUNS_DIR
    if not runs_dir.is_dir():
        return
    for entry in os.scandir(runs_dir):
        state = states.get(entry.name)
        if state is not None and state.status in ENDED:
            continue  # the journal already judged it
        run_dir = Path(entry.path)
        if state is None:
            record = read_run_record(run_dir)
            if record is None:
                continue
            state = states[entry.name] = RunState(
                entry.name, int(record.get("trial", record.get("index", -1))),
                record.get("config", {}), attempts=int(record.get("attempt", 1)),
                status="launching")  # the journal lost it: its files tell
        ended = read_exit(run_dir, state.launch if state.status == "running" else None)
        if state.status in ("pending", "cancelled") and (
                ended is None or ended.launch == state.launch):
            continue  # the journal gave that launch back itself (lost, cancelled)
        if ended is None:
            if state.status == "running" or read_start(run_dir) is not None:
                state.status = "running"
            elif state.status == "launching":
                state.status = "pending"  # never started
            continue
        _judge_dir(state, run_dir, run_dir / SIM_OUT_DIR, fmt, ended.exit_code)
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


def _hypnettorch_runs(out_dir: Path, states: dict[str, RunState], fmt: SummaryFormat,
                      spec: SearchSpec | None, out_arg: str) -> None:
    values = [] if spec is None else [*spec.parameters.items()] + [
        item for _match, replace in spec.conditions for item in replace.items()]
    flag_keys = [k for k, vals in values
                 if isinstance(vals, list) and any(isinstance(v, bool) for v in vals)]
    for index, run_dir in enumerate(sorted(p for p in out_dir.glob("sim_*") if p.is_dir())):
        try:
            config = parse_hypnettorch_command(
                (run_dir / HYPNETTORCH_COMMAND).read_text(), out_arg)
        except OSError:
            config = {}
        for key in flag_keys:  # hypnettorch omits a False flag from the command
            config.setdefault(key, False)
        state = states[run_dir.name] = RunState(run_dir.name, index, config, attempts=1)
        _judge_dir(state, run_dir, run_dir, fmt, None, None)
        if state.reason == "ended without an exit code":  # hypnettorch kept no exit codes
            metrics_ok = state.metrics.get("finished") == 1
            state.status, state.reason = ("finished", None) if metrics_ok else (
                "failed", "summary says the run did not finish")


@dataclass
class SearchRecord:
    """A search directory as ``collect``, ``report`` and ``export`` read it: its description
    (``search.json``, or the grid module for a directory without one) and every run's state,
    judged where the journal had not judged it."""

    out_dir: Path
    meta: dict[str, Any] | None
    spec: SearchSpec | None
    layout: TableLayout
    states: dict[str, RunState]
    hypnettorch: bool

    @property
    def objectives(self) -> list[str]:
        if self.meta is not None:
            return list(self.meta.get("objectives") or [self.meta["performance_key"]])
        assert self.spec is not None
        return list(self.spec.objectives)

    @property
    def directions(self) -> list[str]:
        if self.meta is not None and self.meta.get("directions"):
            return list(self.meta["directions"])
        if self.meta is not None:
            return ["minimize" if self.meta["performance_sort_asc"] else "maximize"]
        assert self.spec is not None
        return list(self.spec.directions)

    def rows(self) -> list[dict[str, Any]]:
        """The results table's rows (unsorted)."""
        return [{**row_of(s, self.out_dir), "run_dir": str(self.run_dir(s))}
                for s in self.states.values()]

    def run_dir(self, state: RunState) -> Path:
        """Where the run's files are: ``runs/<id>/`` (ours) or ``sim_*/`` (hypnettorch's)."""
        return self.out_dir / state.run_id if self.hypnettorch else \
            self.out_dir / RUNS_DIR / state.run_id


def judged_runs(out_dir: Path, fmt: SummaryFormat) -> dict[str, RunState]:
    """Every run of the journal (its warnings printed) and of ``runs/``, each one the
    journal has not judged judged by its files: how ``collect`` and ``status`` both see a
    search, also one whose driver died while its runs went on."""
    history = replay(out_dir / JOURNAL_FILE)
    for warning in history.warnings:
        print(f"hpsearch: warning: {warning}", file=sys.stderr)
    _our_runs(out_dir, history.runs, fmt)
    return history.runs


def read_search(out_dir: Path, grid_module: str | None) -> SearchRecord:
    """Read (never write) a search directory; a directory that is none is a UsageError."""
    _require_dir(out_dir)
    meta = read_description(out_dir)
    needs_spec = meta is None or meta.get("custom_parser") or grid_module
    spec = _spec_for(out_dir, grid_module) if needs_spec else None
    if meta is None and spec is None:
        raise UsageError(f"{out_dir} has no search.json and no grid module copy; pass "
                         "--grid_module=<the search's grid module>")
    layout: TableLayout = layout_of(meta) if meta is not None else layout_of_spec(spec)  # type: ignore[arg-type]
    fmt = _format(meta, spec)
    states = judged_runs(out_dir, fmt)
    hypnettorch = meta is None and any(out_dir.glob("sim_*"))
    if hypnettorch:
        out_arg = spec.out_arg if spec else "out_dir"
        _hypnettorch_runs(out_dir, states, fmt, spec, out_arg)
    if not states:
        raise UsageError(f"{out_dir} holds no runs (no runs/<id>/ nor sim_*/ folders); "
                         "pass the search directory")
    return SearchRecord(out_dir, meta, spec, layout, states, hypnettorch)


def collect(out_dir: Path, grid_module: str | None, stream: Any = None) -> Path:
    """Rebuild and write ``search_results.csv``; returns its path."""
    record = read_search(out_dir, grid_module)
    rows = record.rows()
    table = build_table(rows, record.layout)
    path = out_dir / RESULTS_FILE
    if path.exists() and record.meta is None:
        backup = path.with_name(RESULTS_FILE + ".orig")
        if not backup.exists():
            os.replace(path, backup)
    write_table(table, path)
    stream = stream or sys.stdout
    counts = Counter(row["status"] for row in rows)
    stream.write(f"{path}: {len(rows)} runs ("
                 + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")\n")
    return path


# -- status ---------------------------------------------------------------------------------
def driver_state(out_dir: Path) -> str:
    """A phrase about the search's driver: alive (where), gone, or none."""
    holder = read_holder(out_dir / LOCK_FILE)
    if holder is None:
        return "no driver running"
    state = liveness(holder)
    if state == "unreadable":
        return f"a lock file {out_dir / LOCK_FILE} holds no readable record"
    if state == "stale":
        return (f"no driver running (driver pid {holder.pid} on {holder.host} is gone; its "
                "stale lock is taken over by the next start)")
    beat = "" if holder.host == socket.gethostname() else \
        f", last heartbeat {holder.age:.0f} s ago"
    return f"driver pid {holder.pid} on {holder.host}{beat}"


def status_counts(out_dir: Path, states: dict[str, RunState]) -> dict[str, int]:
    """Runs by status; an active run is ``queued`` until its wrapper wrote ``started_at``."""
    counts = {"finished": 0, "failed": 0, "pruned": 0, "running": 0, "queued": 0,
              "pending": 0, "cancelled": 0, "preempted": 0}
    for state in states.values():
        status = state.status
        if status in ("running", "launching"):
            started = read_start(out_dir / RUNS_DIR / state.run_id)
            status = "running" if started is not None and started.launch == state.launch \
                else "queued"
        counts[status] = counts.get(status, 0) + 1
    return counts


def search_counts(out_dir: Path, meta: dict[str, Any] | None, states: dict[str, RunState]
                  ) -> dict[str, int]:
    """:func:`status_counts`, with the trials the search has not proposed yet as pending."""
    counts = status_counts(out_dir, states)
    counts["pending"] += max(0, int((meta or {}).get("total") or 0) - len(states))
    return counts


def preloaded_line(out_dir: Path, states: Iterable[RunState]) -> str | None:
    """``preloaded: 28 of 30 runs (forked from a process that imported their code once)``:
    ended runs as their results say, running ones as their ``run.json`` says; None when no
    run was preloaded (:mod:`hpsearch.runs.preload`)."""
    preloaded = started = 0
    for state in states:
        if state.status in ("running", "launching"):
            record = read_run_record(out_dir / RUNS_DIR / state.run_id) or {}
            flag = record.get("launch") == state.launch and record.get("preloaded")
        elif state.status in ENDED:
            flag = (state.extra or {}).get("preloaded")
        else:
            continue
        started += 1
        preloaded += bool(flag)
    if not preloaded:
        return None
    return (f"preloaded: {preloaded} of {started} runs (forked from a process that imported "
            "their code once)")


def status_line(out_dir: Path, meta: dict[str, Any] | None, states: dict[str, RunState]
                ) -> str:
    """``search out/q: 70 finished, 2 failed, 0 running, 0 pending (of 72); no driver
    running``"""
    counts = search_counts(out_dir, meta, states)
    total = int((meta or {}).get("total") or 0)
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in (
        "finished", "failed", "running", "pending"))
    approx = "~" if (meta or {}).get("total_is_estimate") else ""
    return (f"search {out_dir}: {shown} (of {approx}{max(total, len(states))}); "
            f"{driver_state(out_dir)}")


def holders(out_dir: Path, states: Iterable[RunState]) -> dict[str, list[str]]:
    """``{job_id: [run_id, ...]}``: which packed job holds which active run (its claim in
    ``packs/<launch>/claims/``, see :mod:`hpsearch.backends.cluster.claims`)."""
    held: dict[str, list[str]] = {}
    for state in states:
        if state.status not in ("running", "launching") or not state.launch:
            continue
        record = read_claim(pack_dir(out_dir, split_launch(state.launch)[0]), state.run_id)
        if record is not None:
            held.setdefault(f"{record['job']} ({record.get('host', '?')})", []).append(
                state.run_id)
    return held


def host_lines(out_dir: Path, states: Iterable[RunState]) -> list[str]:
    """For a search on SSH hosts, one line per host: its state as the driver last wrote it
    (:data:`~hpsearch.backends.ssh.options.STATUS_FILE`) and the active runs the journal
    places there (job id ``<host>:<pid>``)::

        host gpu1 (up): 2 run(s): 3f2a91c04b1e 8c0d6a1e2f33
        host gpu2 (not answering: Connection refused): 0 run(s)
    """
    try:
        hosts = json.loads((out_dir / SSH_STATUS_FILE).read_text())["hosts"]
        known = {str(name): info for name, info in hosts.items() if isinstance(info, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    runs: dict[str, list[str]] = {}
    for state in states:
        if state.status in ("running", "launching") and state.job_id:
            runs.setdefault(state.job_id.rpartition(":")[0], []).append(state.run_id)
    lines = []
    for name, info in known.items():
        said = str(info.get("state", "?")) + (f": {info['error']}" if info.get("error") else "")
        held = sorted(runs.get(name, []))
        lines.append(f"  host {name} ({said}): {len(held)} run(s)"
                     + (f": {' '.join(held)}" if held else ""))
    return lines


def best_finished(states: Iterable[RunState], key: str, ascending: bool,
                  constraints: Sequence[Constraint] = ()) -> list[RunState]:
    """Finished runs with a number (not NaN) for ``key``, best first: those that keep the
    ``constraints``, then those that break one."""
    finished = [s for s in states if s.status == "finished"
                and is_number(s.metrics.get(key)) and s.metrics[key] == s.metrics[key]]
    finished.sort(key=lambda s: s.metrics[key], reverse=not ascending)
    finished.sort(key=lambda s: not feasible(s.metrics, constraints))  # stable: by value
    return finished


def _ranked(states: Iterable[RunState], key: str, ascending: bool,
            constraints: Sequence[Constraint] = ()) -> list[RunState]:
    """Finished and pruned runs with a number for ``key``, in the results table's order."""
    shown = [s for s in states if s.status in ("finished", "pruned")
             and is_number(s.metrics.get(key)) and s.metrics[key] == s.metrics[key]]
    return sorted(shown, key=lambda s: sort_key(s.status, s.metrics[key], ascending,
                                                feasible(s.metrics, constraints)))


def _best_row(state: RunState, key: str, constraints: Sequence[Constraint] = ()) -> str:
    """``  val_loss=0.129  <run>  <config>``; a pruned run's value with its step:
    ``  val_loss=0.1149 @ step 3 (pruned)  <run>  <config>``; a finished run that breaks a
    constraint: ``  val_loss=0.101 (infeasible: memory_gb <= 16.0)  <run>  <config>``."""
    value = f"{key}={state.metrics[key]:.6g}"
    broken = [c.text() for c in constraints if not c.holds(state.metrics)]
    if state.status == "finished" and broken:
        value += f" (infeasible: {', '.join(broken)})"
    if state.status == "pruned":
        step = (state.extra or {}).get("steps")
        value += f" @ step {step:g} (pruned)" if is_number(step) else " (pruned)"
    config = " ".join(f"{k}={render_value(v)}" for k, v in state.config.items())
    return f"  {value}  {state.run_id}  {config}\n"


def _print_best(write: Callable[[str], Any], states: Iterable[RunState], key: str,
                ascending: bool, top: int, constraints: Sequence[Constraint] = ()) -> None:
    """The best so far and the ``top`` best runs in the results table's order: finished runs
    first (those that break a constraint after the others), then pruned runs by their last
    report (said when the search has any)."""
    ranked = _ranked(states, key, ascending, constraints)
    if not ranked:
        return
    best = ranked[0]
    head = (f"best {key}={best.metrics[key]:.6g} (trial {best.trial}, run {best.run_id})"
            if best.status == "finished" else "no run finished yet")
    if best.status == "finished" and not feasible(best.metrics, constraints):
        head = "no finished run keeps the constraints yet"
    rule = f"{min(top, len(ranked))} best by {key} ({'ascending' if ascending else 'descending'})"
    if any(s.status == "pruned" for s in ranked):
        rule += ", finished runs first, then pruned runs by their last report"
    write(f"{head}; {rule}:\n")
    for state in ranked[:top]:
        write(_best_row(state, key, constraints))


def _print_failures(write: Callable[[str], Any], states: Iterable[RunState]) -> None:
    """The failed runs' reasons with their counts, the most common first (the first
    :data:`FAILURE_KINDS_SHOWN` of them; runs failing alike, numbers aside, are one)."""
    groups = failure_groups(s.reason or "unknown" for s in states if s.status == "failed")
    if not groups:
        return
    width = len(str(groups[0][1]))
    write("failed runs by reason, most common first:\n")
    for reason, count in groups[:FAILURE_KINDS_SHOWN]:
        write(f"  {count:>{width}} {reason}\n")
    if len(groups) > FAILURE_KINDS_SHOWN:
        write(f"  ... and {len(groups) - FAILURE_KINDS_SHOWN} other reason(s): hpsearch "
              "report lists them all\n")


def print_status(out_dir: Path, top: int, stream: Any = None) -> None:
    """Counts by state, the driver's state, the failed runs' reasons and the ``top`` best
    runs in the results table's order, finished then pruned (control characters shown as
    escapes: :func:`~hpsearch.runs.files.printable`)."""
    _require_dir(out_dir)
    meta = read_description(out_dir)
    if meta is None:
        raise UsageError(f"{out_dir} is not an hpsearch search directory (no search.json); "
                         "pass the --out_dir of a search")
    out = stream or sys.stdout

    def write(text: str) -> None:
        out.write(printable(text))

    spec = _spec_for(out_dir, None) if meta.get("custom_parser") else None
    states = judged_runs(out_dir, _format(meta, spec))
    write(status_line(out_dir, meta, states) + "\n")
    for job, run_ids in sorted(holders(out_dir, states.values()).items()):
        write(f"  job {job} holds {len(run_ids)} run(s): {' '.join(sorted(run_ids))}\n")
    for line in host_lines(out_dir, states.values()) if meta.get("backend") == "ssh" else ():
        write(line + "\n")
    preloaded = preloaded_line(out_dir, states.values())
    if preloaded is not None:
        write(preloaded + "\n")
    totals = search_totals(s.usage for s in states.values())
    if meta.get("backend", "local") != "local" or any(v[0] for v in totals.values()):
        write(f"GPU-hours {describe(totals, 0)}; CPU-hours {describe(totals, 1)}\n")
    _print_failures(write, states.values())
    key, ascending = meta["performance_key"], bool(meta["performance_sort_asc"])
    _print_best(write, states.values(), key, ascending, top, layout_of(meta).constraints)
    objectives = list(meta.get("objectives") or [key])
    if len(objectives) > 1:
        points = [values for s in states.values() if s.status == "finished"
                  and (values := objective_values(s.metrics, objectives)) is not None]
        front = pareto_front(points, list(meta["directions"]))
        write(f"Pareto front over {', '.join(objectives)}: {len(front)} run(s)\n")


# -- cancel ---------------------------------------------------------------------------------
def _stop_driver(out_dir: Path, stream: Any) -> None:
    """SIGTERM the search's driver on this host and wait for its lock to go."""
    holder = read_holder(out_dir / LOCK_FILE)
    if holder is None or liveness(holder) != "alive":
        return
    if holder.host != socket.gethostname():
        raise UsageError(f"the search's driver runs on host {holder.host} (pid {holder.pid}); "
                         f"run hpsearch cancel there, or stop that driver first")
    assert holder.pid is not None
    try:
        os.kill(holder.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    stream.write(f"sent SIGTERM to driver pid {holder.pid}\n")
    give_up = time.monotonic() + 60
    while read_holder(out_dir / LOCK_FILE) is not None and time.monotonic() < give_up:
        time.sleep(0.1)


def cancel_search(out_dir: Path, stream: Any = None) -> None:
    """Stop the driver, then cancel and journal every run the journal lists as active."""
    from hpsearch.backends import cancel_jobs, check_cancel_commands

    _require_dir(out_dir)
    if not is_search_dir(out_dir):
        raise UsageError(f"{out_dir} is not an hpsearch search directory (no search.json or "
                         "journal.jsonl, no driver starting); pass the --out_dir of a search")
    stream = stream or sys.stdout
    meta = read_description(out_dir) or {}
    backend = meta.get("backend", "local")
    check_cancel_commands(backend)
    _stop_driver(out_dir, stream)
    lock = DriverLock(out_dir)
    lock.acquire()
    try:
        history = replay(out_dir / JOURNAL_FILE)
        active = [s for s in history.runs.values() if s.status in ("running", "launching")]
        cancelled = cancel_jobs(backend, [s.job_id for s in active if s.job_id])
        if active:
            journal = Journal(out_dir / JOURNAL_FILE)
            try:
                journal.append("cancel", runs=[s.run_id for s in active],
                               reason="hpsearch cancel")
            finally:
                journal.close()
    finally:
        lock.release()
    stream.write(f"cancelled {cancelled} run(s) of {out_dir}\n")

