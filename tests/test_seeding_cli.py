"""``warm_start``, ``initial_points`` and ``forbid`` through the real CLI (issue 26 items 3 and
4): an earlier search's runs warm a new one (the rest counted in one line), a search killed
with ``kill -9`` resumes telling the same warm runs and proposing the same sequence -- even
when the earlier search is gone by then -- and runs no initial point twice; the grid skips
forbidden configurations; a sampler that draws only forbidden ones stops cleanly with one
line; every bad setting is one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import shutil
import signal

import pytest
from conftest import run_hpsearch, start_hpsearch, wait_for, write_search

from hpsearch.engine.journal import replay

EARLIER = """\
script: sim.py
summary_file: perf.txt
metrics: [acc]
direction: maximize
algorithm: random
num_trials: 8
seed: 3
parameters:
  x: {method: uniform, low: -6.0, high: 6.0}
  k: [1, 2, 3]
"""

LATER = """\
script: sim.py
summary_file: perf.txt
metrics: [acc]
direction: maximize
algorithm: tpe
algorithm_options: {n_startup_trials: 2}
num_trials: 8
seed: 5
parameters:
  x: {method: uniform, low: -2.0, high: 3.0}
  k: [1, 2, 3]
  sleep: 0.1
warm_start: [earlier]
initial_points: [{x: 2.5, k: 1}, {x: -1.0, k: 3}]
forbid: [{k: [2]}]
"""


def args(path, out_dir, *extra):
    return [f"--search_file={path}", "--run_cwd=proj", f"--out_dir={out_dir}",
            "--visible_gpus=-1", "--num_jobs=1", *extra]


def sequence(out_dir):
    runs = replay(out_dir / "journal.jsonl").runs.values()
    return [s.config for s in sorted(runs, key=lambda s: s.trial)]


def searches(tmp_path, later=LATER):
    s = write_search(tmp_path, {"x": [0]})
    (tmp_path / "earlier.yaml").write_text(EARLIER)
    (tmp_path / "later.yaml").write_text(later)
    rc, _, err = run_hpsearch(args(tmp_path / "earlier.yaml", tmp_path / "earlier"), tmp_path,
                              timeout=120)
    assert rc == 0, err
    return s


def test_warm_start_is_told_once_and_a_kill_9_resume_tells_the_same(tmp_path, procs):
    s = searches(tmp_path)
    earlier = sequence(tmp_path / "earlier")
    fit = [c for c in earlier if -2.0 <= c["x"] <= 3.0]
    assert 0 < len(fit) < len(earlier), "the earlier search should have runs of both kinds"
    whole = tmp_path / "whole"
    rc, _, err = run_hpsearch(args(tmp_path / "later.yaml", whole), tmp_path, timeout=120)
    assert rc == 0, err
    line = [ln for ln in err.splitlines() if "warm_start:" in ln]
    assert len(line) == 1, err
    assert f"warm_start: {len(fit)} finished run(s) of 1 search(es) are told to tpe" in line[0]
    assert f"{len(earlier) - len(fit)} left out ({len(earlier) - len(fit)} do not fit the " \
        "space, e.g. run " in line[0] and "is outside uniform(-2, 3)" in line[0], line[0]
    saved = json.loads((whole / "warm_start.json").read_text())
    assert [r["config"]["x"] for r in saved["runs"]] == [c["x"] for c in fit]
    expected = sequence(whole)
    assert expected[:2] == [{"x": 2.5, "k": 1, "sleep": 0.1}, {"x": -1.0, "k": 3, "sleep": 0.1}]
    assert len(expected) == 8 and all(c["k"] != 2 for c in expected)

    broken = tmp_path / "broken"
    journal = broken / "journal.jsonl"
    for kill_after in (1, 4):
        driver = start_hpsearch(args(tmp_path / "later.yaml", broken), tmp_path)
        procs.append(driver)
        wait_for(lambda n=kill_after: journal.exists() and journal.read_text().count(
            '"ev":"end"') >= n, timeout=60, what=f"{kill_after} runs ended")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        shutil.rmtree(tmp_path / "earlier", ignore_errors=True)  # the resume reads its copy
    rc, _, err = run_hpsearch(args(tmp_path / "later.yaml", broken), tmp_path, timeout=120)
    assert rc == 0, err
    assert "warm_start:" not in err
    assert sequence(broken) == expected
    starts = [json.loads(k) for k, n in s.starts().items() for _ in range(n)]
    initial = [st for st in starts if ["x", "2.5"] in st or ["x", "-1.0"] in st]
    # each initial point ran once in each of the two searches (a run the kill cut short
    # runs again as the same run, never as a new trial)
    assert len(replay(broken / "journal.jsonl").runs) == 8
    assert len({json.dumps(st) for st in initial}) == 2 and len(initial) >= 4


def test_grid_skips_forbidden_configurations(tmp_path):
    s = write_search(tmp_path, {"x": [0]})
    path = tmp_path / "grid.yaml"
    path.write_text("script: sim.py\nsummary_file: perf.txt\nmetrics: [acc]\n"
                    "parameters: {x: [1, 2, 3], k: [a, b]}\n"
                    "forbid: [{x: [2]}, {x: [3], k: [b]}]\n")
    rc, _, err = run_hpsearch(args(path, s.out_dir), tmp_path, timeout=120)
    assert rc == 0, err
    assert sorted((c["x"], c["k"]) for c in sequence(s.out_dir)) == [(1, "a"), (1, "b"),
                                                                      (3, "a")]
    assert json.loads((s.out_dir / "search.json").read_text())["total"] == 3


def test_a_sampler_that_draws_only_forbidden_configurations_stops_with_one_line(tmp_path):
    s = write_search(tmp_path, {"x": [0]})
    path = tmp_path / "all.yaml"
    path.write_text("script: sim.py\nsummary_file: perf.txt\nmetrics: [acc]\n"
                    "algorithm: tpe\nnum_trials: 5\n"
                    "parameters: {x: {method: uniform, low: 0, high: 1}, k: [a, b]}\n"
                    "forbid: [{k: [a]}, {k: [b]}]\n")
    rc, _, err = run_hpsearch(args(path, s.out_dir), tmp_path, timeout=120)
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if "configurations drawn in a row were all " \
             "forbidden" in ln]
    assert len(notes) == 1, err
    assert sequence(s.out_dir) == []
    last = json.loads((s.out_dir / "journal.jsonl").read_text().splitlines()[-1])
    assert last["ev"] == "stop" and last["reason"] == "done", last


@pytest.mark.parametrize("text, words", [
    ("initial_points: [{x: 9.0, k: 1}]\n", "initial_points[0] does not fit the search "
     "space: x=9.0 is outside uniform(-2, 3)"),
    ("initial_points: [{x: 1.0, k: 2}]\n", "initial_points[0] {'x': 1.0, 'k': 2} is "
     "forbidden by forbid"),
    ("forbid: [{colour: [red]}]\n", "forbid[0] names 'colour', which is not a parameter"),
    ("warm_start: [nowhere]\n", "warm_start: nowhere is not a search directory"),
    ("algorithm: grid\nparameters: {k: [1, 2]}\n", "warm_start is for the samplers"),
])
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, text, words):
    write_search(tmp_path, {"x": [0]})
    kept = "".join(ln + "\n" for ln in LATER.splitlines()
                   if not any(ln.startswith(k) for k in ("initial_points:", "forbid:",
                                                         "warm_start:"))
                   and not (text.startswith("algorithm") and ln.startswith(
                       ("algorithm", "  x:", "  sleep", "  k:", "parameters"))))
    path = tmp_path / "bad.yaml"
    extra = "forbid: [{k: [2]}]\n" if "forbid" not in text else ""
    warm = "warm_start: [nowhere]\n" if "warm_start" not in text else ""
    path.write_text(kept + extra + warm + text)
    out = tmp_path / "out"
    rc, _, err = run_hpsearch(args(path, out), tmp_path)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
