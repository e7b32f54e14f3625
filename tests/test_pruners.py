"""The pruners' rules, in-process: ASHA's rungs and promotions, Hyperband's brackets, the
median rule, restoring journaled rung decisions, and bad options (one-line errors)."""

from __future__ import annotations

import pytest

from hpsearch.engine.pruners import (
    Decision,
    Hyperband,
    Median,
    SuccessiveHalving,
    make_pruner,
)
from hpsearch.errors import UsageError
from hpsearch.spec.pruning import parse_pruner


def curve(final: float, steps: int) -> list[tuple[float, float]]:
    return [(float(s), final + 1.0 / s) for s in range(1, steps + 1)]


def test_asha_keeps_the_best_third_at_each_rung():
    asha = make_pruner(parse_pruner("asha", {"min_resource": 1, "reduction_factor": 3}, "t"),
                       minimize=True)
    assert isinstance(asha, SuccessiveHalving)
    # the first run at a rung is the best there: it goes on
    first = asha.consider("a", 0, curve(0.5, 1))
    assert first.rungs == ((0, 1.5),) and first.prune is None
    # a worse one is not among the best max(1, 2 // 3) = 1: pruned
    worse = asha.consider("b", 1, curve(0.9, 1))
    assert worse.rungs == ((0, 1.9),) and "rung 0 (1 steps)" in worse.prune
    # a better one goes on; with 3 values the best 1 goes on
    assert asha.consider("c", 2, curve(0.1, 1)).prune is None
    # nothing new to decide for a point between rungs
    assert asha.consider("c", 2, curve(0.1, 2)) == asha.consider("c", 2, curve(0.1, 2))
    assert asha.consider("c", 2, curve(0.1, 2)).rungs == ()
    # several rungs crossed at once are decided in order, each on its own value
    late = asha.consider("d", 3, curve(0.2, 9))
    assert [rung for rung, _ in late.rungs] == [0] and late.prune is not None


def test_asha_judges_the_value_at_the_rung_not_the_newest():
    asha = make_pruner(parse_pruner("asha", {}, "t"), minimize=True)
    asha.consider("a", 0, [(1.0, 1.0)])
    # reported late: at step 1 it was worse than a, by step 5 it is better
    decision = asha.consider("b", 1, [(1.0, 2.0), (5.0, 0.1)])
    assert decision.rungs[0] == (0, 2.0) and decision.prune is not None


def test_a_run_that_ended_between_two_reads_still_enters_its_rungs():
    asha = make_pruner(parse_pruner("asha", {"reduction_factor": 2}, "t"), minimize=True)
    asha.consider("a", 0, curve(0.0, 1))  # rung 0 decided while it ran
    # it finished before rungs 1 and 2 (2 and 4 steps) were read: they count all the same
    assert asha.finished("a", 0, curve(0.0, 5)) == ((1, 0.5), (2, 0.25))
    assert asha.finished("a", 0, curve(0.0, 5)) == ()  # entered once
    assert "rung 1 (2 steps)" in asha.consider("b", 1, [(1.0, 0.9), (2.0, 0.6)]).prune
    hb = make_pruner(parse_pruner("hyperband", {"max_resource": 9}, "t"), minimize=True)
    assert hb.finished("x", 1, curve(0.0, 9)) == ((0, 1 / 3), (1, 1 / 9))  # bracket 1


def test_max_resource_is_the_last_rung_and_maximising_works():
    asha = make_pruner(parse_pruner("asha", {"max_resource": 3}, "t"), minimize=False)
    asha.consider("a", 0, [(1.0, 0.5), (3.0, 0.9)])
    top = asha.consider("a", 0, [(1.0, 0.5), (3.0, 0.9), (9.0, 0.95), (27.0, 0.99)])
    assert top.rungs == ()  # nothing beyond rung 1 (3 steps)
    assert asha.consider("b", 1, [(1.0, 0.7)]).prune is None  # higher is better


