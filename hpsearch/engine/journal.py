"""The search journal: an append-only JSON-lines file, the truth about a search.

``<out_dir>/journal.jsonl`` holds one event a line; every action is journaled before it
takes effect (a proposal before its submission, a launch before its command starts)::

    {"ev": "start", "t": 1732350000.1, "host": "node1", "pid": 4242, "backend": "local"}
    {"ev": "trial", "t": ..., "trial": 0, "run": "3f2a9c0d1b7e", "config": {"lr": 0.1}}
    {"ev": "launch", "t": ..., "key": "k3f9a1c2", "runs": [["3f2a9c0d1b7e", 1]]}
    {"ev": "submit", "t": ..., "key": "k3f9a1c2", "jobs": {"3f2a9c0d1b7e": "node1:4711"}}
    {"ev": "end", "t": ..., "run": "3f2a9c0d1b7e", "status": "finished", "exit": 0,
     "reason": null, "metrics": {"acc": 0.93, "finished": 1}, "wall": 12.5, "extra": {}}
    {"ev": "end", "t": ..., "run": "3f2a9c0d1b7e", "status": "preempted", "attempt": 1,
     "exit": 143, "reason": "requeued by the scheduler", "cut": "preempted", ...}
    {"ev": "rung", "t": ..., "run": "3f2a9c0d1b7e", "rung": 1, "value": 0.41}
    {"ev": "prune", "t": ..., "run": "3f2a9c0d1b7e", "step": 3, "reason": "pruned at ..."}
    {"ev": "lost", "t": ..., "runs": ["3f2a9c0d1b7e"], "reason": "driver restarted"}
    {"ev": "cancel", "t": ..., "runs": ["3f2a9c0d1b7e"], "reason": "hpsearch cancel"}
    {"ev": "rerun", "t": ..., "runs": ["3f2a9c0d1b7e"]}
    {"ev": "withdraw", "t": ..., "runs": ["3f2a9c0d1b7e"]}
    {"ev": "stop", "t": ..., "reason": "done"}

``trial`` may also carry ``args`` (the run's argv words, when its stored config would not
render them alike), ``internal`` (what its strategy needs to rebuild itself) and
``lineage`` (its place in a multi-fidelity search: ``{"continues": 3, "rung": 1}``). A
``launch`` lists ``[run id, attempt]`` pairs in task order; its ``submit`` says which of
them started, as which job (a run missing there was not started). A launch with no
``submit`` is *unresolved*: the next driver asks the backend whether it happened.
``rung`` records a value the pruner judged at a rung (kept or not), ``prune`` its decision to
stop the run's current attempt (journaled before the run is told to stop; the run ends
``pruned``). ``lost`` and ``cancel`` give an attempt back (the run runs again, not counted);
``rerun`` gives a failed run a fresh ``--retries`` budget; ``withdraw`` forgets proposals that
never ran (a changed grid no longer holds them). ``end`` also names the attempt it ends (so a
run directory adopted after the journal was lost keeps its count), and ``cut`` when the
scheduler cut that attempt short (``"preempted"``, ``"timeout"``). An end with status
``preempted`` (preemption, a requeue, or a time limit within ``--continue_on_timeout``) is
not charged to ``--retries``: the run waits to run again, and its next attempts get
``HPSEARCH_RESUMED=1``. An end's ``extra`` holds the attempt's ``gpu_hours`` and ``cpu_hours``
(:mod:`hpsearch.backends.accounting`); a run's state adds them up by how its attempts ended.
When the scheduler itself started the job again (a requeue), its
``launch`` (key ``<key>.<r>``) and ``submit`` follow the preempted end at once: they record
what the scheduler did.

One driver writes it (see :mod:`hpsearch.engine.lock`); events are buffered and written at least
once per driver loop iteration and always before an action (so ``kill -9`` loses nothing
that took effect), fsync'd at most once a second (and before cluster submissions and on
close). Replay rebuilds every run's state. A torn last line (``kill -9`` mid-write) is
ignored, and cut off before the next driver appends; any other line that is not an event
is skipped and reported with its line number.

When a search ends with nothing in flight, the driver compacts the journal (:func:`compact`):
its ``start`` events and one ``run`` event per run holding that run's whole state --
exactly what replay gave -- written aside and renamed over the journal. A finished search of
100 000 runs then resumes from 100 000 lines instead of four times that::

    {"ev": "run", "run_id": "3f2a9c0d1b7e", "trial": 0, "config": {"lr": 0.1},
     "status": "finished", "attempts": 1, "job_id": "node1:4711", "exit_code": 0,
     "metrics": {"acc": 0.93, "finished": 1}, "wall_time": 12.5, "submitted_at": ...,
     "ended_at": ...}
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from hpsearch.backends.accounting import add as add_usage
from hpsearch.errors import SearchError, UsageError

JOURNAL_FILE = "journal.jsonl"
#: run statuses a journal can hold
STATUSES = ("pending", "launching", "running", "finished", "failed", "pruned", "cancelled",
            "preempted")
#: statuses after which a run only runs again by a user's choice
ENDED = frozenset({"finished", "failed", "pruned"})
#: statuses an ``end`` event may give (a preempted run runs again by itself)
END_STATUSES = ENDED | {"preempted"}


class JournalError(SearchError):
    """The journal cannot be written (disk full, permissions): the search must stop."""


@dataclass(slots=True)
class RunState:
    """What the journal says about one run (one trial's configuration)."""

    run_id: str
    trial: int
    config: dict[str, Any]
    args: list[str] | None = None
    internal: dict[str, Any] | None = None
    status: str = "pending"
    attempts: int = 0
    #: attempts --retries does not count: those before the last rerun, and preempted ones
    budget_start: int = 0
    job_id: str | None = None
    launch: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_time: float | None = None
    extra: dict[str, Any] | None = None  # backend facts (e.g. {"gpu": 1}); None: none
    submitted_at: float | None = None
    ended_at: float | None = None
    prune: str | None = None  # why the pruner stopped the current attempt (until it ends)
    rungs: list[list[float]] | None = None  # [[rung, value], ...] the pruner recorded
    cut: int = 0  # attempts the scheduler cut short (preempted, requeued, time limit)
    continued: int = 0  # of those, time limits run again (--continue_on_timeout)
    usage: dict[str, list[float]] | None = None  # {end status: [gpu_hours, cpu_hours]}
    #: its place in a multi-fidelity search (results columns; ``continues``: a trial)
    lineage: dict[str, Any] | None = None


@dataclass
class History:
    """Everything replay learned: runs in trial order, unresolved launches, problems."""

    runs: dict[str, RunState] = field(default_factory=dict)
    unresolved: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    starts: list[dict[str, Any]] = field(default_factory=list)
    #: events replayed that are about runs (a compacted journal has one per run)
    run_events: int = 0

    def next_trial(self) -> int:
        return 1 + max((s.trial for s in self.runs.values()), default=-1)


def _on_trial(h: History, e: dict[str, Any]) -> None:
    run_id, trial, config = e["run"], e["trial"], e["config"]
    if not (isinstance(run_id, str) and isinstance(trial, int) and isinstance(config, dict)):
        raise TypeError("trial event with a bad run, trial or config")
    if run_id not in h.runs:
        h.runs[run_id] = RunState(run_id, trial, config, e.get("args"), e.get("internal"),
                                  lineage=e.get("lineage"))


def _on_launch(h: History, e: dict[str, Any]) -> None:
    pairs = [(str(run_id), int(attempt)) for run_id, attempt in e["runs"]]
    h.unresolved[str(e["key"])] = pairs
    for run_id, attempt in pairs:
        state = h.runs[run_id]
        state.status, state.attempts, state.launch = "launching", attempt, str(e["key"])
        state.reason = state.prune = None


def _on_submit(h: History, e: dict[str, Any]) -> None:
    key, jobs = str(e["key"]), e["jobs"]
    for run_id, _attempt in h.unresolved.pop(key, []):
        state = h.runs[run_id]
        if run_id in jobs:
            state.status, state.job_id, state.submitted_at = "running", jobs[run_id], e.get("t")
        elif state.status == "launching":
            state.status, state.attempts = "pending", max(state.budget_start, state.attempts - 1)


def _on_end(h: History, e: dict[str, Any]) -> None:
    state = h.runs[e["run"]]
    status = e["status"]
    if status not in END_STATUSES:
        raise ValueError(f"end event with status {status!r}")
    state.status = status
    state.attempts = int(e.get("attempt", state.attempts))
    if e.get("cut"):
        state.cut += 1
    if status == "preempted":
        state.budget_start += 1
        state.continued += e.get("cut") == "timeout"
    state.exit_code = e.get("exit")
    state.reason = e.get("reason")
    state.metrics = e.get("metrics") or {}
    state.wall_time = e.get("wall")
    state.extra = e.get("extra") or None
    state.usage = add_usage(state.usage, status, state.extra)
    state.ended_at = e.get("t")
    state.launch = None  # a later attempt gets a launch of its own
    if e.get("job"):
        state.job_id = e["job"]


def _give_back(status: str):
    def apply(h: History, e: dict[str, Any]) -> None:
        for run_id in e["runs"]:
            state = h.runs[run_id]
            if state.status in ("running", "launching"):
                state.status = status
                state.attempts = max(state.budget_start, state.attempts - 1)
                state.reason = e.get("reason")
    return apply


def _on_run(h: History, e: dict[str, Any]) -> None:
    """A compacted journal's record of one run: its whole state (its keys are RunState's)."""
    del e["ev"]
    state = RunState(**e)
    if not (isinstance(state.run_id, str) and isinstance(state.trial, int)
            and isinstance(state.config, dict)):
        raise TypeError("run event with a bad run_id, trial or config")
    state.status = sys.intern(state.status)  # a few words, shared by 100 000s of runs
    if state.internal:
        state.internal = {k: sys.intern(v) if isinstance(v, str) else v
                          for k, v in state.internal.items()}
    h.runs[state.run_id] = state


def _on_rerun(h: History, e: dict[str, Any]) -> None:
    for run_id in e["runs"]:
        state = h.runs[run_id]
        if state.status in ("failed", "cancelled"):
            state.status, state.budget_start = "pending", state.attempts


def _on_rung(h: History, e: dict[str, Any]) -> None:
    state = h.runs[e["run"]]
    state.rungs = [*(state.rungs or []), [int(e["rung"]), float(e["value"])]]


def _on_prune(h: History, e: dict[str, Any]) -> None:
    h.runs[e["run"]].prune = str(e["reason"])


def _on_withdraw(h: History, e: dict[str, Any]) -> None:
    for run_id in e["runs"]:
        if h.runs[run_id].status == "pending":
            del h.runs[run_id]


def _on_start(h: History, e: dict[str, Any]) -> None:
    h.starts.append(e)


_APPLY = {"trial": _on_trial, "launch": _on_launch, "submit": _on_submit, "end": _on_end,
          "lost": _give_back("pending"), "cancel": _give_back("cancelled"),
          "rerun": _on_rerun, "withdraw": _on_withdraw, "start": _on_start, "run": _on_run,
          "rung": _on_rung, "prune": _on_prune,
          "stop": lambda h, e: None}


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(RunState))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunState)
             if f.default is not dataclasses.MISSING}


