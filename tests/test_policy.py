"""The driver's policy as a table: what becomes of an attempt that ended (pure, no processes).

Each row is one case the driver met inside ``Driver._record`` before the policy had a module of
its own; the end-to-end tests (test_driver_loop, test_early_stopping, test_preemption,
test_what_users_see) show the same decisions through the real CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.engine.journal import RunState
from hpsearch.engine.options import SearchOptions
from hpsearch.engine.policy import (
    FAIL_FAST,
    MAX_FAILURES,
    UNRECORDED,
    Attempt,
    Decision,
    Policy,
    Standing,
)

RULES = Policy(max_attempts=2, continue_on_timeout=1, fail_fast=3, max_failures=4)
GOING = Standing(finished=1)  # a run finished: fail-fast is out of the way
STOPPING = Standing(finished=1, stopping=True)

TABLE = [
    # (case, attempt, standing, decision)
    ("finished", Attempt("finished"), GOING, Decision("finished", final=True)),
    ("finished while stopping", Attempt("finished"), STOPPING,
     Decision("finished", final=True)),
    ("failed, a retry left", Attempt("failed", "exit status 1", charged=1), GOING,
     Decision("failed", again=True)),
    ("failed, retries spent", Attempt("failed", "exit status 1", charged=2), GOING,
     Decision("failed", final=True)),
    ("failed while stopping: no retry", Attempt("failed", "exit status 1", charged=1),
     STOPPING, Decision("failed", final=True)),
    ("lost: given back, runs again", Attempt("failed", lost=True), GOING,
     Decision("lost", again=True)),
    ("lost while stopping", Attempt("failed", lost=True), STOPPING, Decision("lost")),
    ("lost but its summary says finished", Attempt("finished", lost=True), GOING,
     Decision("finished", final=True)),
    ("lost, exit status unwritable: the search stops",
     Attempt("failed", lost=True, unrecorded=True), GOING, Decision("lost", stop=UNRECORDED)),
    ("lost after its prune: pruned", Attempt("failed", lost=True, prune=True), GOING,
     Decision("pruned", final=True)),
    ("pruned, killed by the stop", Attempt("failed", "SIGTERM", prune=True), GOING,
     Decision("pruned", final=True)),
    ("pruned, finished after seeing the stop", Attempt("finished", prune=True, saw_stop=True),
     GOING, Decision("pruned", final=True)),
    ("pruned too late: finished first", Attempt("finished", prune=True), GOING,
     Decision("finished", final=True)),
    ("preempted: runs again, not charged", Attempt("failed", "PREEMPTED", cut="preempted",
                                                   charged=2), GOING,
     Decision("preempted", again=True)),
    ("preempted while stopping", Attempt("failed", cut="preempted"), STOPPING,
     Decision("preempted")),
    ("time limit, continuations left", Attempt("failed", "TIMEOUT", cut="timeout",
                                               continued=0), GOING,
     Decision("preempted", again=True)),
    ("time limit, continuations spent", Attempt("failed", "TIMEOUT", cut="timeout",
                                               continued=1, charged=2), GOING,
     Decision("failed", final=True)),
    ("preempted but finished", Attempt("finished", cut="preempted"), GOING,
     Decision("finished", final=True)),
    ("the 4th failure for good: --max_failures", Attempt("failed", "x", charged=2),
     Standing(finished=1, failed=3), Decision("failed", final=True, stop=MAX_FAILURES)),
    ("max failures while stopping already", Attempt("failed", "x", charged=2),
     Standing(finished=1, failed=3, stopping=True), Decision("failed", final=True)),
    ("3rd attempt failed alike, none finished: fail-fast, no retry",
     Attempt("failed", "exit status 2: bad lr 0.1", charged=1),
     Standing(failed_attempts=2, failure_kinds={"exit status 2: bad lr #"}),
     Decision("failed", final=True, stop=FAIL_FAST)),
    ("3rd failed, but not alike: retries",
     Attempt("failed", "exit status 2: other", charged=1),
     Standing(failed_attempts=2, failure_kinds={"exit status 2: bad lr #"}),
     Decision("failed", again=True)),
    ("3rd failed alike, but a run finished", Attempt("failed", "exit status 2", charged=1),
     Standing(finished=1, failed_attempts=2, failure_kinds={"exit status 2"}),
     Decision("failed", again=True)),
    ("4th failed alike: fail-fast counts exactly 3", Attempt("failed", "exit status 2"),
     Standing(failed_attempts=3, failure_kinds={"exit status 2"}),
     Decision("failed", again=True)),
]


@pytest.mark.parametrize(("attempt", "standing", "decision"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_policy_table(attempt: Attempt, standing: Standing, decision: Decision) -> None:
    assert RULES.decide(attempt, standing) == decision


def test_policy_without_fail_fast_or_max_failures_retries_then_fails() -> None:
    rules = Policy(max_attempts=1, fail_fast=0, max_failures=None)
    alike = Standing(failed_attempts=99, failure_kinds={"exit status 2"})
    assert rules.decide(Attempt("failed", "exit status 1"), alike) == \
        Decision("failed", final=True)
    assert rules.continues("timeout", 0) is False  # no --continue_on_timeout


def test_policy_of_the_flags() -> None:
    options = SearchOptions(out_dir=Path("o"), run_cwd=Path("."), python="python", retries=2,
                            continue_on_timeout=3, fail_fast=0, max_failures=7)
    assert Policy.of(options) == Policy(max_attempts=3, continue_on_timeout=3, fail_fast=0,
                                        max_failures=7)
    assert Policy.of(options).budget_left(2) and not Policy.of(options).budget_left(3)


def test_retries_count_from_the_last_rerun() -> None:
    rules = Policy(max_attempts=2)
    spent = RunState("r", 0, {}, status="failed", attempts=2)
    assert rules.failed_for_good(spent) and not rules.retries_left(spent)
    rerun = RunState("r", 0, {}, status="failed", attempts=3, budget_start=2)  # --rerun_failed
    assert rules.retries_left(rerun) and not rules.failed_for_good(rerun)
    assert not rules.failed_for_good(RunState("r", 0, {}, status="finished", attempts=2))
