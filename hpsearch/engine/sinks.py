"""Tracking sinks fed by the driver: each run whose verdict is final, logged exactly once.

:func:`run_record` builds what a sink is handed from the search directory (the journal's
state of the run, its curve, its ``started_at``, its GPU/CPU hours); the driver and
``hpsearch export`` both use it, so a run logs the same while the search runs and after.

:class:`Tracking` feeds each sink in a thread of its own: a slow or dead tracking server never
holds up the search. **Exactly once across kill -9**: after a sink's ``log`` returned, a line
``{"run": ..., "mark": "<attempts>:<status>"}`` is appended to ``tracking/<sink>.jsonl`` in the
search directory and fsync'd; a driver that starts offers every run that ended for good and has
no line of its mark (a run retried since is logged again, its new verdict over the old). A
driver killed between a sink's write and its line offers that run again, and the sink's
``log`` leaves one run (:class:`~hpsearch.tracking.record.Sink`).

**A sink that fails** (a server down, a full disk) says so once, keeps its runs and tries again
at the next run's end and every :data:`RETRY_INTERVAL` seconds, then catches up; the search
never stops for it. At the driver's end the sinks get :data:`FLUSH_WAIT` seconds together to
finish; what is left is logged by the next driver on the directory (or by ``hpsearch export
--format <sink>``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from hpsearch.backends.accounting import run_total
from hpsearch.engine.journal import RunState
from hpsearch.runs.curves import read_curve
from hpsearch.runs.files import RUNS_DIR, read_exit, read_start
from hpsearch.runs.summary import is_number
from hpsearch.spec.values import render_value
from hpsearch.tracking.record import RunRecord, SearchInfo, Sink

#: the folder of the sinks' notes in a search directory
TRACKING_DIR = "tracking"
#: seconds between two tries of a failing sink (sooner when a run ends)
RETRY_INTERVAL = 30.0
#: seconds the sinks have together to finish when the driver ends
FLUSH_WAIT = 60.0


def search_info(out_dir: Path, objectives: Iterable[str], directions: Iterable[str],
                parameters: Iterable[str]) -> SearchInfo:
    """The search a sink logs: named after its directory."""
    return SearchInfo(out_dir.name, out_dir, dict(zip(objectives, directions, strict=False)),
                      tuple(parameters))


def _numbers(values: Mapping[str, object], leave_out: Iterable[str] = ()) -> dict[str, float]:
    """The finite numbers of ``values`` (booleans, text, NaN and infinities left out)."""
    skip = set(leave_out)
    return {k: float(v) for k, v in values.items()  # type: ignore[arg-type]
            if k not in skip and is_number(v) and math.isfinite(v)}  # type: ignore[arg-type]


def run_record(state: RunState, run_dir: Path, search: str, backend: str) -> RunRecord:
    """What every sink logs of the run ``state`` (its directory ``run_dir``) of the search
    named ``search`` on ``backend``."""
    start = read_start(run_dir)
    ended = read_exit(run_dir, start=start) if start is not None else None
    curve = []
    for point in read_curve(run_dir):
        values = _numbers(point, ("step", "t"))
        if values:
            curve.append((int(point["step"]), values))
    tags = {"search": search, "trial": str(state.trial), "attempts": str(state.attempts),
            "backend": backend, "job_id": state.job_id or (start.job if start else ""),
            "host": start.host if start else ""}
    tags.update({k: f"{v:g}" for k, v in run_total(state.usage).items()})
    config = {k: render_value(v) if isinstance(v, str) else v for k, v in state.config.items()}
    return RunRecord(
        run_id=state.run_id, config=config, status=state.status, reason=state.reason or "",
        metrics=_numbers(state.metrics, ("finished",)), curve=tuple(curve),
        tags={k: v for k, v in tags.items() if v}, started=start.started_at if start else None,
        ended=state.ended_at if state.ended_at is not None else (
            ended.ended_at if ended is not None else None))


def mark_of(state: RunState) -> str:
    """What a sink's note says was logged of a run: its attempts and its status."""
    return f"{state.attempts}:{state.status}"


def read_notes(path: Path) -> tuple[dict[str, str], bool]:
    """``{run id: mark}`` of a sink's notes (the last line of a run wins; a torn or garbage
    line is skipped: at worst a run is offered again, and ``log`` leaves one run), and
    whether the last line is torn (the next note starts on a line of its own)."""
    notes: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return notes, False
    for line in text.splitlines():
        try:
            note = json.loads(line)
            notes[str(note["run"])] = str(note["mark"])
        except (ValueError, TypeError, KeyError):
            continue
    return notes, text != "" and not text.endswith("\n")