def state_event(state: RunState) -> dict[str, Any]:
    """The ``run`` event that recreates ``state`` (fields at their default left out)."""
    event: dict[str, Any] = {"ev": "run"}
    for name in _STATE_FIELDS:
        value = getattr(state, name)
        if name not in _DEFAULTS or value != _DEFAULTS[name]:
            event[name] = value
    return event


def compact(path: Path, history: History) -> None:
    """Rewrite the journal as its ``start`` events and one ``run`` event per run.

    Only for a search with nothing in flight (no active run, no unresolved launch): replaying
    the result gives the same runs. Written to a temporary file, fsync'd, then renamed over
    the journal, so a reader or a crash sees the old journal or the new one, whole.
    """
    assert not history.unresolved
    tmp = path.with_name(f".{path.name}.compact.tmp")
    with open(tmp, "w") as f:
        for event in history.starts:
            f.write(_dumps(event))
        for state in history.runs.values():
            f.write(_dumps(state_event(state)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":")) + "\n"


def apply_event(history: History, event: Any, where: str = "an event",
                line: int | None = None) -> None:
    """Apply one event; one that is not an hpsearch event is reported in ``warnings``
    (as ``<where> line <line>``)."""
    try:
        kind = event["ev"]
        _APPLY[kind](history, event)
        if kind not in ("start", "stop"):
            history.run_events += 1
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        at = where if line is None else f"{where} line {line}"
        history.warnings.append(f"{at} is not an hpsearch event (skipped): "
                                f"{json.dumps(event)[:120]}")


