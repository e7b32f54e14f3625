"""Space expansion (hypnettorch's semantics), argv rendering and grid-module loading."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from conftest import REPO, hpsearch_env, run_hpsearch, write_search

from hpsearch.runs.model import Resources, make_run, run_id_of
from hpsearch.spec.gridmodule import load_spec
from hpsearch.spec.invocation import parse_script_command
from hpsearch.spec.values import render_args
from hpsearch.strategies.gridspace import SearchSpace, apply_conditions


def expand(grid, conditions=(), **kw):
    return list(SearchSpace(grid, list(conditions), deterministic=True, **kw))


def test_product_order_last_key_fastest():
    assert expand({"a": [1, 2], "b": ["x", "y", "z"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
        {"a": 2, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "z"}]


def test_condition_fans_out_by_product_of_replace_dict():
    grid = {"a": [1, 2], "b": [10]}
    cond = [({"a": [1]}, {"b": [20, 30], "c": [7, 8]})]
    assert expand(grid, cond) == [
        {"a": 1, "b": 20, "c": 7}, {"a": 1, "b": 20, "c": 8},
        {"a": 1, "b": 30, "c": 7}, {"a": 1, "b": 30, "c": 8},
        {"a": 2, "b": 10}]


def test_conditions_apply_in_order_once_never_rechecked():
    # condition 0 would match what condition 1 produces, but it is not checked again
    conds = [({"b": [99]}, {"a": [5]}), ({"a": [1]}, {"b": [99]})]
    assert apply_conditions({"a": 1, "b": 10}, conds) == [{"a": 1, "b": 99}]
    # a later condition sees what an earlier one wrote
    conds = [({"a": [1]}, {"a": [2]}), ({"a": [2]}, {"b": [77]})]
    assert apply_conditions({"a": 1, "b": 10}, conds) == [{"a": 2, "b": 77}]


def test_condition_match_needs_every_key():
    conds = [({"a": [1], "b": [10]}, {"c": [0]})]
    assert expand({"a": [1, 2], "b": [10, 20]}, conds) == [
        {"a": 1, "b": 10, "c": 0}, {"a": 1, "b": 20}, {"a": 2, "b": 10}, {"a": 2, "b": 20}]


def test_duplicates_removed_keeping_first():
    got = expand({"a": [1, 1.0, True, 2]})
    assert got == [{"a": 1}, {"a": 2}]
    assert type(got[0]["a"]) is int
    # duplicates produced by conditions collapse too: both grid points become a=2, b=30
    conds = [({"a": [1]}, {"a": [2]}), ({"a": [2]}, {"b": [30]})]
    assert expand({"a": [1, 2], "b": [10, 20]}, conds) == [{"a": 2, "b": 30}]


def test_condition_on_unknown_key_dropped_with_warning(tmp_path):
    s = write_search(tmp_path, {"x": [1, 2]},
                     conditions=[({"nokey": [1]}, {"x": [9]}), ({"x": [1]}, {"y": [3]})])
    spec = load_spec(str(s.sim_dir / "hpconf.py"), s.sim_dir)
    assert len(spec.conditions) == 1 and "nokey" in spec.warnings[0]
    rc, out, err = run_hpsearch(s.args("--dry_run", "--deterministic_search"), tmp_path)
    assert rc == 0, err
    assert "warning" in err and "nokey" in err
    assert [shlex.split(ln)[3:] for ln in out.splitlines()] == [["--x=1", "--y=3"], ["--x=2"]]


ORDER_SNIPPET = """
import json
from hpsearch.strategies.gridspace import SearchSpace
from hpsearch.runs.model import run_id_of
grid = {"s": ["a", "b", "c", "d"], "t": [frozenset({1}), "q", 3], "u": [True, 2.5]}
conds = [({"s": ["a"]}, {"v": ["p", "q"]})]
print(json.dumps([[repr(c), run_id_of(c)] for c in SearchSpace(grid, conds, seed=7)]))
"""


def test_seeded_order_independent_of_pythonhashseed():
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**hpsearch_env(), "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run([sys.executable, "-c", ORDER_SNIPPET], env=env, cwd=REPO,
                              capture_output=True, text=True, check=True)
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 4 * 3 * 2 + 3 * 2  # s=a fans out into two


def test_seeded_order_is_a_permutation_and_depends_on_seed():
    grid = {"a": list(range(10)), "b": list(range(7))}
    full = expand(grid)
    shuffled = list(SearchSpace(grid, [], seed=1))
    assert shuffled != full
    assert sorted(map(repr, shuffled)) == sorted(map(repr, full))
    assert shuffled == list(SearchSpace(grid, [], seed=1))
    assert shuffled != list(SearchSpace(grid, [], seed=2))


def test_num_searches_caps_count():
    grid = {"a": list(range(10)), "b": list(range(7))}
    assert expand(grid, num_searches=5) == expand(grid)[:5]
    seeded = list(SearchSpace(grid, [], seed=3))
    assert list(SearchSpace(grid, [], seed=3, num_searches=4)) == seeded[:4]


def test_random_picks_distinct_grid_points():
    grid = {"a": list(range(10)), "b": list(range(10))}
    picks = list(SearchSpace(grid, [], seed=5, num_searches=6, random_picks=True))
    assert len(picks) == 6
    assert len({repr(p) for p in picks}) == 6
    assert all(p["a"] in range(10) and p["b"] in range(10) for p in picks)
    assert picks == list(SearchSpace(grid, [], seed=5, num_searches=6, random_picks=True))
    assert picks != list(SearchSpace(grid, [], seed=6, num_searches=6, random_picks=True))
    # more picks than grid points: every point once, and it ends
    small = list(SearchSpace({"a": [1, 2, 3]}, [], seed=5, num_searches=10, random_picks=True))
    assert sorted(p["a"] for p in small) == [1, 2, 3]


def test_dry_run_orders_and_counts(tmp_path):
    s = write_search(tmp_path, {"x": list(range(8)), "y": ["a", "b"]})
    rc, det, err = run_hpsearch(s.args("--dry_run", "--deterministic_search"), tmp_path)
    assert rc == 0, err
    args = [shlex.split(ln)[3:] for ln in det.splitlines()]
    assert args == [[f"--x={x}", f"--y={y}"] for x in range(8) for y in "ab"]
    rc, shuf, _ = run_hpsearch(s.args("--dry_run", "--random_seed=4"), tmp_path)
    assert shuf != det and sorted(shuf.splitlines()) == sorted(det.splitlines())
    rc, few, _ = run_hpsearch(s.args("--dry_run", "--random_seed=4", "--num_searches=3"),
                              tmp_path)
    assert few.splitlines() == shuf.splitlines()[:3]
    rc, rnd, err = run_hpsearch(s.args("--dry_run", "--dont_generate_full_grid",
                                       "--num_searches=5"), tmp_path)
    assert rc == 0, err
    assert len(set(rnd.splitlines())) == 5 and set(rnd.splitlines()) <= set(det.splitlines())
    assert not s.out_dir.exists()


def test_render_args_like_hypnettorch():
    config = {"lr": 1e-4, "n": 3, "use_bn": True, "dropout": False, "name": '"example string"',
              "empty": '""', "single": "'abc'", "apostrophe": "it's", "mixed": "\"abc'",
              "inner": 'a"b"c', "lst": [1, 2]}
    assert render_args(config) == [
        "--lr=0.0001", "--n=3", "--use_bn", '--name=example string', "--empty=",
        "--single=abc", "--apostrophe=it's", "--mixed=\"abc'", '--inner=a"b"c',
        "--lst=[1, 2]"]


def test_make_run_argv_and_stable_id(tmp_path):
    config = {"lr": 0.1, "flag": True}
    command = parse_script_command("-W ignore train.py sub", tmp_path, check=False)
    run = make_run(run_id_of(config), 0, config, None, out_dir=tmp_path, run_cwd=tmp_path,
                   python="/usr/bin/py", command=command, out_arg="results",
                   resources=Resources())
    assert run.argv == ("/usr/bin/py", "-W", "ignore", "train.py", "sub",
                        f"--results={run.sim_out_dir}", "--lr=0.1", "--flag")
    assert run.run_id == run_id_of({"flag": True, "lr": 0.1})  # key order does not matter
    assert run.run_id != run_id_of({"lr": 0.2, "flag": True})
    # equal configurations share a run id: 1 == 1.0 == True, a set in any order
    assert run_id_of({"a": 1}) == run_id_of({"a": 1.0}) == run_id_of({"a": True})
    assert run_id_of({"a": {"x", "y", "z"}}) == run_id_of({"a": {"z", "y", "x"}})
    assert run_id_of({"a": (1, 2)}) != run_id_of({"a": [1, 2]})  # unequal in Python too
