"""The driver's policy: what becomes of a run whose attempt ended, and when failures stop a search.

Pure: given the verdict on an attempt (:func:`~hpsearch.runs.summary.judge`), what the backend
said of its end, the attempts it used and where the search stands, :meth:`Policy.decide`
answers what to record and what to do next. No journal, no files, no messages: the driver
(:mod:`hpsearch.engine.driver`) carries the decision out.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from hpsearch.engine.journal import RunState
from hpsearch.engine.options import SearchOptions
from hpsearch.runs.summary import failure_kind

#: what an ended attempt is recorded as (``lost`` is journaled as a ``lost`` event: the
#: attempt is given back, not ended)
FINISHED, FAILED, PRUNED, PREEMPTED, LOST = "finished", "failed", "pruned", "preempted", "lost"
#: why a decision stops the search: the first runs failed alike, too many failed, or a run's
#: exit status could not be written (the disk needs the user first)
FAIL_FAST, MAX_FAILURES, UNRECORDED = "fail_fast", "max_failures", "unrecorded"


@dataclass(frozen=True)
class Attempt:
    """What is known of one attempt that ended.

    ``verdict`` is the judge's status (``finished`` or ``failed``) and ``reason`` its reason;
    ``lost``, ``unrecorded`` and ``cut`` are the backend's word on the end
    (:class:`~hpsearch.backends.base.Ended`). ``prune``: the pruner decided to stop this
    attempt; ``saw_stop``: the run saw that stop (``should_stop()`` said True). ``charged`` is
    the number of attempts counted against ``--retries``, this one included; ``continued``
    the time limits already continued (``--continue_on_timeout``).
    """

    verdict: str
    reason: str | None = None
    lost: bool = False
    unrecorded: bool = False
    cut: str | None = None
    prune: bool = False
    saw_stop: bool = False
    charged: int = 1
    continued: int = 0


@dataclass(frozen=True)
class Standing:
    """Where the search stands when an attempt ends: runs finished and failed for good (the
    whole search), this session's earlier failed attempts and their kinds of reason
    (:func:`~hpsearch.runs.summary.failure_kind`; read, never changed), and whether the
    search is stopping already."""

    finished: int = 0
    failed: int = 0
    failed_attempts: int = 0
    failure_kinds: AbstractSet[str] = frozenset()
    stopping: bool = False


@dataclass(frozen=True)
class Decision:
    """What to do with an attempt that ended.

    ``status`` is what it is recorded as (:data:`FINISHED`, :data:`FAILED`, :data:`PRUNED`,
    :data:`PREEMPTED`, or :data:`LOST`: given back, as if it never ran). ``again``: the run
    is queued to run again now (a retry, a preempted or lost attempt); ``final``: the run
    ended for good (it is counted and the strategy is told). ``stop``: the search stops
    (:data:`FAIL_FAST`, :data:`MAX_FAILURES`, :data:`UNRECORDED`), None: it goes on.
    """

    status: str
    again: bool = False
    final: bool = False
    stop: str | None = None


@dataclass(frozen=True)
class Policy:
    """The run policy the driver applies to every attempt that ends.

    ``max_attempts`` (``1 + --retries``) attempts per run are charged before a failed run
    fails for good; attempts a scheduler cut short by preemption, and up to
    ``continue_on_timeout`` cut by their time limit, are not charged and run again;
    ``fail_fast`` (0: never) stops the search when that many first failed attempts of this
    session failed alike and no run finished; ``max_failures`` (None or 0: never) stops it
    when that many runs failed for good. :meth:`decide` is the whole table:

    ==========================================  =========  ========================  =====
    the attempt                                 recorded   then                      final
    ==========================================  =========  ========================  =====
    lost (not finished, not pruned)             lost       runs again                no
    ... and its exit status was not written     lost       the search stops          no
    pruned, and it failed or saw its stop       pruned     --                        yes
    finished (a prune too late included)        finished   --                        yes
    failed, cut by preemption / continued time  preempted  runs again                no
    failed, the first ``fail_fast`` alike       failed     the search stops          yes
    failed, charged attempts left               failed     retries                   no
    failed, none left                           failed     stop at ``max_failures``  yes
    ==========================================  =========  ========================  =====

    Nothing runs again, and no failure stops the search, once it is stopping.
    """

    max_attempts: int = 1
    continue_on_timeout: int = 0
    fail_fast: int = 0
    max_failures: int | None = None

    @classmethod
    def of(cls, options: SearchOptions) -> Policy:
        """The policy a search's flags set."""
        return cls(1 + options.retries, options.continue_on_timeout, options.fail_fast,
                   options.max_failures)

    def budget_left(self, charged: int) -> bool:
        """Whether a run that used ``charged`` attempts of its budget may have another."""
        return charged < self.max_attempts

    def retries_left(self, state: RunState) -> bool:
        """Whether a run may have another attempt: the attempts charged since its last
        rerun (preempted ones are not) are fewer than ``max_attempts``."""
        return self.budget_left(state.attempts - state.budget_start)

    def failed_for_good(self, state: RunState) -> bool:
        """Whether a run failed with no retry left (counted failed, told to the strategy)."""
        return state.status == FAILED and not self.retries_left(state)

    def continues(self, cut: str | None, continued: int) -> bool:
        """Whether an attempt the scheduler cut short (``cut``) runs again, not charged."""
        return cut == "preempted" or (cut == "timeout" and continued < self.continue_on_timeout)

    def fails_fast(self, finished: int, failed_attempts: int, kinds: AbstractSet[str],
                   kind: str) -> bool:
        """Whether this session's failed attempts stop the search: ``failed_attempts`` of
        them (the last one included) is exactly ``fail_fast``, the earlier ones' ``kinds``
        of reason are all the last one's ``kind``, and no run finished."""
        return bool(self.fail_fast and not finished and failed_attempts == self.fail_fast
                    and kinds <= {kind})

    def decide(self, attempt: Attempt, standing: Standing) -> Decision:
        """What to record for ``attempt`` and what follows (see the table above)."""
        finished = attempt.verdict == FINISHED
        if attempt.lost and not finished and not attempt.prune:
            if attempt.unrecorded:
                return Decision(LOST, stop=UNRECORDED)
            return Decision(LOST, again=not standing.stopping)
        if attempt.prune and (not finished or attempt.saw_stop):
            return Decision(PRUNED, final=True)
        if finished:
            return Decision(FINISHED, final=True)
        if self.continues(attempt.cut, attempt.continued):
            return Decision(PREEMPTED, again=not standing.stopping)
        return self._failed(attempt, standing)

    def _failed(self, attempt: Attempt, standing: Standing) -> Decision:
        """A failed attempt: fail-fast looks at it first, then it retries or fails for good
        (and may reach ``max_failures``)."""
        kind = failure_kind(attempt.reason or FAILED)
        if not standing.stopping and self.fails_fast(
                standing.finished, standing.failed_attempts + 1, standing.failure_kinds, kind):
            return Decision(FAILED, final=True, stop=FAIL_FAST)
        if not standing.stopping and self.budget_left(attempt.charged):
            return Decision(FAILED, again=True)
        limit = self.max_failures
        if not standing.stopping and limit and standing.failed + 1 >= limit:
            return Decision(FAILED, final=True, stop=MAX_FAILURES)
        return Decision(FAILED, final=True)