class SinkFeed:
    """One sink, fed in a thread of its own (see the module docstring)."""

    def __init__(self, sink: Sink, search: SearchInfo, notes: Path,
                 record: Callable[[RunState], RunRecord],
                 say: Callable[[str], None]) -> None:
        self.sink, self.search, self.notes_path = sink, search, notes
        self.record, self.say = record, say
        self.notes, self.torn = read_notes(notes)
        self.pending: dict[str, RunState] = {}
        self.cond = threading.Condition()
        self.opened = self.failing = self.warned = self.closing = False
        self.retry_at = 0.0
        self.thread = threading.Thread(target=self._work, name=f"sink-{sink.name}", daemon=True)
        self.thread.start()

    def offer(self, state: RunState) -> None:
        """Log ``state`` (a copy) unless the notes say it was; a failing sink tries now."""
        if self.notes.get(state.run_id) == mark_of(state):
            return
        with self.cond:
            self.pending[state.run_id] = copy.deepcopy(state)
            self.retry_at = 0.0
            self.cond.notify()

    def finish(self) -> None:
        """Stop once the runs offered are logged (a failing sink gets one more try)."""
        with self.cond:
            self.closing, self.retry_at = True, 0.0
            self.cond.notify()

    def left(self) -> int:
        with self.cond:
            return len(self.pending)

    # -- the thread -------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.cond:
                while not self.closing and not (self.pending and time.time() >= self.retry_at):
                    self.cond.wait(max(0.0, self.retry_at - time.time()) if self.pending
                                   else None)
                if not self.pending or (self.closing and self.failing
                                        and time.time() < self.retry_at):
                    break
                run_id, state = next(iter(self.pending.items()))
            logged = self._log(state)
            with self.cond:
                if self.pending.get(run_id) is state:
                    del self.pending[run_id]
                    if not logged:  # the others next: one bad record holds up none
                        self.pending[run_id] = state
        with contextlib.suppress(Exception):
            self.sink.close()

    def _log(self, state: RunState) -> bool:
        """Log one run and note it; False (said once) when the sink failed."""
        try:
            if not self.opened:
                self.sink.open(self.search)
                self.opened = True
            self.sink.log(self.record(state))
            self._note(state)
        except Exception as exc:  # noqa: BLE001  (a sink's failure never stops the search)
            self._failed(exc)
            return False
        with self.cond:
            self.retry_at = 0.0
        if self.failing:
            self.failing = False
            self.say(f"--log_to {self.sink.name} works again; catching up")
        return True

    def _note(self, state: RunState) -> None:
        """Append (and fsync) that ``state`` was logged."""
        self.notes_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"run": state.run_id, "mark": mark_of(state), "t": time.time()})
        with open(self.notes_path, "a", encoding="utf-8") as f:
            f.write(("\n" if self.torn else "") + line + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.torn = False
        self.notes[state.run_id] = mark_of(state)

    def _failed(self, exc: Exception) -> None:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        with self.cond:
            self.failing, self.retry_at = True, time.time() + RETRY_INTERVAL
        if not self.warned:
            self.warned = True
            self.say(f"warning: --log_to {self.sink.name}: {text}; the search goes on and "
                     f"its runs are logged once this works again (tried every "
                     f"{RETRY_INTERVAL:g} s and at each run's end; said once)")


class Tracking:
    """The search's sinks, each fed by a :class:`SinkFeed`; what they say is passed on by
    :meth:`pump` in the driver's thread."""

    def __init__(self, sinks: list[Sink], out_dir: Path, search: SearchInfo,
                 backend: str) -> None:
        self.out_dir = out_dir
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        record = self._recorder(search.name, backend)
        self.feeds = [SinkFeed(sink, search, out_dir / TRACKING_DIR / f"{sink.name}.jsonl",
                               record, self.lines.put) for sink in sinks]

    def _recorder(self, search: str, backend: str) -> Callable[[RunState], RunRecord]:
        runs = self.out_dir / RUNS_DIR
        return lambda state: run_record(state, runs / state.run_id, search, backend)

    def offer(self, state: RunState) -> None:
        """A run's verdict is final: every sink logs it (unless noted already)."""
        for feed in self.feeds:
            feed.offer(state)

    def pump(self, say: Callable[[str], None]) -> None:
        """Say what the sinks said since."""
        while True:
            try:
                say(self.lines.get_nowait())
            except queue.Empty:
                return

    def close(self, say: Callable[[str], None], wait: float = FLUSH_WAIT) -> None:
        """Let the sinks finish, ``wait`` seconds at most together; say what is left."""
        for feed in self.feeds:
            feed.finish()
        give_up = time.monotonic() + wait
        for feed in self.feeds:
            feed.thread.join(max(0.0, give_up - time.monotonic()))
        self.pump(say)
        for feed in self.feeds:
            left = feed.left()
            if left:
                say(f"--log_to {feed.sink.name}: {left} run(s) not logged yet; running the "
                    f"same command again (or hpsearch export {self.out_dir} --format "
                    f"{feed.sink.name}) logs them")