def test_hyperband_brackets_compete_apart():
    hb = make_pruner(parse_pruner("hyperband", {"max_resource": 9}, "t"), minimize=True)
    assert isinstance(hb, Hyperband) and len(hb.brackets) == 3
    # trials 0 and 3 share bracket 0 (first rung at 1 step); trial 1's bracket starts at 3
    assert hb.consider("a", 0, [(1.0, 0.1)]).prune is None
    assert hb.consider("b", 3, [(1.0, 0.9)]).prune is not None
    assert hb.consider("c", 1, [(1.0, 0.9)]).rungs == ()  # below its bracket's first rung
    assert hb.consider("c", 1, [(1.0, 0.9), (3.0, 0.9)]).prune is None  # first there


def test_median_prunes_below_the_median_of_finished_runs_after_warmup():
    median = make_pruner(parse_pruner("median", {"warmup_steps": 2, "min_trials": 3}, "t"),
                         minimize=True)
    assert isinstance(median, Median)
    for i, final in enumerate((0.1, 0.2, 0.3)):
        assert median.consider(f"f{i}", i, curve(final, 5)).prune is None  # too few finished
        assert median.finished(f"f{i}", i, curve(final, 5)) == ()
    assert median.consider("x", 9, curve(0.9, 1)).prune is None  # still warming up
    assert median.consider("x", 9, curve(0.9, 3)).prune is not None
    assert median.consider("y", 10, curve(0.15, 3)).prune is None


def test_restored_rungs_are_not_decided_again():
    spec = parse_pruner("asha", {}, "t")
    first = make_pruner(spec, minimize=True)
    decisions = [first.consider(r, i, curve(v, 1)) for i, (r, v) in enumerate(
        [("a", 0.5), ("b", 0.2), ("c", 0.9)])]
    again = make_pruner(spec, minimize=True)
    for i, (run, decision) in enumerate(zip("abc", decisions, strict=True)):
        for rung, value in decision.rungs:
            again.restore_rung(run, i, rung, value)
    assert again.consider("a", 0, curve(0.5, 2)).rungs == ()  # a's rung 0 was decided
    assert again.rung_values == first.rung_values
    assert again.consider("d", 3, curve(0.4, 1)) == first.consider("d", 3, curve(0.4, 1))


@pytest.mark.parametrize("name, options, words", [
    ("fancy", {}, "pruner 'fancy' does not exist; use one of none, asha"),
    ("asha", {"reduction": 2}, "pruner option 'reduction' does not exist"),
    ("asha", {"reduction_factor": 1}, "reduction_factor must be a number > 1"),
    ("asha", {"min_resource": 0}, "min_resource must be a number > 0"),
    ("asha", {"min_resource": 5, "max_resource": 2}, "max_resource must be a number >= "),
    ("median", {"step": 3}, "step must name a keyword"),
    ("asha", [1, 2], "pruner_options must be a mapping"),
])
def test_bad_pruner_options_are_one_line(name, options, words):
    with pytest.raises(UsageError) as info:
        parse_pruner(name, options, "search.yaml")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_run_first_read_past_a_rung_enters_it_unscored():
    # a sim that rewrites its summary, read now and then: "late" was first read at step 2,
    # where its value (0.6) is better than the others' at step 1 -- but it is no value at 1
    for name in ("asha", "hyperband"):
        pruner = make_pruner(parse_pruner(name, {"max_resource": 9}, "t"), minimize=True)
        late = pruner.consider("late", 0, [(2.0, 0.6)])
        assert late == Decision(), name  # neither pruned at rung 0 nor a competitor there
        best = pruner.consider("best", 3, [(1.0, 0.9)])  # trial 3: bracket 0 too
        assert best.rungs == ((0, 0.9),) and best.prune is None, name  # alone at rung 0
    # a rung is scored with the last value read at or before its step, not a later one
    asha = make_pruner(parse_pruner("asha", {}, "t"), minimize=True)
    assert asha.consider("late", 0, [(2.0, 0.6), (4.0, 0.4)]).rungs == ((1, 0.6),)
    assert asha.finished("ended", 1, [(5.0, 0.1)]) == ()  # read once, past rungs 0 and 1
    assert asha.finished("ended", 1, [(5.0, 0.1), (9.0, 0.05)]) == ((2, 0.05),)
