"""The driver loop's corner cases, in-process, with a fake backend (like submitit's mocked
scheduler): no subprocess, no scheduler. The fake speaks the real run-file contract
(:mod:`hpsearch.runs.files`): a run "ends" when the fake writes ``started_at`` and
``exit_code`` with the launch's key, and the summary file the sim would write.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from hpsearch.backends.base import Backend, Ended
from hpsearch.engine.driver import Driver
from hpsearch.engine.journal import JOURNAL_FILE, replay
from hpsearch.engine.lock import DriverLock
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.progress import Progress
from hpsearch.engine.searchdir import layout_of_spec
from hpsearch.runs.model import Run
from hpsearch.runs.reporter import REPORT_FILE, STOP_SEEN_FILE
from hpsearch.spec.gridmodule import SearchSpec
from hpsearch.spec.invocation import ScriptCommand
from hpsearch.spec.pruning import parse_pruner
from hpsearch.strategies.base import Outcome, Proposal, Strategy
from hpsearch.strategies.grid import GridStrategy


class FakeBackend(Backend):
    """Runs end on the poll after they started, as ``plan(run, attempt) -> exit code`` says
    (None: the job vanished, reported lost). At most ``slots`` at once; ``refuse`` runs are
    not started the first time they are submitted."""

    name = "fake"

    def __init__(self, plan, slots: int = 2, refuse: frozenset[str] = frozenset()) -> None:
        self.plan = plan
        self.slots = slots
        self.refuse = set(refuse)
        self.active: dict[str, Run] = {}
        self.submissions: list[list[str]] = []
        self.peak = 0

    def room(self) -> int:
        return self.slots - len(self.active)

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        self.submissions.append([r.run_id for r in runs])
        started = {}
        for run in runs:
            assert run.launch == key
            if run.run_id in self.refuse:
                self.refuse.discard(run.run_id)
                continue
            self.active[run.run_id] = run
            started[run.run_id] = f"fake-{run.run_id}-{run.attempt}"
        self.peak = max(self.peak, len(self.active))
        return started

    def poll(self) -> list[Ended]:
        ended = []
        for run_id, run in list(self.active.items()):
            del self.active[run_id]
            code = self.plan(run, run.attempt)
            if code is None:
                ended.append(Ended(run_id, None, "vanished", lost=True))
                continue
            (run.run_dir / "started_at").write_text(f"launch={run.launch}\njob=x\n")
            run.sim_out_dir.mkdir(parents=True, exist_ok=True)
            (run.sim_out_dir / "perf.txt").write_text(f"acc {run.config['x']}\nfinished 1\n")
            (run.run_dir / "exit_code").write_text(f"{code} {run.launch}\n")
            ended.append(Ended(run_id, code))
        return ended

    def wait(self, timeout: float) -> None:
        pass

    def resolve(self, key: str, runs: Sequence[Run]) -> dict[str, str]:
        return {}

    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        return [Ended(run_id, None, "gone", lost=True) for run_id in jobs]

    def stop(self, run_ids: Sequence[str], grace: float) -> None:
        raise AssertionError("these searches prune nothing")

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        self.active.clear()


def spec_of(values: list) -> SearchSpec:
    return SearchSpec(parameters={"x": values}, conditions=[], script_name="sim.py",
                      command=ScriptCommand((), "sim.py", ()), summary_filename="perf.txt",
                      summary_keywords=["acc", "finished"], out_arg="out_dir",
                      objectives=["acc"], directions=["maximize"])


def drive(tmp_path: Path, backend: Backend, values: list, strategy: Strategy | None = None,
          spec: SearchSpec | None = None, **options) -> tuple[int, str]:
    spec = spec or spec_of(values)
    opts = SearchOptions(out_dir=tmp_path, run_cwd=tmp_path, python=sys.executable,
                         **options)
    strategy = strategy or GridStrategy(spec, seed=1, deterministic=True)
    err = io.StringIO()
    tmp_path.mkdir(exist_ok=True)
    lock = DriverLock(tmp_path)
    lock.acquire()
    try:
        driver = Driver(spec, opts, strategy, backend, layout_of_spec(spec),
                        Progress("acc", False, stream=err, live=False), lock,
                        replay(tmp_path / JOURNAL_FILE))
        return driver.run(), err.getvalue()
    finally:
        lock.release()


def test_runs_the_backend_did_not_start_go_again_without_an_attempt(tmp_path):
    backend = FakeBackend(lambda run, attempt: 0, slots=3)
    first_ids = None

    class Spy(GridStrategy):
        def ask(self, n):
            nonlocal first_ids
            proposals = super().ask(n)
            if first_ids is None:
                first_ids = [p.run_id for p in proposals]
                backend.refuse = {first_ids[1]}
            return proposals

    rc, err = drive(tmp_path, backend, [1, 2, 3, 4],
                    Spy(spec_of([1, 2, 3, 4]), seed=1, deterministic=True))
    assert rc == 0, err
    states = replay(tmp_path / JOURNAL_FILE).runs
    assert {s.status for s in states.values()} == {"finished"}
    assert states[first_ids[1]].attempts == 1  # refused once: not counted
    assert sum(first_ids[1] in batch for batch in backend.submissions) == 2


def test_lost_runs_run_again_and_retries_rerun_the_same_configuration(tmp_path):
    seen: dict[int, list[int]] = {}

    def plan(run, attempt):
        seen.setdefault(run.config["x"], []).append(attempt)
        if run.config["x"] == 1 and len(seen[1]) == 1:
            return None  # lost: does not count
        return 3 if run.config["x"] == 2 and attempt == 1 else 0

    rc, err = drive(tmp_path, FakeBackend(plan), [1, 2, 3], retries=1)
    assert rc == 0, err
    assert seen == {1: [1, 1], 2: [1, 2], 3: [1]}
    rows = replay(tmp_path / JOURNAL_FILE).runs
    assert sorted((s.config["x"], s.attempts) for s in rows.values()) == [(1, 1), (2, 2), (3, 1)]
    assert (tmp_path / "runs" / next(r for r, s in rows.items() if s.config["x"] == 2)
            / "attempts" / "1" / "exit_code").read_text().startswith("3 ")


def test_a_strategy_with_nothing_for_now_does_not_end_the_search(tmp_path):
    class Slow(Strategy):
        """Has its proposal ready only on the third ask, like a sampler thinking."""

        adaptive = True

        def __init__(self):
            self.asks = 0
            self.made = 0
            self.told: list[Outcome] = []

        def restore(self, proposals, outcomes):
            pass

        def ask(self, n):
            self.asks += 1
            if self.made >= 2 or self.asks % 3:
                return []
            self.made += 1
            return [Proposal(self.made - 1, {"x": self.made})]

        def tell(self, outcome):
            self.told.append(outcome)

        @property
        def done(self):
            return self.made >= 2

        @property
        def busy(self):
            return not self.done

    strategy = Slow()
    rc, err = drive(tmp_path, FakeBackend(lambda run, attempt: 0), [1, 2], strategy)
    assert rc == 0, err
    assert [(o.trial, o.status, o.values) for o in strategy.told] == [
        (0, "finished", [1.0]), (1, "finished", [2.0])]


def test_fail_fast_stops_when_the_first_runs_fail_alike_and_says_what_to_do(tmp_path):
    backend = FakeBackend(lambda run, attempt: 1)
    rc, err = drive(tmp_path, backend, list(range(20)), fail_fast=5)
    assert rc == 3, err
    # a free slot is refilled before the ended runs are recorded: a few more start
    assert sum(len(b) for b in backend.submissions) <= 5 + 2 * backend.slots
    assert "the first 5 runs all failed (exit status 1)" in err
    assert f"hpsearch retry {tmp_path}" in err
    assert err.count("failed: exit status 1; its stderr:") == 1  # the reason, once
    rc, err = drive(tmp_path / "off", FakeBackend(lambda run, attempt: 1), list(range(8)),
                    fail_fast=0)
    assert rc == 1 and "8 run(s) failed" in err


def test_max_failures_and_the_cap_of_the_backend(tmp_path):
    backend = FakeBackend(lambda run, attempt: 0 if run.config["x"] % 2 else 2, slots=2)
    rc, err = drive(tmp_path, backend, list(range(30)), max_failures=3, fail_fast=0)
    assert rc == 3, err
    assert "stopped after 3 failed runs (--max_failures)" in err
    assert backend.peak <= 2


class ReportingBackend(FakeBackend):
    """Each run reports ``acc = x`` at step 1 on its first poll. A run with x >= 0.5 ends on
    its next poll; the others go on until the driver stops them, and end on the poll after
    that with exit 0 and ``finished 1``, as a run that ended on its own while its stop was on
    the way -- except x = 0.2, which saw its stop (``should_stop()`` said True) first."""

    def __init__(self) -> None:
        super().__init__(lambda run, attempt: 0, slots=1)
        self.polls: dict[str, int] = {}
        self.stopped: set[str] = set()

    def poll(self) -> list[Ended]:
        ended = []
        for run_id, run in list(self.active.items()):
            polls = self.polls[run_id] = self.polls.get(run_id, 0) + 1
            if polls == 1:
                run.sim_out_dir.mkdir(parents=True, exist_ok=True)
                with open(run.sim_out_dir / REPORT_FILE, "a") as f:
                    f.write(json.dumps({"step": 1, "acc": run.config["x"]}) + "\n")
            elif run.config["x"] >= 0.5 or run_id in self.stopped:
                ended += self.poll_one(run_id)
        return ended

    def poll_one(self, run_id: str) -> list[Ended]:
        run = self.active.pop(run_id)
        (run.run_dir / "started_at").write_text(f"launch={run.launch}\njob=x\n")
        (run.sim_out_dir / "perf.txt").write_text(f"acc {run.config['x']}\nfinished 1\n")
        (run.run_dir / "exit_code").write_text(f"0 {run.launch}\n")
        return [Ended(run_id, 0)]

    def wait(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.02))  # the driver reads the reports every 0.25 s

    def stop(self, run_ids, grace: float) -> None:
        for run_id in run_ids:
            self.stopped.add(run_id)
            run = self.active[run_id]
            if run.config["x"] == 0.2:
                (run.sim_out_dir / STOP_SEEN_FILE).write_text("")


def test_a_run_that_finished_before_its_prune_took_effect_is_finished(tmp_path):
    told = []

    class Spy(GridStrategy):
        def tell(self, outcome):
            told.append(outcome)
            super().tell(outcome)

    spec = dataclasses.replace(spec_of([0.9, 0.1, 0.2]),
                               pruner=parse_pruner("asha", {}, "test"))
    backend = ReportingBackend()
    rc, err = drive(tmp_path, backend, [], Spy(spec, seed=1, deterministic=True), spec)
    assert rc == 0, err
    states = {s.config["x"]: s for s in replay(tmp_path / JOURNAL_FILE).runs.values()}
    assert set(backend.stopped) == {states[0.1].run_id, states[0.2].run_id}  # both pruned
    # both decisions are journaled (before the stop), and kept
    assert states[0.1].prune and states[0.2].prune
    # x = 0.1 ended finished 1 without seeing its stop: finished, its value told as COMPLETE
    assert (states[0.1].status, states[0.1].reason) == ("finished", None)
    assert states[0.1].metrics["acc"] == 0.1
    # x = 0.2 saw the stop, then wrote finished 1: pruned
    assert states[0.2].status == "pruned" and "rung 0 (1 steps)" in states[0.2].reason
    assert sorted((o.trial, o.status, o.values) for o in told) == [
        (0, "finished", [0.9]), (1, "finished", [0.1]), (2, "pruned", [0.2])]


class UnreportedEndBackend(FakeBackend):
    """x = 0.9 fails (exit 2) on the first poll; x = 0.1 has written a complete summary and
    then exited 1 on its own, but the backend has not reported that end yet when the driver
    stops the search (as a poll can lag a run's exit file)."""

    def __init__(self) -> None:
        super().__init__(lambda run, attempt: 2, slots=2)

    def poll(self) -> list[Ended]:
        ended = []
        for run_id, run in list(self.active.items()):
            (run.run_dir / "started_at").write_text(f"launch={run.launch}\njob=x\n")
            run.sim_out_dir.mkdir(parents=True, exist_ok=True)
            (run.sim_out_dir / "perf.txt").write_text(f"acc {run.config['x']}\nfinished 1\n")
            if run.config["x"] == 0.9:
                (run.run_dir / "exit_code").write_text(f"2 {run.launch}\n")
                del self.active[run_id]
                ended.append(Ended(run_id, 2))
            else:
                (run.run_dir / "exit_code").write_text(f"1 {run.launch}\n")
        return ended


def test_a_run_that_ended_on_its_own_before_a_stop_keeps_its_own_exit_status(tmp_path):
    """The stop (here --max_failures) finds an exit file the poll had not reported yet: the
    run ended by itself, with exit status 1, so it failed -- its complete summary does not
    make it finished as it would for a run the stop cut short while it tore down."""
    rc, err = drive(tmp_path, UnreportedEndBackend(), [0.9, 0.1], max_failures=1, fail_fast=0)
    assert rc == 3, err
    states = {s.config["x"]: s for s in replay(tmp_path / JOURNAL_FILE).runs.values()}
    assert states[0.1].status == "failed" and states[0.1].reason.startswith("exit status 1"), \
        states[0.1]