def replay(path: Path) -> History:
    """Everything the journal at ``path`` knows (an empty History when there is none); a
    journal that cannot be read is a one-line UsageError."""
    history = History()
    try:
        with open(path, "rb") as f:
            _replay_lines(history, f, path.name)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a symlink loop, a folder, no permission, an I/O error
        raise UsageError(f"cannot read the journal {path} ({exc.strerror}); make it the "
                         "readable file the search wrote (it holds the search's record)") \
            from None
    return history


def _replay_lines(history: History, f: BinaryIO, name: str) -> None:
    """Apply every whole line of ``f`` to ``history``; a torn last line is ignored, any other
    line that is no JSON is skipped with a warning naming it."""
    for number, line in enumerate(f, 1):  # streamed: memory does not grow with the file
        if not line.endswith(b"\n"):
            break  # a torn last line: ignored
        try:
            event = decode_line(line)
        except ValueError:
            if line.strip():
                history.warnings.append(f"{name} line {number} is not valid JSON "
                                        f"(skipped): {line[:80].decode(errors='replace')!r}")
            continue
        apply_event(history, event, name, number)


def decode_line(line: bytes) -> Any:
    """One journal line as JSON (raises ValueError). orjson reads it (several times faster
    than the standard library, and it shares dict keys, so a 100 000-run journal replays in
    about a second); a line orjson refuses because it holds ``NaN`` or ``Infinity`` (what
    Python's json writes for a metric that is not finite) is read by the standard library."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


class Journal:
    """Appends events; ``flush`` writes (and fsyncs, when due) what was appended."""

    def __init__(self, path: Path, sync_interval: float = 1.0) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self._next_sync = 0.0
        try:
            self._cut_torn_tail()
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {path}: {exc.strerror}") from None
        self._pending: list[str] = []
        self._unsynced = False
        self._broken = False  # a write failed: write nothing more (the next driver cuts
        #                       the torn tail)

    def _cut_torn_tail(self) -> None:
        try:
            with open(self.path, "rb+") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                if size == 0:
                    return
                f.seek(size - 1)
                if f.read(1) == b"\n":
                    return
                start = max(0, size - (1 << 20))
                f.seek(start)
                tail = f.read()
                if b"\n" not in tail and start > 0:
                    f.seek(0)
                    start, tail = 0, f.read()
                f.truncate(start + tail.rfind(b"\n") + 1)
        except FileNotFoundError:
            pass

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"ev": kind, "t": round(time.time(), 3), **fields}
        self._pending.append(_dumps(event))
        return event

    def flush(self, sync: bool = False) -> None:
        """Write what was appended; fsync if ``sync`` or the sync interval has passed.

        Raises JournalError when the write fails; what was not written stays pending.
        """
        if self._broken:
            raise JournalError(f"the journal {self.path} could not be written earlier")
        try:
            if self._pending:
                data = "".join(self._pending).encode()
                while data:
                    written = os.write(self._fd, data)
                    data = data[written:]
                self._pending.clear()
                self._unsynced = True
            if self._unsynced and (sync or time.monotonic() >= self._next_sync):
                os.fsync(self._fd)
                self._unsynced = False
                self._next_sync = time.monotonic() + self.sync_interval
        except OSError as exc:
            self._broken = True
            raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") \
                from None

    def close(self) -> None:
        try:
            if not self._broken:
                self.flush(sync=True)
        finally:
            os.close(self._fd)
